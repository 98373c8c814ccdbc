#pragma once
// The journal's smaller stores, one concern each, over the one database handle: the
// host-wide rate bucket and daily quota, the run log, incremental-source watermarks, the
// removals of a read in progress, pull progress, and the daemon's schedule state. Their
// interfaces speak values only.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/journal/database.hpp"

namespace prefsync::journal {

// --- rate and quota ----------------------------------------------------------------------

struct QuotaGrant {
    int granted = 0;
    Millis retry_at = 0;           // when granted == 0: when to ask again
    bool quota_exhausted = false;  // the daily quota is used up until retry_at (next UTC day)
};

class RateStore {
public:
    explicit RateStore(Database& db) : db_(db) {}
    // Takes up to `wanted` request tokens from the host-wide bucket (rate/s, burst) that all
    // prefsync processes sharing this journal draw from, within `daily_quota` requests per
    // UTC day (0: none). Callers take small blocks, not one token per request.
    QuotaGrant take_tokens(int wanted, double rate, double burst, std::int64_t daily_quota, Millis now);
    // Forgets daily counts of days before `before`.
    void prune(Millis before);

private:
    Database& db_;
};

// --- targets -----------------------------------------------------------------------------

// The API a job's journal state belongs to: the profile ids in `synced` and in its updates,
// and what change detection says the API has, are one server's (and one client's). Used
// against another server they would skip rows that server never had and update or remove
// other people's profiles under those ids. Push runs compare it with the config
// (push/target_guard.hpp) before they read or send anything.
struct JobTarget {
    std::string target;  // the comparable form (target_of)
    std::string shown;   // as the config said it, for messages
    Millis recorded_at = 0;
};

class TargetStore {
public:
    explicit TargetStore(Database& db) : db_(db) {}
    std::optional<JobTarget> get(const std::string& job);
    void set(const std::string& job, const JobTarget& target);

private:
    Database& db_;
};

// --- runs --------------------------------------------------------------------------------

struct RunRecord {
    std::int64_t id = 0;
    std::string job, kind;
    Millis started_at = 0, ended_at = 0;
    std::int64_t read = 0, queued = 0, unchanged = 0, rejected = 0, done = 0, accepted = 0, failed = 0, retries = 0;
    int exit_code = -1;
    std::int64_t duplicates = 0;  // rows whose identity a later row of the same run had too
    std::int64_t missing = 0;     // profiles whose rows left the source
    // Why it did not end 0, on one line, as its report and log said it (never a value of a
    // row, nor the token): what `status` shows beside the exit code.
    std::string reason;
};

class RunLog {
public:
    explicit RunLog(Database& db) : db_(db) {}
    std::int64_t begin(const std::string& job, const std::string& kind, Millis now);
    void end(const RunRecord& run, Millis now);
    // A stopped run taken up again (a resumed backfill keeps its run): without an end until
    // it ends again, so `status` shows it running and a process killed meanwhile leaves it
    // for end_unfinished, not with the earlier stop's end and exit code.
    void reopen(std::int64_t id);
    // Ends every run of `job` still without an end with `exit_code`, leaving its counts as
    // recorded; returns how many. Only for a holder of the job's lock (JobLock): no run of the
    // job can then be going on, so these were left by a process that died before it could
    // record the end (killed, stopped by shutdown_timeout, or its journal could not be written).
    std::int64_t end_unfinished(const std::string& job, int exit_code, Millis now);
    // The jobs that have a run without an end.
    std::vector<std::string> unfinished_jobs();
    // What changes whenever a run of `job` starts or ends, for a look at what runs leave
    // (the daemon's at accepted answers) that needs doing again only once one did.
    struct Mark {
        std::int64_t newest = 0;  // run id
        Millis last_end = 0;
        bool running = false;  // a run without an end: what it leaves is still coming
        bool operator==(const Mark&) const = default;
    };
    Mark mark(const std::string& job);
    std::optional<RunRecord> last(const std::string& job, const std::string& kind);
    // The last `limit` runs of `job`, and any older one still without an end (a resumed
    // backfill runs under its first run's id), newest id first.
    std::vector<RunRecord> recent(const std::string& job, int limit);
    // Deletes runs that ended before `before`, keeping the last of each job and kind.
    std::int64_t prune(Millis before);

private:
    Database& db_;
};

// --- watermarks --------------------------------------------------------------------------

// How far an incremental source has been read: the (value, key) of the last row journaled.
struct Watermark {
    std::string value;  // the incremental column, as text
    std::string key;
};

class WatermarkStore {
public:
    explicit WatermarkStore(Database& db) : db_(db) {}
    // The watermark of `job`, if one was stored for this same `source` (a description of
    // table/query and column: a changed source starts over from the beginning).
    std::optional<Watermark> get(const std::string& job, const std::string& source);
    // Call inside the transaction that journals the rows read up to `mark`.
    void set(const std::string& job, const std::string& source, const Watermark& mark, Millis now);

private:
    Database& db_;
};

// --- removals of a read in progress ------------------------------------------------------

// A row a source with a watermark marks deleted (deleted_column), read by a read (a sync's
// or a backfill's) that has not ended: its removal is journaled only at the read's end, once
// no later row of the identity can take it back. Recorded in the transaction of the row's
// batch, with the source's watermark: a run killed before its read ended leaves them, and
// the source's next read starts past the row and never sees it again, so the next
// incremental read takes them up (push_run.cpp). Each is deleted with its removal journaled
// or by a later unmarked row; kept when max_missing refuses it, for the next read to judge
// again.
struct MarkedRemoval {
    std::string identity, alt_type, alt_id, origin;
    std::optional<std::int64_t> profile_id;
};

class MarkedRemovalStore {
public:
    explicit MarkedRemovalStore(Database& db) : db_(db) {}
    // Those of `job`, by identity.
    std::vector<MarkedRemoval> of(const std::string& job);
    void put(const std::string& job, const MarkedRemoval& r);
    void erase(const std::string& job, const std::string& identity);
    void clear(const std::string& job);

private:
    Database& db_;
};

// --- pull progress -----------------------------------------------------------------------

// A pull job's progress: which run it belongs to, and how many bytes of the output file
// are durable and accounted for (a resumed run truncates the file back to it); the
// fingerprint of the settings the run fetches and writes by (a run is resumed only under
// the same settings) and its partial output file ("" for a table). Both are "" for a run
// journaled before version 7.
struct PullState {
    std::int64_t run_id = 0;
    std::int64_t sink_offset = 0;
    std::string fingerprint;
    std::string partial_path;
};

// One thing a pull fetches: "pid:123", "alt:TYPE\x1fID" or "search:N".
struct PullItem {
    std::int64_t seq = 0;
    std::string item;
    std::string origin;    // where the identity came from (a source row), for reports
    std::string expected;  // reconcile: the body the push job sends for this identity
};

struct PullOutcome {
    std::int64_t seq = 0;
    std::string state;  // done, missing, failed; reconcile: identical, differing
    int status = 0;
    std::string error;
    std::string detail;        // reconcile: the differing fields
    std::string origin, item;  // filled by outcomes()
    // The first profile this fetch wrote: a resumed run writes it no more. Further ones (a
    // search's) go to complete()'s `seen`, as does this one when the item was queued again
    // meanwhile (its outcome then finds no item).
    std::optional<std::int64_t> profile_id;
};

class PullStore {
public:
    explicit PullStore(Database& db) : db_(db) {}
    std::optional<PullState> state(const std::string& job);
    // Starts a new pull run (forgetting the last one's items) under these settings.
    void begin(const std::string& job, std::int64_t run_id, const std::string& fingerprint,
               const std::string& partial_path);
    // Records the settings of a run journaled without them, which is resumed under these.
    void adopt_settings(const std::string& job, const std::string& fingerprint, const std::string& partial_path);
    // Adds an item unless the run has it already (a resumed run re-enumerates): nullopt when
    // added, else the run's item as it stands.
    struct Known {
        std::int64_t seq = 0;
        std::string origin;
        bool pending = false;
    };
    std::optional<Known> add_item(const std::string& job, const std::string& item, const std::string& origin,
                                  const std::string& expected = "");
    // A later source row of an item the run has (the last occurrence wins, as in a push): its
    // origin and expected body replace the item's. `again`: the item was fetched (or is being
    // fetched) with the earlier row's body, so it becomes pending once more, after every item
    // the run has, and its earlier outcome is forgotten.
    void replace_item(const std::string& job, std::int64_t seq, const std::string& origin, const std::string& expected,
                      bool again);
    // The largest seq of the run's items (0 for none).
    std::int64_t last_seq(const std::string& job);
    std::vector<PullItem> pending(const std::string& job, std::int64_t after_seq, int limit);
    std::vector<std::int64_t> seen_ids(const std::string& job);
    // Records outcomes, the profiles written and the durable output size, in one transaction.
    void complete(const std::string& job, const std::vector<PullOutcome>& outcomes,
                  const std::vector<std::int64_t>& seen, std::int64_t sink_offset,
                  Database::Sync sync = Database::Sync::durable);
    std::map<std::string, std::int64_t> counts(const std::string& job);
    std::vector<PullOutcome> outcomes(const std::string& job, const std::string& state, int limit);

private:
    Database& db_;
};

// --- the daemon's schedule state ---------------------------------------------------------

// A job the daemon stopped running after a fatal outcome, until `until` (or a reload).
struct Parked {
    Millis until = 0;
    std::string reason;
    int failures = 0;  // consecutive fatal outcomes
};

class ScheduleStore {
public:
    explicit ScheduleStore(Database& db) : db_(db) {}
    // When each job last fired (for catch_up after downtime).
    std::optional<Millis> last_fire(const std::string& job);
    void set_last_fire(const std::string& job, Millis at);
    std::optional<Parked> parked(const std::string& job);
    void park(const std::string& job, const Parked& parked);
    void unpark(const std::string& job);
    std::map<std::string, Parked> all_parked();

private:
    Database& db_;
};

}  // namespace prefsync::journal
