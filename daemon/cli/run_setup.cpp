#include "daemon/cli/run_setup.hpp"

#include <unistd.h>

#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"

namespace prefsync::cli {

RunSetup::RunSetup(const config::Config& config, const config::JobConfig& job, const std::string& owner,
                   const std::atomic<bool>* stop, dispatch::RunObserver* observer)
    : token(config::resolve_token(config)),
      journal(config.journal.path),
      context{config, journal, token, user_agent(), stop, observer, isatty(STDERR_FILENO) != 0} {
    if (owner.empty()) return;
    lock.emplace(config.journal.path, job.name, owner);
    if (lock->held()) end_abandoned_runs(journal, job.name);
}

void RunSetup::recorded(const std::function<void()>& run, const std::function<journal::RunRecord()>& record) {
    try {
        run();
    } catch (...) {
        auto r = record();
        if (r.id != 0) {
            auto failure = describe_failure(std::current_exception(), r.job);
            r.exit_code = failure.exit_code;
            r.reason = failure.summary();
            try {
                journal.runs.end(r, now_ms());
            } catch (const std::exception& e) {
                // The journal that stopped the run may refuse this too (a full disk).
                base::logger().warn("Cannot record the end of the run; the next run of the job records it",
                                    {{"run", r.id}, {"error", e.what()}});
            }
            try {
                // Freed pages may hold the bodies the run deleted (secure_delete=FAST): given
                // back now, not only at the end of a later run that gets that far.
                journal.db.reclaim_space();
            } catch (const std::exception&) {
                // As refused as the run's end, or busy: the next run's end tries again.
            }
        }
        throw;
    }
}

void end_abandoned_runs(journal::Journal& journal, const std::string& job) {
    // And the answers a stopped process staged (of any job), for what reads `synced` next:
    // the daemon's verify, `status`. Not a condition of this run: a push run merges them
    // itself before it reads anything, and a pull never reads them.
    try {
        journal.synced.merge_leftovers();
    } catch (const journal::JournalError& e) {
        base::logger().warn("Answers a stopped process recorded are not merged yet; the next push run merges them",
                            {{"job", job}, {"error", e.what()}});
    }
    if (auto n = journal.runs.end_unfinished(job, kInterrupted, now_ms()); n > 0)
        base::logger().info("Runs left unfinished by a process that stopped recorded as interrupted (exit 4)",
                            {{"job", job}, {"runs", n}});
}

}  // namespace prefsync::cli
