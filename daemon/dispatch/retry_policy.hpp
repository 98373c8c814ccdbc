#pragma once
// The one rule for what an answer means for the request that got it, for push, pull and
// verify alike: classify it (api::classify), and for a transient failure decide when to
// send again and whether the item's budget (retry.max_attempts) is spent.
//
// - Backoff: exponential with full jitter on the item's counted attempts.
// - Retry-After (on 429 or 503, seconds or an HTTP date) pauses the whole run, capped at
//   retry.max_delay (a server cannot park us for years); 429, or a 503 that says when to
//   come back, also slows the adaptive limiter.
// - Not counted against the item: a 429 (the server pacing us) and any failure while the
//   circuit breaker is open (the API is down, not the row); such items are due again at
//   once (a row's second 429 in a row on: its own backoff, set by the request loop) and
//   wait for the limiter or the breaker. The request loop bounds the rest: how
//   long a run may meet nothing but 429s (retry.max_throttled), and one row throttled
//   again and again (its own backoff, then failed: RequestLoop::single_out_throttled_row).
// - An item whose counted attempts reach max_attempts is given up (a failure).
#include <chrono>
#include <string>

#include "daemon/api/outcome.hpp"
#include "daemon/dispatch/rate_limiter.hpp"
#include "daemon/http/http_pool.hpp"

namespace prefsync::dispatch {

struct Verdict {
    api::Outcome outcome = api::Outcome::Done;
    std::string reason;                  // short, for logs and `failures`: "503 service unavailable (connection reset)"
    bool counted = true;                 // this attempt counts against the item's budget
    bool give_up = false;                // Retry/Unknown with the budget spent: treat as failed
    std::chrono::milliseconds delay{0};  // Retry/Unknown: wait this long before sending again
};

struct RetrySettings {
    int max_attempts = 8;
    std::chrono::milliseconds base_delay{500};
    std::chrono::milliseconds max_delay{300000};
};

class RetryPolicy {
public:
    RetryPolicy(RetrySettings settings, RateLimiter& limiter, std::uint64_t seed)
        : settings_(settings), limiter_(limiter), backoff_(settings.base_delay, settings.max_delay, seed) {}

    // `attempts`: the item's counted attempts before this one. `breaker_open`: the API is
    // failing as a whole. `wall_now`: to read an HTTP-date Retry-After.
    Verdict judge(api::Operation op, const http::HttpResponse& response, int attempts, bool breaker_open,
                  std::chrono::system_clock::time_point wall_now);
    // The Retry-After of `response`, capped at max_delay; zero when absent.
    std::chrono::milliseconds retry_after(const http::HttpResponse& response,
                                          std::chrono::system_clock::time_point wall_now) const;
    std::chrono::milliseconds backoff(int attempt) { return backoff_.delay(attempt); }
    const RetrySettings& settings() const { return settings_; }

private:
    RetrySettings settings_;
    RateLimiter& limiter_;
    Backoff backoff_;
};

}  // namespace prefsync::dispatch
