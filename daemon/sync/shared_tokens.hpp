#pragma once
// Request tokens from the host-wide bucket in the journal, which every prefsync process on
// this host draws from (DESIGN.md §6), within the daily quota. Taken in blocks of a tenth
// of a second's worth, so the journal is written a few times a second, not per request.
#include <cstdint>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"

namespace prefsync::sync {

class SharedTokens {
public:
    SharedTokens(journal::Journal& journal, const config::RateLimitConfig& limits)
        : journal_(journal), limits_(limits) {}

    // True: a token is held for the next request (use() takes it). False: none now; ask
    // again at `retry_at` (ms since epoch).
    bool ready(journal::Millis now, journal::Millis& retry_at);
    void use() { --held_; }

private:
    journal::Journal& journal_;
    const config::RateLimitConfig& limits_;
    int held_ = 0;
    bool quota_reported_ = false;
};

}  // namespace prefsync::sync
