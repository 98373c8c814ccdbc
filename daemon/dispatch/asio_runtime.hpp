#pragma once
// The real Runtime and Transport: a Boost.Asio io_context and the keep-alive HttpPool.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/dispatch/transport.hpp"

namespace prefsync::dispatch {

class AsioRuntime final : public Runtime {
public:
    SteadyClock::time_point now() override { return SteadyClock::now(); }
    base::Millis wall_ms() override { return base::now_ms(); }
    std::unique_ptr<Timer> make_timer() override;
    void post(std::function<void()> fn) override;
    void run() override { ioc_.run(); }
    void stop() override { ioc_.stop(); }
    void restart() override { ioc_.restart(); }
    boost::asio::io_context& io_context() { return ioc_; }

private:
    // One thread runs it: the reactor's per-socket locks only cost (the scheduler keeps its
    // lock, which the resolver's own thread needs to hand back its answer).
    boost::asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
};

class PoolTransport final : public Transport {
public:
    // Throws std::runtime_error for a TLS set-up problem (unreadable ca_file).
    PoolTransport(AsioRuntime& runtime, const config::HttpConfig& config, api::BaseUrl base, std::string user_agent)
        : pool_(runtime.io_context(), config, std::move(base), std::move(user_agent)) {}
    void send(api::ApiRequest request, std::string authorization, http::ResponseHandler done) override {
        pool_.send(std::move(request), std::move(authorization), std::move(done));
    }
    void shutdown() override { pool_.shutdown(); }
    std::uint64_t connections_opened() const override { return pool_.stats().connections_opened; }

private:
    http::HttpPool pool_;
};

}  // namespace prefsync::dispatch
