#pragma once
// The push queue: every update prefsync will send, recorded before it is sent and kept until
// it is answered; then a success leaves the queue (its outcome is the identity's synced row)
// and a failure stays as a dead letter (the states: docs/ARCHITECTURE.md, section 5.2).
//
// Design constraints (what callers may rely on):
// - Record before send: claim() commits the "inflight" state (with a lease) before it
//   returns, and enqueue_claimed() inserts a row already inflight in the caller's
//   transaction (handed out only once that commits, and, when the caller commits without
//   an fsync, once the write-ahead log's sync begun after it is over: Database::begin_sync),
//   so no request leaves for an update the journal does not hold.
// - One pending update per (job, identity): enqueue() supersedes an older queued or retry
//   update of the same identity (coalescing), so changes to one identity go in order and
//   never two at once. A superseded update whose outcome was unknown (a create that may
//   have landed) hands its "resolve first" mark to its successor. An update this process
//   has in flight is never superseded: a newer row of its identity is "waiting" (not
//   claimable, not judged unchanged) until complete() records the answer, then takes over:
//   after a success it looks first (the profile exists now), after a retry or failure it
//   takes that update's place.
// - complete() acts only on rows still in flight, so a superseded row never returns to a
//   pending state. A failure is superseded by any newer update of its identity.
// - A process never re-claims what it holds: claim() skips rows claimed with this queue's
//   claim token, and renew() extends their leases while they wait in memory (a quota
//   pause, a long Retry-After), so no other process takes them over either.
// - A crash leaves "inflight" rows; once their lease has expired claim() hands them out
//   again with `resolve` set, since their outcome is unknown. Rows record the claiming
//   pid, so a restart on the same host reclaims a dead process's rows at once.
// - A failure the API gave for the body itself (Completion::refused) is not queued again by
//   enqueue() while the row's hash and operation are the same, under the same refusal scope
//   (scope_refusals(): the settings that shape a request besides its body), for kRefusalHeld
//   (unless forced, or another write of the identity was left in flight or may have landed):
//   it would be refused again by every run. It stays failed, for `failures` and `retry`, with
//   any "resolve first" mark it has for the row that replaces it. A refusal may also have
//   come from the server's own state (a tenant setting, a gateway limit): after kRefusalHeld
//   it is sent again, once, so a fix on the server is picked up without an operator.
// - Change detection (SyncedStore): done/accepted updates record their hash; enqueue()
//   skips a row whose hash equals it (unless forced: backfill; or a write of the identity
//   was left in flight by a process that is gone, and may have landed), and drops any
//   update still waiting for that identity: the source is back to what the API already
//   has (this is also what makes the last of several rows with one identity win on every
//   run).
// - Rows journaled already claimed (enqueue_claimed) are stored as one in-flight batch per
//   transaction: one record holding every row (with its body) and a bitmap of the rows
//   answered, instead of a row inserted and then deleted per update (that pair was a quarter
//   of a push's CPU). A batch stands for its rows exactly as if each were an inflight row
//   with the batch's lease, pid and claim token: what this process holds is known in memory
//   (the pending update of an identity, for enqueue()); a success sets the row's bit and
//   records the synced hash in one transaction; any other outcome first writes the row out
//   as an ordinary inflight row and then records it as before. A run starts by writing out
//   every batch another claim token holds (take_over_batches(): a stopped process's, or an
//   earlier run's of this daemon) as those ordinary rows, before it enqueues or promotes
//   anything, and claim() does the same with one whose lease ended; so every rule above
//   applies to them unchanged. counts() and history() (`explain`) include batch rows; a
//   batch row's update id is negative.
// - The queue holds only what is still to do, and failures (dead letters, with their body,
//   for `retry`). An update that is done or accepted leaves it in the same transaction
//   that records its outcome in SyncedStore (hash, profile id, whether a 202 awaits
//   `verify`); a superseded one is deleted. So after a run the journal holds one small
//   synced row per identity, not a row per update sent, whatever the retention period.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <unordered_map>
#include <vector>

#include "daemon/journal/database.hpp"
#include "daemon/journal/synced_store.hpp"

