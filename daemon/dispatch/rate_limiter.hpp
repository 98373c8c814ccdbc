#pragma once
// Pacing of requests: a token bucket (rate, burst) whose rate adapts to the server and which
// a Retry-After pauses entirely. Time is injected, so it is tested on fake time.
//
// Finding a server's limit below the configured rate: a throttle (429, or 503 with
// Retry-After) cuts the rate by a quarter and remembers the rate that overran as the
// ceiling, and the highest rate that was sent for a whole second since the last throttle as
// the rate that held: the limit lies between the two. Success recovers quickly to the lower
// of that held rate and 95% of the ceiling, holds there, and only then probes upward slowly
// (1% of the ceiling per second), so the rate converges on the limit and stays near it
// instead of a sawtooth that spends most of its time far below (plain AIMD back to the
// configured rate throttles again every few seconds, and each throttle with a Retry-After
// stops everything). Each probe that ends in a throttle doubles the hold before the next
// (20 s up to 320 s): the limit it found again is the limit. A throttle at a rate that had
// held means the limit went down; what held is forgotten and the hold starts over. Probing
// well past the ceiling without a throttle means the limit went up: the ceiling is
// forgotten and recovery is fast again.
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
    // below 2% of the configured one), at most once per second; the rate that overran is the
    // new ceiling.
    void on_throttle();
    // A request succeeded: recover 10% of the configured rate per second up to the rate that
    // held, at most 95% of the ceiling (or to the configured rate if there is no ceiling);
    // after holding there, probe by 1% of the ceiling per second. Each step needs a second
    // sent at the current rate (a Retry-After pause does not count).
    void on_success();
    // Retry-After: no token before `until`, and no burst after it (tokens do not accrue
    // while paused).
    void pause_until(SteadyClock::time_point until);

    double rate() const { return rate_; }
    // The rate at which the server last throttled; 0 if none is known.
    double ceiling() const { return ceiling_; }
    SteadyClock::time_point now() const { return clock_(); }
    double configured_rate() const { return configured_; }

private:
    void refill(SteadyClock::time_point now);

    double configured_, rate_, burst_, ceiling_ = 0, good_ = 0, held_ = 0;
    bool adaptive_, raised_since_cut_ = false;
    ClockFn clock_;
    double tokens_;
    std::chrono::seconds hold_{20};
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
