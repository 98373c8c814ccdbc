#pragma once
// One push run of a job (sync or backfill): read the source, map every row, journal what
// changed, then send it through the rate limiter and the HTTP pool until nothing is due,
// recording every outcome. The dataflow of DESIGN.md §2, for push.
//
// Design constraints:
// - Record before send: rows are journaled (committed) before the dispatch phase claims them.
// - The dispatcher runs on one io_context thread; the journal is touched only from it.
// - A fatal answer (401, unknown account) stops claiming at once; what was claimed and not
//   answered is released, nothing is marked failed for it.
// - A stop request (signal) drains what is in flight and releases the rest: resumable.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"
#include "daemon/sync/run_observer.hpp"

namespace prefsync::sync {

struct PushOptions {
    bool backfill = false;  // send every row, changed or not
    bool resume = false;    // backfill: continue the last unfinished backfill run
    bool read_source = true;  // false: only send what the journal holds (retry)
    std::string user_agent = "prefsync";
    const std::atomic<bool>* stop = nullptr;   // set by a signal handler
    bool progress_tty = false;                 // a live progress line on stderr
    RunObserver* observer = nullptr;           // the daemon's metrics and watchdog
};

struct PushReport {
    std::int64_t run_id = 0;
    std::int64_t read = 0, rejected = 0, queued = 0, unchanged = 0;
    std::int64_t sent = 0, done = 0, accepted = 0, retries = 0, failed = 0;
    std::int64_t pending = 0;  // still queued or waiting to retry at the end
    std::uint64_t connections = 0;
    double seconds = 0;
    std::string fatal;  // why the run was aborted, if it was
    std::string source_error;  // the source failed after opening: reading stopped there
    bool interrupted = false;
    int exit_code = 0;
};

// Throws config::ConfigError / connectors::SourceError / journal::JournalError for
// problems found before anything was sent.
PushReport run_push(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                    const std::string& token, const PushOptions& options);

}  // namespace prefsync::sync