namespace prefsync::journal {

struct NewUpdate {
    std::string identity;  // "CRMID:C1" or "profile:123"
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;
    std::string origin;
    std::string body;
    std::string hash;
    // "" the job's own write; for a profile that left the source: "deactivate", "archive"
    // or "delete"; "reactivate" for one that comes back after a deactivation.
    std::string op;
    // Not to be sent before release_held(): a later row of the same identity may still come
    // (the identity was a duplicate in the source before).
    bool held = false;
    // The job keeps each identity's last accepted body (mirror mode): found unchanged where
    // `synced` has no body (written in another mode), this body becomes it.
    bool keeps_body = false;
};

// StillRefused: the row is what the API refused for what it is (Completion::refused), under
// the same refusal scope, less than kRefusalHeld ago: not queued; its failure stays.
// QueuedWithoutBase: queued, a changed row of a job that keeps bodies (mirror) for a profile
// it synced without keeping one (in another mode): it goes out whole, and what the source
// cleared in it stays on the profile, which the run reports.
// AlreadyPendingFromEarlier: AlreadyPending, the write an earlier run left and this run held
// for its read (hold_pending): the row confirms it, so it is released now (sent at its due
// time), one this run sends without queuing it.
enum class EnqueueResult {
    Queued,
    QueuedWithoutBase,
    Unchanged,
    AlreadyPending,
    AlreadyPendingFromEarlier,
    AlreadyInRun,
    StillRefused
};

struct ClaimedUpdate {
    std::int64_t id = 0;
    std::string identity;
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;  // from the row or learned from the API
    std::string origin;
    std::string body;
    std::string hash;
    int attempts = 0;
    bool resolve = false;  // a write whose outcome is unknown: look it up before sending
    std::string op;        // as in NewUpdate
};

// Waiting: a newer row of an identity this process has a request out for; it becomes
// queued (or takes the retry's place) when that request is answered.
enum class State { Queued, Inflight, Retry, Accepted, Done, Verified, Failed, Superseded, Waiting };
std::string_view to_string(State state);

struct Completion {
    std::int64_t id = 0;
    State state = State::Done;  // Done, Accepted, Retry, Failed, or Queued (released)
    int status = 0;             // last HTTP status (0: none)
    std::string error;          // for Retry / Failed
    Millis due_at = 0;          // for Retry
    // For Retry: the outcome of an earlier attempt is unknown. For Failed: set too if so (a
    // mark the row has already stays either way).
    bool resolve = false;
    bool count_attempt = true;  // false: not the row's fault (released, breaker open, 429)
    std::optional<std::int64_t> profile_id;
    // Done/Accepted in mirror mode: the body to diff the next change against.
    std::optional<std::string> accepted_body;
    // Failed: the API refused this body for what it is (the producer decides which answers
    // say so). A sync does not send it again while its row is unchanged; `retry`, a backfill
    // or a changed row does.
    bool refused = false;
};

struct StateCounts {
    std::int64_t queued = 0, inflight = 0, retry = 0, failed = 0, waiting = 0;
    // Of `retry`: held until the end of a read (rows that left the source, a duplicate id's
    // later rows, an earlier run's writes during a read): not sent, whatever their due time.
    std::int64_t held = 0;
    // Identities by the outcome of their last write (SyncedStore): 200/201, a 202 not yet
    // verified, a 202 read back as complete.
    std::int64_t done = 0, accepted = 0, verified = 0;
    std::int64_t pending() const { return queued + inflight + retry + waiting; }
};

// One update of an identity, as `explain` shows it.
struct UpdateRecord {
    std::int64_t id = 0;
    std::string state, op, origin, error;
    int status = 0, attempts = 0;
    bool resolve = false;
    Millis created_at = 0, updated_at = 0;
    std::optional<std::int64_t> profile_id;  // known when it was queued (a create job then updates it)
    std::int64_t refused_scope = 0;          // failed, the API refusing the body: the scope (else 0)
};

struct Failure {
    std::int64_t id;
    std::string identity, origin, error;
    int status;
    int attempts;
};

class UpdateQueue {
public:
    UpdateQueue(Database& db, SyncedStore& synced);

