#pragma once
// What the push and pull dispatchers share beyond the rate limiter: the retry delay an
// answer calls for, and outcomes batched into journal transactions by count or by time.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>

#include "daemon/http/http_pool.hpp"
#include "daemon/sync/rate_limiter.hpp"

namespace prefsync::sync {

// Backoff with full jitter for `attempt`; a 429, or a 503 with Retry-After, also slows the
// limiter, and Retry-After pauses every request, not just this one. A bare 503 is left to
// backoff: treating random 503s as congestion would pin the rate at its floor.
std::chrono::milliseconds retry_delay(Backoff& backoff, RateLimiter& limiter, const http::HttpResponse& response,
                                      int attempt);

// Calls `flush` when `max` items are pending, or `interval` after the first one.
class BatchedFlush {
public:
    BatchedFlush(boost::asio::io_context& ioc, std::size_t max, std::chrono::milliseconds interval,
                 std::function<void()> flush)
        : timer_(ioc), max_(max), interval_(interval), flush_(std::move(flush)) {}

    void added(std::size_t pending) {
        if (pending >= max_) return flush_();
        if (armed_) return;
        armed_ = true;
        timer_.expires_after(interval_);
        timer_.async_wait([this](boost::system::error_code ec) {
            armed_ = false;
            if (!ec) flush_();
        });
    }
    void cancel() { timer_.cancel(); }

private:
    boost::asio::steady_timer timer_;
    std::size_t max_;
    std::chrono::milliseconds interval_;
    std::function<void()> flush_;
    bool armed_ = false;
};

// Calls `tick` every `period` on the run's io_context while it returns true (or until
// cancel()): how a run looks at its stop flag and reports progress from its own loop.
class Ticker {
public:
    Ticker(boost::asio::io_context& ioc, std::chrono::milliseconds period, std::function<bool()> tick)
        : timer_(ioc), period_(period), tick_(std::move(tick)) {}

    void start() {
        timer_.expires_after(period_);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec && tick_()) start();
        });
    }
    void cancel() { timer_.cancel(); }

private:
    boost::asio::steady_timer timer_;
    std::chrono::milliseconds period_;
    std::function<bool()> tick_;
};

}  // namespace prefsync::sync
