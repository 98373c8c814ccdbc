#pragma once
// One push run of a job (sync, backfill, or retry): read the source, map every row,
// journal what changed and send it through the request loop until nothing is due,
// recording every outcome. Reading overlaps sending: the source is read a batch at a time
// whenever the journal has nothing to claim.
//
// Design constraints:
// - Record before send: rows are journaled (committed) before the loop claims them.
// - The last row of an identity wins on every run although sending starts before the
//   last row is read: see SourceFeed (push_run.cpp) and the journal's waiting state.
// - Reading ticks the observer (the daemon's watchdog) and honours a stop request between
//   batches: rows journaled so far stay journaled; nothing is sent after a stop.
// - A fatal answer (401, unknown account) stops claiming at once; what was claimed and not
//   answered is released, nothing is marked failed for it.
// - A stop request (signal) drains what is in flight and releases the rest: resumable.
#include <cstdint>
#include <string>

#include "config/config.hpp"
#include "daemon/dispatch/dispatcher.hpp"
#include "daemon/push/push_producer.hpp"

namespace prefsync::push {

struct PushOptions {
    bool backfill = false;           // send every row, changed or not
    bool resume = false;             // backfill: continue the last unfinished backfill run
    bool read_source = true;         // false: only send what the journal holds (retry)
    bool allow_mass_delete = false;  // act on missing rows even beyond max_missing, this once
    bool new_target = false;         // backfill: forget another API's state of the job first (target_guard.hpp)
};

struct PushReport : PushCounts {
    std::int64_t run_id = 0;
    std::int64_t pending = 0;  // still queued or waiting to retry at the end
    std::uint64_t connections = 0;
    double seconds = 0;
    std::string fatal;            // why the run was aborted, if it was
    std::string source_error;     // the source failed after opening: reading stopped there
    bool source_changed = false;  // ... because it changed while it was read (read it again later)
    std::string source_warning;   // read to its end, what the source warned of (a last record without a line end)
    std::int64_t duplicates = 0;  // rows whose identity an earlier row had (the last one wins)
    // Updates earlier runs left that this run released to be sent besides those it queued: no
    // row read replaced them (read again as they were, or not read) and no removal took them.
    // Without it, `sent` above `queued` read as requests nobody asked for (outside-in tester).
    std::int64_t from_earlier = 0;
    // Mirror: changed profiles (one each, however many rows) the job synced in another mode, sent whole for want
    // of a diff base (what the source cleared in them stays on the profile).
    std::int64_t without_base = 0;
    // Identities whose last row read is the body the API refused before (a 400, 413 or 422;
    // in an earlier run, or to an earlier row of the identity in this one): not sent, still
    // failed.
    std::int64_t still_refused = 0;
    std::int64_t missing = 0;     // profiles whose rows left the source (or are marked deleted)
    std::string missing_refused;  // why they were not removed (over max_missing)
    std::string unavailable;      // the API would not serve the run (an outage, only 429s): it stopped
    bool interrupted = false;
    // A backfill's updates still failed at its end, those of its earlier parts included
    // (a resumed backfill does not send them again).
    std::int64_t failed_in_backfill = 0;
    std::int64_t failed_before_resume = 0;  // of those, given up on before it was resumed
    int exit_code = 0;
};

// Throws config::ConfigError / connectors::SourceError / journal::JournalError for
// problems found before anything was sent (and JournalError for a journal that fails
// mid-run: what was recorded stays recorded). `report` is filled as the run goes, so after
// a throw it holds the run it began or resumed (run_id, 0 if none yet) and the counts it
// reached: the caller, which turns the exception into an exit code, ends the run with
// run_record() (a run never stays "running" once its process has left it).
void run_push(const dispatch::RunContext& context, const config::JobConfig& job, const PushOptions& options,
              PushReport& report);

// Why a run with `r` did not end 0, on one line ("" if nothing says so).
std::string run_reason(const PushReport& r);

// The run log's record of `report` (its id, kind, counts, exit code and reason).
journal::RunRecord run_record(const config::JobConfig& job, const PushOptions& options, const PushReport& report);

}  // namespace prefsync::push
