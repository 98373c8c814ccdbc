#pragma once
// The journal: every update prefsync will send, recorded before it is sent and tracked
// until it is done, failed or verified. SQLite in WAL mode, one file per deployment.
//
// Design constraints (what callers may rely on):
// - Record before send: claim() commits the "inflight" state (with a lease) before it
//   returns, so no request leaves for an update the journal does not hold.
// - One pending update per (job, identity): enqueue() supersedes an older queued or retry
//   update of the same identity (coalescing), so changes to one identity go in order and
//   never two at once.
// - A crash leaves "inflight" rows; once their lease has expired claim() hands them out
//   again (with `resolve` set, since their outcome is unknown). Rows record the claiming
//   process, so a restart on the same host reclaims a dead process's rows at once.
// - Change detection: `synced` keeps, per job and identity, the hash of the last body the
//   API accepted; enqueue() skips a row whose hash equals it (unless forced: backfill).
// - Bodies of finished updates are dropped; only hashes stay.
// - The file is created 0600 (it holds personal data).
// Errors are exceptions (JournalError): a journal that cannot be written stops the run.
#include <sqlite3.h>

#include <chrono>
#include <map>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace prefsync::journal {

class JournalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

using Millis = std::int64_t;  // milliseconds since the Unix epoch

struct NewUpdate {
    std::string identity;  // "CRMID:C1" or "profile:123"
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;
    std::string origin;
    std::string body;
    std::string hash;
};

enum class EnqueueResult { Queued, Unchanged, AlreadyPending, AlreadyInRun };

struct ClaimedUpdate {
    std::int64_t id = 0;
    std::string identity;
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;  // from the row or learned from the API
    std::string origin;
    std::string body;
    std::string hash;
    int attempts = 0;
    bool resolve = false;  // a create whose outcome is unknown: look it up before sending
};

enum class State { Queued, Inflight, Retry, Accepted, Done, Verified, Failed, Superseded };
std::string_view to_string(State state);

struct Completion {
    std::int64_t id = 0;
    State state = State::Done;  // Done, Accepted, Retry, Failed, or Queued (released)
    int status = 0;             // last HTTP status (0: none)
    std::string error;          // for Retry / Failed
    Millis due_at = 0;          // for Retry
    bool resolve = false;       // for Retry of a create with unknown outcome
    bool count_attempt = true;  // false when released without having been tried (fatal abort)
    std::optional<std::int64_t> profile_id;
};

struct StateCounts {
    std::int64_t queued = 0, inflight = 0, retry = 0, accepted = 0, done = 0, verified = 0, failed = 0,
                 superseded = 0;
    std::int64_t pending() const { return queued + inflight + retry; }
};

struct Failure {
    std::int64_t id;
    std::string identity, origin, error;
    int status;
    int attempts;
};

struct RunRecord {
    std::int64_t id = 0;
    std::string job, kind;
    Millis started_at = 0, ended_at = 0;
    std::int64_t read = 0, queued = 0, unchanged = 0, rejected = 0, done = 0, accepted = 0, failed = 0,
                 retries = 0;
    int exit_code = -1;
};

// How far an incremental source has been read: the (value, key) of the last row journaled.
struct Watermark {
    std::string value;  // the incremental column, as text
    std::string key;
};

// A pull job's progress: which run it belongs to, and how many bytes of the output file
// are durable and accounted for (a resumed run truncates the file back to it).
struct PullState {
    std::int64_t run_id = 0;
    std::int64_t sink_offset = 0;
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
    std::string detail;  // reconcile: the differing fields
    std::string origin, item;  // filled by pull_outcomes()
};

// Who runs a job now (the job lock): one run of a job at a time, across processes.
struct LockHolder {
    std::int64_t pid = 0;
    std::string host, owner;  // owner: "daemon", "sync", ...
    Millis acquired_at = 0;
};

struct QuotaGrant {
    int granted = 0;
    Millis retry_at = 0;           // when granted == 0: when to ask again
    bool quota_exhausted = false;  // the daily quota is used up until retry_at (next UTC day)
};

class Journal {
public:
    // Opens (creating 0600 if needed) and migrates the schema. Throws JournalError.
    explicit Journal(const std::string& path);
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    // Groups writes in one transaction (RAII); nested use is flattened.
    class Transaction {
    public:
        explicit Transaction(Journal& j);
        ~Transaction();  // rolls back unless committed
        void commit();