    // Records `u` for `job`. `force` sends even an unchanged row (backfill); `run_id` ties it
    // to a backfill so a resumed backfill skips what it already enqueued. `sync`: its
    // transaction's (Database::Sync; inside a caller's, the caller's must allow it).
    EnqueueResult enqueue(const std::string& job, const NewUpdate& u, Millis now, bool force,
                          std::optional<std::int64_t> run_id = std::nullopt,
                          Database::Sync sync = Database::Sync::durable);
    // As enqueue(), for a row the caller sends at once: if it is to be sent now (not held,
    // not waiting for an answer), it is recorded already claimed (inflight, leased until
    // now + lease, with this queue's token), as claim() would have, and returned in `claimed`.
    // One write per row instead of an insert and then the claim's rewrite of it.
    EnqueueResult enqueue_claimed(const std::string& job, NewUpdate u, Millis now, bool force,
                                  std::optional<std::int64_t> run_id, Millis lease,
                                  std::optional<ClaimedUpdate>& claimed, Database::Sync sync = Database::Sync::durable);
    // Marks up to `limit` due updates of `job` inflight (lease until now + lease) and returns
    // them, oldest first. Never two of one identity; never a row this queue already holds.
    std::vector<ClaimedUpdate> claim(const std::string& job, int limit, Millis now, Millis lease);
    // Extends the lease of every row this queue holds for `job`.
    void renew(const std::string& job, Millis now, Millis lease);
    // Records outcomes, in one transaction, committed without an fsync of its own
    // (Sync::deferred): losing it leaves the updates in flight, to be resolved as after a kill.
    void complete(const std::string& job, const std::vector<Completion>& completions, Millis now);
    // Writes out every in-flight batch of `job` another claim token holds (a process that
    // stopped, or an earlier run of this one) as the inflight rows it stands for, keeping
    // their leases, pids and tokens; returns how many rows. For the start of a run, under
    // the job's lock (no other process holds rows of it), before anything is enqueued or
    // promoted: from then on the queue's rules see those rows as they see any other.
    std::int64_t take_over_batches(const std::string& job);
    // Ends the lease of rows claimed by processes of this host that no longer exist (a
    // kill -9), and by this pid under another claim token (a container's process restarted
    // as pid 1, where the dead one was pid 1 too), so a restart need not wait for the lease;
    // returns how many. Under the job's lock.
    std::int64_t release_dead_claims(const std::string& job);
    // When the next retry of `job` is due; nullopt if none waits (held updates do not).
    std::optional<Millis> next_due(const std::string& job);
    // Which held updates release_held() makes due.
    enum class Held {
        All,            // every one: the read ended
        ForRead,        // only what hold_pending() held, not the rows of duplicate ids nor those
                        // of rows that left (hold_writes()): for a read cut short, for a run that
                        // does not read its source (`retry`, the daemon's between reads), and after
                        // the removals a complete read journals
        ExceptForRead,  // the others: the read ended (what hold_pending() held waits for its
                        // removals, which may hold it again as a row that left)
    };
    // Ends the hold of `job`'s held updates; each is due at its own due time then (a retry's
    // backoff or Retry-After stands; one held before its first send is due at once). Returns
    // how many (for Held::ForRead: the writes earlier runs left that no row replaced).
    std::int64_t release_held(const std::string& job, Held which = Held::All);
    // How many updates of `job` are held for a duplicate id's later row.
    std::int64_t held(const std::string& job);
    // Queues the updates left waiting by a process that is gone (call before claiming, when
    // this process holds nothing of the job); returns how many identities.
    std::int64_t promote_all_waiting(const std::string& job, Millis now);

