#include "daemon/dispatch/shared_bucket.hpp"

#include <algorithm>

#include "daemon/base/logger.hpp"

namespace prefsync::dispatch {

bool SharedBucket::ready(journal::Millis now, journal::Millis& retry_at) {
    if (held_ <= 0) {
        const auto& rl = limits_;
        int block = std::clamp(static_cast<int>(rl.requests_per_second / 10), 1, std::max(1, rl.burst));
        // The shared bucket holds a block more than the burst: the local limiter still paces
        // each request, and a bucket no larger than one token would round every wait up.
        auto grant = store_.take_tokens(block, rl.requests_per_second, rl.burst + block, rl.daily_quota, now);
        if (grant.granted == 0) {
            if (grant.quota_exhausted && !quota_reported_) {
                quota_reported_ = true;
                base::logger().warn("Daily quota reached: pausing until the next UTC midnight, not failing",
                                    {{"quota", rl.daily_quota}});
            }
            retry_at = grant.retry_at;
            return false;
        }
        held_ = grant.granted;
    }
    return true;
}

}  // namespace prefsync::dispatch
