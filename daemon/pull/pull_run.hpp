#pragma once
// One pull run of a job: enumerate what to fetch (identities from a source, searches) into
// the journal, fetch it through the rate limiter and the HTTP pool, parse the answers with
// simdjson, and write each profile once (de-duplicated by ProfileId) to the job's sink.
//
// Design constraints:
// - Resumable: items and the output size are journaled together, after the sink has made
//   its bytes durable; an interrupted run (signal, kill -9, fatal answer) is continued by
//   the next `pull`, which truncates the partial file to the journaled size, so nothing is
//   fetched twice that was finished and no line is written twice.
// - Output files appear under their final name only when the run completes and is
//   recorded as complete; a resumed run checks that its partial file still holds what the
//   journal says before it truncates it back.
// - A 404 is a missing profile and a 403 on a search is "more than 50 matches": reported
//   with the identity or search, and the run goes on. 429/5xx/transport errors are retried
//   with backoff and Retry-After; 401 stops the run (resumable).
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/dispatch/dispatcher.hpp"

namespace prefsync::pull {

struct PullReport {
    std::int64_t run_id = 0;
    bool resumed = false;
    std::int64_t read = 0;                 // source rows read for identities
    std::int64_t items = 0, rejected = 0;  // distinct identities and searches to fetch; source rows refused
    std::int64_t duplicate_ids = 0;        // source rows of an id an earlier row had (the last one wins)
    std::int64_t requests = 0, retries = 0;
    std::int64_t done = 0, missing = 0, failed = 0;  // items, by outcome (this run and the resumed one)
    std::int64_t profiles = 0, rows = 0;             // written to the sink in this process
    std::int64_t duplicates = 0;                     // profiles already written (several searches found them)
    std::int64_t identical = 0, differing = 0;       // reconcile
    std::uint64_t bytes_parsed = 0;
    double seconds = 0, parse_seconds = 0;
    double cpu_seconds = 0;        // of the whole process, for the parse share
    std::string output;            // where the result is
    std::string reconcile_report;  // the differing fields, one JSON line per profile
    std::string fatal;
    std::string unavailable;  // the API would not serve the run (an outage, only 429s): it stopped
    bool interrupted = false;
    int exit_code = 0;
};

// Throws config::ConfigError / connectors::SourceError / connectors::SinkError /
// journal::JournalError for problems found before anything was fetched (and a SourceError
// for a source of identities that failed mid-read: what was fetched is recorded);
// std::runtime_error when a completed run's reconcile report cannot be written. `report`
// is filled as the run goes, so after a throw it holds the run it began or resumed (run_id,
// 0 if none yet) and the counts it reached: the caller, which turns the exception into an
// exit code, ends the run with run_record(). A run that did not complete stays resumable
// whatever exit code it ended with.
void run_pull(const dispatch::RunContext& context, const config::JobConfig& job, PullReport& report);

// The run log's record of `report` (its id, counts and exit code).
journal::RunRecord run_record(const config::JobConfig& job, const PullReport& report);

// A journaled item as reports name it: "CRMID:C1" (alternate id), "profile:123", "searches[0]".
std::string describe_item(const std::string& item);

}  // namespace prefsync::pull