    // Updates of `job` still to send (counts().pending()), from the queue alone: reads only,
    // and nothing staged needs merging first (a journal that refuses writes still answers).
    std::int64_t pending(const std::string& job);
    StateCounts counts(const std::string& job);
    // Identities of `job` with a write (not a removal) still pending or failed and no present
    // row in `synced`, one call each (with its profile id if one is known): `may_exist` if
    // one of those writes may have landed (in flight, or carrying a "resolve first" mark);
    // otherwise none reached the API, and they would be sent (pending, or failed: `retry`).
    void for_each_unsettled(const std::string& job,
                            const std::function<void(const KnownIdentity&, bool may_exist)>& fn);
    // for_each_unsettled() for one identity, this process's in-flight batches included:
    // nullopt if it has no write (not a removal) pending or failed; else whether one may
    // have landed, and the profile id one of them knows. For a row the source marks deleted
    // whose identity has no present row in `synced`.
    struct Unsettled {
        std::optional<std::int64_t> profile_id;
        bool may_exist = false;
    };
    std::optional<Unsettled> unsettled_of(const std::string& job, const std::string& identity);
    // The writes (not removals) still in flight in other processes' batches of `job`, by
    // identity: those a killed run left until a run takes them over (take_over_batches()),
    // or those of a run going on. A run holding the job's lock has taken them over before it
    // reads; `plan`, which takes no lock and changes nothing, counts them as writes that may
    // have landed, as the sync after it will. Throws JournalError for a damaged batch.
    std::map<std::string, KnownIdentity> in_flight_elsewhere(const std::string& job);
    // Identities of `job` with a write (not a removal) that may have landed and is not
    // settled: in flight (an ordinary row, or in another process's batch: `plan` has none
    // of its own), or pending or failed with a "resolve first" mark (enqueue() sends their
    // rows even when unchanged). One query per state, for `plan`, which must not ask per row.
    std::unordered_set<std::string> may_have_landed(const std::string& job);
    // Identities of `job` with an update still to send (the states of counts().pending(),
    // and other processes' in-flight batches): `plan`'s "besides these" count.
    std::unordered_set<std::string> pending_identities(const std::string& job);
    // Which failed writes hold_writes() and drop_unsent_writes() take besides the pending ones:
    // every one, or all but one the API refused, as enqueue() judges a refusal at `now` (a
    // row marked deleted, before a later row of it can take the removal back: a body the
    // API refused must then still be known as refused; left behind by a kill, `retry` would
    // only have it refused again).
    enum class Failures { Take, ExceptRefused };
    // Holds the pending writes (not removals, not in flight) of `identity` until the end of
    // a read (release_held(…, Held::All)): its row left the source or is marked deleted and
    // its removal is not journaled yet (or was refused by max_missing, or the read could not
    // tell which rows left), so they wait for a read that settles them. A run that reads
    // nothing (`retry`, the daemon's) does not release them. The identity's last failed write
    // is held too (made a held retry, so `retry` does not send it), as `failures` says.
    // Returns how many.
    std::int64_t hold_writes(const std::string& job, const std::string& identity, Failures failures = Failures::Take,
                             Millis now = 0);
    // Deletes the pending (not in flight) and failed writes of `identity`, failures as
    // `failures` says: its row left the source, or is marked deleted, before any of them
    // reached the API. Returns how many.
    std::int64_t drop_unsent_writes(const std::string& job, const std::string& identity,
                                    Failures failures = Failures::Take, Millis now = 0);
    // Holds every queued or retrying update of `job` until release_held(): writes an earlier
    // run left, for a read that will tell which of their rows left the source, and which are
    // back at what the API has (each keeps its due time). So are those
    // another claim token left in flight (after take_over_batches()), whatever their lease
    // says: under the job's lock no other process holds rows of the job (a container's
    // restarted process has the dead one's pid, and its lease may not have ended). They wait
    // to retry, marked "resolve first" as a claim of them would have marked them (sent first,
    // a killed run's upserts made the profiles of people no longer in the source, then
    // removed them). For the start of a run, under the job's lock. Returns how many.
    std::int64_t hold_pending(const std::string& job);
    // The updates a run (a backfill) gave up on that are still failed: a resumed backfill
    // does not send them again (they are the run's), so it reports them.
    // Only those failed before `before` if given (by an earlier part of a resumed backfill).
    std::int64_t failed_of_run(std::int64_t run_id, std::optional<Millis> before = std::nullopt);
    std::vector<std::string> jobs();
    std::vector<Failure> failures(const std::string& job);
    // How long a refusal holds its body back (see the header comment).
    static constexpr Millis kRefusalHeld = 12 * 3600 * 1000;
    // The refusal scope of `job` from now on (non-zero; 0, the default: nothing is skipped).
    // A failure records the scope it was refused under; a row is skipped only under the same.
    void scope_refusals(const std::string& job, std::int64_t scope);
    // Whether a failure of `identity` carries a "resolve first" mark (its write may have
    // landed): a sync sends the row even at the synced hash (for `plan`).
    bool marked_failure(const std::string& job, const std::string& identity);
    // Whether a sync would skip a row of `identity` with `hash` as StillRefused, judged from
    // the failures alone (for `plan`; enqueue() also weighs what is pending).
    bool refused(const std::string& job, const std::string& identity, const std::string& hash, std::int64_t scope,
                 Millis now);
    // Re-queues failed updates (all, or those with `status`); returns how many.
    std::int64_t retry_failed(const std::string& job, std::optional<int> status, Millis now);
    // The updates of `identity` still in the queue (pending, waiting, failed), newest first.
    std::vector<UpdateRecord> history(const std::string& job, const std::string& identity, int limit);

    // This queue's claim token (random per process): what claim() and renew() recognise.
    std::int64_t claim_token() const { return token_; }

private:
    // The identities the constant `queries` (each binding the job as ?1) select, and those
    // of other processes' in-flight batches.
    std::unordered_set<std::string> identities(std::span<const char* const> queries, const std::string& job);

