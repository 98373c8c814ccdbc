#pragma once
// `verify`: for updates the API accepted with 202, read the profile back until its
// UpdateStatus is "Complete" (then the update is `verified`) or the wait runs out
// (then it is reported as still pending).
#include <chrono>
#include <string>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"
#include "daemon/sync/run_observer.hpp"

namespace prefsync::sync {

struct VerifyReport {
    std::int64_t checked = 0, verified = 0, pending = 0, missing = 0, errors = 0;
    std::string fatal;
};

VerifyReport run_verify(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                        const std::string& token, std::chrono::milliseconds wait, const std::string& user_agent,
                        RunObserver* observer = nullptr);

}  // namespace prefsync::sync