    private:
        Journal& j_;
        bool done_ = false;
    };

    // Records `u` for `job`. `force` sends even an unchanged row (backfill); `run_id` ties it
    // to a backfill so a resumed backfill skips what it already enqueued.
    EnqueueResult enqueue(const std::string& job, const NewUpdate& u, Millis now, bool force,
                          std::optional<std::int64_t> run_id = std::nullopt);
    // Marks up to `limit` due updates of `job` inflight (lease until now + lease) and returns
    // them, oldest first. Never two of one identity.
    std::vector<ClaimedUpdate> claim(const std::string& job, int limit, Millis now, Millis lease);
    // Records outcomes, in one transaction.
    void complete(const std::string& job, const std::vector<Completion>& completions, Millis now);
    // Ends the lease of rows claimed by processes of this host that no longer exist (a
    // kill -9), so a restart need not wait for the lease; returns how many.
    std::int64_t release_dead_claims(const std::string& job);
    // When the next retry of `job` is due; nullopt if none waits.
    std::optional<Millis> next_due(const std::string& job);

    // Takes up to `wanted` request tokens from the host-wide bucket (rate/s, burst) that all
    // prefsync processes sharing this journal draw from, within `daily_quota` requests per
    // UTC day (0: none). Callers take small blocks, not one token per request.
    QuotaGrant take_tokens(int wanted, double rate, double burst, std::int64_t daily_quota, Millis now);

    StateCounts counts(const std::string& job);
    std::vector<std::string> jobs();
    std::vector<Failure> failures(const std::string& job);
    // Re-queues failed updates (all, or those with `status`); returns how many.
    std::int64_t retry_failed(const std::string& job, std::optional<int> status, Millis now);
    // Accepted updates (202) not yet verified.
    std::vector<ClaimedUpdate> accepted(const std::string& job, int limit);
    // Returns, per update verified, how long it waited from its 202 (ms).
    std::vector<Millis> mark_verified(const std::vector<std::int64_t>& ids, Millis now);

    std::int64_t begin_run(const std::string& job, const std::string& kind, Millis now);
    void end_run(const RunRecord& run, Millis now);
    std::optional<RunRecord> last_run(const std::string& job, const std::string& kind);
    std::vector<RunRecord> runs(const std::string& job, int limit);

    // The watermark of `job`, if one was stored for this same `source` (a description of
    // table/query and column: a changed source starts over from the beginning).
    std::optional<Watermark> watermark(const std::string& job, const std::string& source);
    // Call inside the transaction that journals the rows read up to `mark`.
    void set_watermark(const std::string& job, const std::string& source, const Watermark& mark, Millis now);

    // Pull jobs. begin_pull starts a new pull run (forgetting the last one's items).
    std::optional<PullState> pull_state(const std::string& job);
    void begin_pull(const std::string& job, std::int64_t run_id);
    // Adds an item unless the run has it already (a resumed run re-enumerates); true if added.
    bool add_pull_item(const std::string& job, const std::string& item, const std::string& origin,
                       const std::string& expected = "");
    std::vector<PullItem> pending_pull_items(const std::string& job, std::int64_t after_seq, int limit);
    std::vector<std::int64_t> pull_seen_ids(const std::string& job);
    // Records outcomes, the profiles written and the durable output size, in one transaction.
    void complete_pull(const std::string& job, const std::vector<PullOutcome>& outcomes,
                       const std::vector<std::int64_t>& seen, std::int64_t sink_offset);
    std::map<std::string, std::int64_t> pull_counts(const std::string& job);
    std::vector<PullOutcome> pull_outcomes(const std::string& job, const std::string& state, int limit);

    // Takes the job's lock for this process; the holder if another live process has it
    // (a holder on this host that no longer exists is replaced).
    std::optional<LockHolder> lock_job(const std::string& job, const std::string& owner, Millis now);
    void unlock_job(const std::string& job);
    // The daemon's schedule: when each job last fired (for catch_up after downtime).
    std::optional<Millis> last_fire(const std::string& job);
    void set_last_fire(const std::string& job, Millis at);
    std::int64_t size_bytes();

    bool integrity_ok();
    sqlite3* handle() { return db_; }

    struct Statements;  // prepared statements, cached per SQL text

private:
    void exec(const char* sql);
    sqlite3* db_ = nullptr;
    std::unique_ptr<Statements> statements_;
    int tx_depth_ = 0;
};

}  // namespace prefsync::journal
