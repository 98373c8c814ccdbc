#pragma once
// Pacing of requests: a token bucket (rate, burst) whose rate adapts to the server
// (multiplicative decrease on 429/503, additive recovery while requests succeed) and which
// a Retry-After pauses entirely. Time is injected, so it is tested on fake time.
#include <chrono>
#include <functional>
#include <optional>
#include <random>

namespace prefsync::dispatch {

using SteadyClock = std::chrono::steady_clock;
using ClockFn = std::function<SteadyClock::time_point()>;

class RateLimiter {
public:
    RateLimiter(double rate, double burst, bool adaptive, ClockFn clock);

    // Takes a token; if none is available, how long until one is (nothing taken).
    std::optional<std::chrono::nanoseconds> try_acquire();
    // The server throttled (429, or 503 with Retry-After): cut the rate by a quarter (not
    // below 2% of the configured one), at most once per second.
    void on_throttle();
    // A request succeeded: recover 10% of the configured rate per second of success.
    void on_success();
    // Retry-After: no token before `until`.
    void pause_until(SteadyClock::time_point until);

    double rate() const { return rate_; }
    SteadyClock::time_point now() const { return clock_(); }
    double configured_rate() const { return configured_; }

private:
    void refill(SteadyClock::time_point now);

    double configured_, rate_, burst_;
    bool adaptive_;
    ClockFn clock_;
    double tokens_;
    SteadyClock::time_point last_refill_, paused_until_{}, last_increase_{}, last_decrease_{};
};

// Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)].
class Backoff {
public:
    Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max, std::uint64_t seed)
        : base_(base), max_(max), rng_(seed) {}
    std::chrono::milliseconds delay(int attempt);

private:
    std::chrono::milliseconds base_, max_;
    std::mt19937_64 rng_;
};

}  // namespace prefsync::dispatch
