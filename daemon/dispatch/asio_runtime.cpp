#include "daemon/dispatch/asio_runtime.hpp"

#include <boost/asio/post.hpp>

namespace prefsync::dispatch {
namespace {

// A timer whose completions may outlive it: a wait that completed before the timer was
// destroyed is still queued, so its handler holds the shared state, not the timer.
class AsioTimer final : public Timer {
public:
    explicit AsioTimer(boost::asio::io_context& ioc) : timer_(ioc), state_(std::make_shared<State>()) {}
    ~AsioTimer() override { ++state_->generation; }
    void start(std::chrono::nanoseconds delay, std::function<void()> fn) override {
        state_->fn = std::move(fn);
        timer_.expires_after(delay);
        // A replaced wait still completes (as aborted, or already queued); the generation
        // tells it apart.
        timer_.async_wait([state = state_, generation = ++state_->generation](boost::system::error_code ec) {
            if (ec || generation != state->generation) return;
            auto fn = std::move(state->fn);
            fn();
        });
    }
    void cancel() override {
        ++state_->generation;
        timer_.cancel();
    }

private:
    struct State {
        std::function<void()> fn;
        std::uint64_t generation = 0;
    };
    boost::asio::steady_timer timer_;
    std::shared_ptr<State> state_;
};

}  // namespace

std::unique_ptr<Timer> AsioRuntime::make_timer() {
    return std::make_unique<AsioTimer>(ioc_);
}

void AsioRuntime::post(std::function<void()> fn) {
    boost::asio::post(ioc_, std::move(fn));
}

}  // namespace prefsync::dispatch