    // `owned`: `u` itself, which a row sent at once moves into its batch.
    EnqueueResult enqueue_impl(const std::string& job, const NewUpdate& u, Millis now, bool force,
                               std::optional<std::int64_t> run_id, std::optional<Millis> lease,
                               std::optional<ClaimedUpdate>* claimed, NewUpdate* owned, Database::Sync sync);
    // Returns the row's id. `lease`: inserted inflight, claimed by this queue.
    std::int64_t insert(const std::string& job, const NewUpdate& u, const std::string& op, const std::string& state,
                        Millis due_at, bool resolve, std::optional<std::int64_t> profile_id,
                        std::optional<std::int64_t> run_id, Millis now, std::optional<Millis> lease = std::nullopt);
    void supersede(std::int64_t id);
    void supersede_waiting(const std::string& job, const std::string& identity);
    // Failures of `identity` (older than `before_id`, if given): a newer change replaces them.
    // Returns whether one was marked "resolve first", and the last profile id one learned.
    struct Superseded {
        bool resolve = false;
        std::optional<std::int64_t> profile_id;
    };
    StateCounts queue_counts(const std::string& job);  // counts() without the synced ones
    Superseded supersede_failed(const std::string& job, const std::string& identity,
                                std::optional<std::int64_t> before_id);
    // Which kinds of rows `job` has in `updates` at all (and whether `run_id` sent any),
    // read once per transaction and again after any write but the queue's own inserts and
    // deletes (which it adds in): a backfill into a queue that holds nothing of the job (its
    // rows in flight are batches) skips four look-ups per row.
    struct QueueShape {
        bool pending = true, waiting = true, failed = true, of_run = true;
    };
    QueueShape shape(const std::string& job, std::optional<std::int64_t> run_id);
    // Whether shape_ still holds: same transaction, no write since (insert() and supersede()
    // keep it up to date themselves).
    bool shape_known() const;
    struct KnownShape {
        std::uint64_t transaction = 0;
        std::int64_t changes = -1;
        std::string job;
        std::optional<std::int64_t> run_id;
        QueueShape has;
    };
    // The newest waiting update of `identity` takes over, in `state`, after `predecessor`
    // (superseded first); false if none waits.
    bool promote_waiting(const std::string& job, const std::string& identity, std::optional<std::int64_t> predecessor,
                         std::string state, Millis due_at, bool resolve, std::optional<std::int64_t> profile_id,
                         Millis now);

    // In-flight batches (see the header comment). A batch row's update id is negative:
    // -(batch id * kBatchRows + index) - 1.
    struct BatchRow {
        NewUpdate u;  // identity, alternate id, profile id, origin, body, hash; op as sent
        std::optional<std::int64_t> run_id;
        bool resolve = false;
        bool finished = false;
    };
    struct Batch {
        std::string job;
        std::vector<BatchRow> rows;
        std::int64_t remaining = 0;
        Millis lease_until = 0, created_at = 0;
        bool sealed = false;
    };
    static constexpr std::int64_t kBatchRows = std::int64_t{1} << 20;
    std::int64_t add_to_batch(const std::string& job, NewUpdate&& u, const std::string& op, bool resolve,
                              std::optional<std::int64_t> profile_id, std::optional<std::int64_t> run_id, Millis now,
                              Millis lease);
    void seal(std::int64_t batch_id);
    void discard(std::int64_t batch_id);
    // The row of this process's batches that `id` names, if it is still in flight.
    BatchRow* batched(std::int64_t id);
    // Writes out, as ordinary inflight rows, the batches of `job` held by other claim tokens
    // (those whose lease ended before `expired_before`, if given).
    std::int64_t adopt_batches(const std::string& job, std::optional<Millis> expired_before);
    static std::int64_t batch_of(std::int64_t id) { return -(id + 1) / kBatchRows; }
    // The key of held_ (job, then identity), written into a buffer kept for it: valid until
    // the next call.
    const std::string& lookup_key(const std::string& job, const std::string& identity);

    Database& db_;
    SyncedStore& synced_;
    std::int64_t token_;
    std::map<std::int64_t, Batch> batches_;
    std::optional<std::int64_t> open_batch_;              // written by the transaction in progress
    std::unordered_map<std::string, std::int64_t> held_;  // job + identity -> batch row id
    KnownShape shape_;
    std::string lookup_key_;
    std::map<std::string, std::int64_t> refusal_scope_;           // job → scope_refusals()
    std::int64_t refusal_scope_of(const std::string& job) const;  // 0: none set
};

}  // namespace prefsync::journal
