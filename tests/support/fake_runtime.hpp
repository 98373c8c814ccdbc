#pragma once
// The request loop's world on fake time: a discrete-event Runtime whose clock jumps from
// event to event (a test of a 60 s outage takes milliseconds), and a Transport whose
// "server" is a function of the request, answering after a latency.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "daemon/dispatch/transport.hpp"

namespace prefsync::testing {

using dispatch::SteadyClock;

class FakeRuntime final : public dispatch::Runtime {
public:
    SteadyClock::time_point now() override { return now_; }
    base::Millis wall_ms() override {
        return 1'800'000'000'000 +
               std::chrono::duration_cast<std::chrono::milliseconds>(now_.time_since_epoch()).count();
    }
    std::unique_ptr<dispatch::Timer> make_timer() override;
    void post(std::function<void()> fn) override { at(now_, std::move(fn)); }
    void run() override {
        stopped_ = false;
        while (!stopped_ && !events_.empty()) {
            auto it = events_.begin();
            auto fn = std::move(it->second.second);
            now_ = std::max(now_, it->first.first);
            events_.erase(it);
            fn();
        }
    }
    void stop() override { stopped_ = true; }
    void restart() override {}

    // Runs `fn` at `when`; returns a handle for cancel().
    std::uint64_t at(SteadyClock::time_point when, std::function<void()> fn) {
        auto id = ++seq_;
        events_.emplace(std::make_pair(when, id), std::make_pair(id, std::move(fn)));
        return id;
    }
    void cancel(std::uint64_t id) {
        for (auto it = events_.begin(); it != events_.end(); ++it)
            if (it->first.second == id) {
                events_.erase(it);
                return;
            }
    }
    double seconds() const { return std::chrono::duration<double>(now_.time_since_epoch()).count(); }

private:
    SteadyClock::time_point now_{std::chrono::seconds(1000)};
    std::map<std::pair<SteadyClock::time_point, std::uint64_t>, std::pair<std::uint64_t, std::function<void()>>>
        events_;
    std::uint64_t seq_ = 0;
    bool stopped_ = false;
};

class FakeTimer final : public dispatch::Timer {
public:
    explicit FakeTimer(FakeRuntime& runtime) : runtime_(runtime) {}
    ~FakeTimer() override { cancel(); }
    void start(std::chrono::nanoseconds delay, std::function<void()> fn) override {
        cancel();
        id_ = runtime_.at(runtime_.now() + delay, [this, fn = std::move(fn)] {
            id_ = 0;
            fn();
        });
    }
    void cancel() override {
        if (id_) runtime_.cancel(id_);
        id_ = 0;
    }

private:
    FakeRuntime& runtime_;
    std::uint64_t id_ = 0;
};

inline std::unique_ptr<dispatch::Timer> FakeRuntime::make_timer() {
    return std::make_unique<FakeTimer>(*this);
}

// A server as a function: every request is answered by `server` after `latency`.
class FakeTransport final : public dispatch::Transport {
public:
    using Server = std::function<http::HttpResponse(const api::ApiRequest&, const std::string& authorization)>;
    FakeTransport(FakeRuntime& runtime, Server server) : runtime_(runtime), server_(std::move(server)) {}

    void send(api::ApiRequest request, std::string authorization, http::ResponseHandler done) override {
        if (closed_) {
            http::HttpResponse r;
            r.error = "the pool is shut down";
            return done(std::move(r));
        }
        ++in_flight;
        max_in_flight = std::max(max_in_flight, in_flight);
        sent.push_back({runtime_.seconds(), request.method + " " + request.target, authorization});
        auto response = server_(request, authorization);
        runtime_.at(runtime_.now() + latency, [this, done = std::move(done), response = std::move(response)]() mutable {
            --in_flight;
            done(std::move(response));
        });
    }
    void shutdown() override { closed_ = true; }
    std::uint64_t connections_opened() const override { return 1; }

    struct Sent {
        double at;  // fake seconds
        std::string request, authorization;
    };
    std::vector<Sent> sent;
    std::chrono::milliseconds latency{10};
    int in_flight = 0, max_in_flight = 0;

private:
    FakeRuntime& runtime_;
    Server server_;
    bool closed_ = false;
};

inline http::HttpResponse answer(int status, std::string body = "{}", std::string retry_after = "") {
    http::HttpResponse r;
    r.transport = api::Transport::Answered;
    r.status = status;
    r.body = std::move(body);
    r.retry_after = std::move(retry_after);
    return r;
}

inline http::HttpResponse no_answer() {
    http::HttpResponse r;
    r.transport = api::Transport::NoAnswer;
    r.error = "connection reset";
    return r;
}

}  // namespace prefsync::testing
