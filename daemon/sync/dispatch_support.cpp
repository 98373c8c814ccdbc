#include "daemon/sync/dispatch_support.hpp"

#include <algorithm>

#include "daemon/api/outcome.hpp"

namespace prefsync::sync {

std::chrono::milliseconds retry_delay(Backoff& backoff, RateLimiter& limiter, const http::HttpResponse& r,
                                      int attempt) {
    auto delay = backoff.delay(attempt);
    if (r.status == 429 || r.status == 503) {
        auto ra = api::parse_retry_after(r.retry_after, std::chrono::system_clock::now());
        if (r.status == 429 || ra) limiter.on_throttle();
        if (ra) {
            limiter.pause_until(SteadyClock::now() + *ra);
            delay = std::max(delay, std::chrono::duration_cast<std::chrono::milliseconds>(*ra));
        }
    }
    return delay;
}

}  // namespace prefsync::sync
