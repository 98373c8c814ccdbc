#include "daemon/dispatch/retry_policy.hpp"

#include <algorithm>

namespace prefsync::dispatch {

std::chrono::milliseconds RetryPolicy::retry_after(const http::HttpResponse& r,
                                                   std::chrono::system_clock::time_point wall_now) const {
    if (r.status != 429 && r.status != 503) return std::chrono::milliseconds(0);
    auto ra = api::parse_retry_after(r.retry_after, wall_now);
    if (!ra) return std::chrono::milliseconds(0);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*ra);
    return std::clamp(ms, std::chrono::milliseconds(0), settings_.max_delay);
}

Verdict RetryPolicy::judge(api::Operation op, const http::HttpResponse& r, int attempts, bool breaker_open,
                           std::chrono::system_clock::time_point wall_now) {
    auto k = api::classify(op, r.transport, r.status, r.body);
    // An answer over http.max_response_bytes: a read's profile is not here, and asking again
    // gets the same answer; a write's status stands (it landed), as does an error's (retried
    // if the status says so: its body is not needed).
    if (r.too_large && (op == api::Operation::Read || op == api::Operation::Search) &&
        (k.outcome == api::Outcome::Done || k.outcome == api::Outcome::Accepted))
        k = {api::Outcome::Failed, std::to_string(r.status) + ", but " + r.error};
    Verdict v;
    v.outcome = k.outcome;
    v.reason = k.reason;
    switch (k.outcome) {
        case api::Outcome::Done:
        case api::Outcome::Accepted: limiter_.on_success(); return v;
        case api::Outcome::Failed:
        case api::Outcome::Fatal: return v;
        case api::Outcome::Retry:
        case api::Outcome::Unknown: break;
    }
    if (!r.error.empty()) v.reason += " (" + r.error + ")";
    auto ra = retry_after(r, wall_now);
    if (r.status == 429 || (r.status == 503 && ra.count() > 0)) limiter_.on_throttle();
    if (ra.count() > 0) limiter_.pause_until(limiter_.now() + ra);
    v.counted = r.status != 429 && !breaker_open;
    v.delay =
        v.counted ? std::max(backoff_.delay(attempts), ra) : (r.status == 429 ? ra : std::chrono::milliseconds(0));
    v.give_up = v.counted && attempts + 1 >= settings_.max_attempts;
    return v;
}

}  // namespace prefsync::dispatch
