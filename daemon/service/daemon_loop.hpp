#pragma once
// The daemon's decisions, apart from the process that carries them out: given the time,
// the config's schedules and what the journal says (retries due, accepted updates to
// verify, parked jobs), what to run next or how long to sleep. cmd_daemon wires it to
// signals, systemd and the runs; tests drive it on fake time.
//
// Design constraints:
// - One run at a time, scheduled runs first (earliest first), then retries that are due
//   (sent without re-reading the source), then verification (daemon.verify).
// - A run that ends fatally (exit 3, or an exception: a refused token, a journal error, an
//   unreadable ca_file) parks its job: no retry drain, no verification, and its next
//   scheduled run no sooner than an exponential backoff (30 s, doubling to 1 h) after it.
//   A job without a schedule is tried again after that backoff. A reload (SIGHUP)
//   releases every parked job at once; a run that is not fatal releases its own. Parking
//   is kept in the journal, so `status` and /metrics show it and a restart keeps it.
// - A run that stopped because the API was unavailable (exit 4 with a reason: its breaker
//   gave up, or it was answered only 429 for retry.max_throttled) rests its job: its retries
//   and verification wait the same backoff, so an outage or a spent quota is not met by
//   one bounded run after another, back to back. Nothing is learned about the job (it is
//   not parked, and its schedule stands); the rest is in memory, ended by a run that
//   reaches the API again, a reload or a restart.
// - catch_up: a scheduled job whose last fire is older than its previous slot (the daemon
//   was down then) runs once at start.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/journal/journal.hpp"
#include "daemon/service/schedule.hpp"

namespace prefsync::service {

enum class RunKind { Scheduled, Retries, Verify };
std::string_view to_string(RunKind kind);

struct Action {
    enum class Kind { Run, Sleep } kind = Kind::Sleep;
    std::string job;
    RunKind run = RunKind::Scheduled;
    journal::Millis until = 0;  // Sleep: wake at (ms since the epoch)
};

struct RunOutcome {
    int exit_code = 0;
    std::string error;  // why a fatal run stopped (the park reason), or why the API was unavailable (exit 4)
    // Never started: another process holds the job's lock (a `prefsync retry` by hand). Its
    // retries wait a little, or the loop would ask for the same run again at once.
    bool skipped = false;
    // The source changed while it was read (a file written in place): read again soon, not
    // at the job's next slot (a nightly job's next night).
    bool reread_source = false;
};

class DaemonLoop {
public:
    // `log`: where its decisions are told (scheduled, parked, released); tests pass their own.
    DaemonLoop(const config::Config& config, journal::Journal& journal, const base::Logger& log);

    // Plans the schedules at `now` (catch_up included). Call once before step().
    void start(journal::Millis now) { plan(now); }
    // What to do at `now`. A Run of a scheduled job also records its fire.
    Action step(journal::Millis now);
    // Records how a run ended: parks or releases its job.
    void finished(const Action& action, const RunOutcome& outcome, journal::Millis now);
    // A new config (SIGHUP): schedules planned anew, parked jobs released.
    void reload(const config::Config& config, journal::Millis now);
    // The next scheduled fire, for status lines.
    std::optional<std::pair<std::string, journal::Millis>> next_fire() const;
    std::size_t scheduled() const;

    // Backoff of the `failures`-th consecutive fatal outcome.
    static journal::Millis park_backoff(int failures);

private:
    struct Job {
        std::optional<Schedule> schedule;
        journal::Millis next = 0;  // scheduled: next fire
        journal::Millis last_verify = 0;
        // The last look for accepted answers: whether it found any (or none has been made),
        // and the job's runs as they stood then (a 202 comes only from a push run).
        bool maybe_unverified = true;
        journal::RunLog::Mark looked_at;
        journal::Millis resting_until = 0;  // after runs the API was unavailable to
        int unavailable_runs = 0;           // in a row
        int source_changes = 0;             // runs in a row whose source changed while read
    };
    void plan(journal::Millis now);
    bool parked(const std::string& job, journal::Millis now);
    bool resting(const std::string& job, journal::Millis now) const;

    const config::Config* config_;
    journal::Journal& journal_;
    const base::Logger& log_;
    std::map<std::string, Job> jobs_;
};

}  // namespace prefsync::service
