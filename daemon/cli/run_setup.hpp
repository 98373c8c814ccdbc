#pragma once
// How every command that runs a job gets going, in one order: the API secret, the journal,
// the job's lock, a RunContext. Failures throw (see errors.hpp), except a lock held by
// another run, which is a refusal the caller prints.
//
// And how each run it starts ends: every run record that begins gets an end with an exit
// code. A run cut short by an exception is ended with the code the exception gets
// (recorded()); one whose process could not record that (killed, stopped by
// shutdown_timeout, a journal it could not write) is ended as interrupted by the next
// process that takes the job's lock, which knows then that no run of the job is going on.
#include <functional>
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
    // Before the journal: released only after it closed, so whatever the journal does as it
    // closes (SyncedStore merges the answers it staged) is done under the lock.
    std::optional<journal::JobLock> lock;
    journal::Journal journal;
    bool refused() const { return lock && !lock->held(); }
    dispatch::RunContext context;

    // Runs `run`, a push or pull run that fills its report as it goes. If it throws, the run
    // record it began (`record()`; id 0: none yet) is ended with the exit code the exception
    // gets (describe_failure), then the exception goes on to the caller's ladder.
    void recorded(const std::function<void()>& run, const std::function<journal::RunRecord()>& record);
};

// Ends the runs of `job` a gone process left without an end as interrupted (exit 4): they
// stopped before they finished, and a backfill or pull among them stays resumable; and
// merges the answers such a process staged (journal::SyncedStore::merge_leftovers). Only
// with the job's lock held (journal::RunLog::end_unfinished).
void end_abandoned_runs(journal::Journal& journal, const std::string& job);

}  // namespace prefsync::cli
