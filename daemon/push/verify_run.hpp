#pragma once
// `verify`: for updates the API accepted with 202, read the profile back until its
// UpdateStatus is "Complete" (then the update is `verified`) or the wait runs out (then it
// is reported as still pending). Rounds of reads through the request loop, a second apart.
#include <chrono>
#include <string>

#include "config/config.hpp"
#include "daemon/dispatch/dispatcher.hpp"

namespace prefsync::push {

struct VerifyReport {
    std::int64_t checked = 0, verified = 0, pending = 0, missing = 0, errors = 0;
    // Read back, but larger than http.max_response_bytes: not read again this run (the same
    // answer would come back), still unverified for the next.
    std::int64_t unreadable = 0;
    std::string fatal;
    std::string unavailable;  // the API would not serve the run (an outage, only 429s): it stopped
};

VerifyReport run_verify(const dispatch::RunContext& context, const config::JobConfig& job,
                        std::chrono::milliseconds wait);

}  // namespace prefsync::push
