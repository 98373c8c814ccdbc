#pragma once
// How every command that runs a job gets going, in one order: the API secret, the journal,
// the job's lock, a RunContext. Failures throw (see errors.hpp), except a lock held by
// another run, which is a refusal the caller prints.
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/dispatch/dispatcher.hpp"
#include "daemon/journal/job_lock.hpp"
#include "daemon/journal/journal.hpp"

namespace prefsync::cli {

struct RunSetup {
    // `owner`: who takes the lock ("sync", "backfill", "pull", "daemon", ...); "" takes none
    // (verify only reads and marks accepted updates, alongside any run).
    RunSetup(const config::Config& config, const config::JobConfig& job, const std::string& owner,
             const std::atomic<bool>* stop, dispatch::RunObserver* observer = nullptr);
    std::string token;
    journal::Journal journal;
    std::optional<journal::JobLock> lock;
    bool refused() const { return lock && !lock->held(); }
    dispatch::RunContext context;
};

}  // namespace prefsync::cli
