#pragma once
// Request tokens from the host-wide bucket in the journal, which every prefsync process
// sharing the journal draws from, within the daily quota. Taken in blocks of a tenth of a
// second's worth, so the journal is written a few times a second, not per request.
#include <cstdint>

#include "config/config.hpp"
#include "daemon/journal/small_stores.hpp"

namespace prefsync::dispatch {

class SharedBucket {
public:
    SharedBucket(journal::RateStore& store, const config::RateLimitConfig& limits) : store_(store), limits_(limits) {}

    // True: a token is held for the next request (use() takes it). False: none now; ask
    // again at `retry_at` (ms since epoch).
    bool ready(journal::Millis now, journal::Millis& retry_at);
    void use() { --held_; }

private:
    journal::RateStore& store_;
    const config::RateLimitConfig& limits_;
    int held_ = 0;
    bool quota_reported_ = false;
};

}  // namespace prefsync::dispatch
