#include "daemon/journal/update_queue.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <map>
#include <random>

namespace prefsync::journal {
namespace {

State parse_state(const std::string& s) {
    static const std::map<std::string, State> m{{"queued", State::Queued}, {"inflight", State::Inflight},
                                                {"retry", State::Retry},   {"accepted", State::Accepted},
                                                {"done", State::Done},     {"verified", State::Verified},
                                                {"failed", State::Failed}, {"superseded", State::Superseded}};
    return m.at(s);
}

// The columns read_update() expects, in its order.
#define UPDATE_COLUMNS "id, identity, alt_type, alt_id, profile_id, origin, hash, attempts, resolve, op"

ClaimedUpdate read_update(Statement& s) {
    ClaimedUpdate c;
    c.id = s.i64(0);
    c.identity = s.text(1);
    c.alt_type = s.text(2);
    c.alt_id = s.text(3);
    c.profile_id = s.opt_i64(4);
    c.origin = s.text(5);
    c.hash = s.text(6);
    c.attempts = static_cast<int>(s.i64(7));
    c.resolve = s.i64(8) != 0;
    c.op = s.text(9);
    return c;
}

// The due time of a held update: never, until release_held().
constexpr Millis kHeld = std::numeric_limits<Millis>::max();

std::int64_t random_token() {
    std::random_device device;
    std::uniform_int_distribution<std::int64_t> pick(1, INT64_MAX);
    return pick(device);
}

}  // namespace

std::string_view to_string(State state) {
    switch (state) {
        case State::Queued: return "queued";
        case State::Inflight: return "inflight";
        case State::Retry: return "retry";
        case State::Accepted: return "accepted";
        case State::Done: return "done";
        case State::Verified: return "verified";
        case State::Failed: return "failed";
        case State::Superseded: return "superseded";
    }
    return "?";
}

UpdateQueue::UpdateQueue(Database& db, SyncedStore& synced) : db_(db), synced_(synced), token_(random_token()) {}

EnqueueResult UpdateQueue::enqueue(const std::string& job, const NewUpdate& u, Millis now, bool force,
                                   std::optional<std::int64_t> run_id) {
    Database::Transaction tx(db_);
    if (run_id) {
        auto s = db_.prepare("SELECT 1 FROM updates WHERE run_id = ?1 AND identity = ?2 AND hash = ?3 LIMIT 1");
        s.bind(1, *run_id).bind(2, u.identity).bind(3, u.hash);
        if (s.step()) {
            tx.commit();
            return EnqueueResult::AlreadyInRun;
        }
    }
    auto synced = synced_.get(job, u.identity);
    std::string op = u.op;
    if (op.empty() && synced && synced->gone == "deactivated") op = "reactivate";  // back in the source
    bool present = !synced || synced->gone.empty();
    if (!force && op.empty() && present && synced && synced->hash == u.hash) {
        // The API has this already: whatever still waits for the identity is obsolete (an
        // earlier row of the same identity in this file, or an older change).
        auto s = db_.prepare(
            "UPDATE updates SET state = 'superseded', updated_at = ?3 WHERE job = ?1 "
            "AND identity = ?2 AND state IN ('queued', 'retry') RETURNING id");
        s.bind(1, job).bind(2, u.identity).bind(3, now);
        std::vector<std::int64_t> obsolete;
        while (s.step()) obsolete.push_back(s.i64(0));
        for (auto id : obsolete) drop_body(id);
        tx.commit();
        return EnqueueResult::Unchanged;
    }
    bool inherit_resolve = false;
    {
        auto s = db_.prepare(
            "SELECT id, hash, state, resolve FROM updates WHERE job = ?1 AND identity = ?2 "
            "AND state IN ('queued', 'inflight', 'retry')");
        s.bind(1, job).bind(2, u.identity);
        if (s.step()) {
            auto id = s.i64(0);
            if (s.text(1) == u.hash && !run_id && op.empty()) {
                tx.commit();
                return EnqueueResult::AlreadyPending;
            }
            // An update left in flight (its process died) or already marked "resolve first"
            // may have landed: its successor must look before it writes.
            inherit_resolve = s.text(2) == "inflight" || s.i64(3) != 0;
            db_.prepare("UPDATE updates SET state = 'superseded', updated_at = ?2 WHERE id = ?1")
                .bind(1, id)
                .bind(2, now)
                .run();
            drop_body(id);
        }
    }
    std::optional<std::int64_t> profile_id = u.profile_id;
    if (!profile_id && synced) profile_id = synced->profile_id;
    auto ins = db_.prepare(
        "INSERT INTO updates(job, identity, alt_type, alt_id, profile_id, origin, hash, "
        "state, due_at, run_id, resolve, created_at, updated_at, op) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?13, ?9, ?10, ?11, ?11, NULLIF(?12, ''))");
    ins.bind(1, job).bind(2, u.identity).bind(3, u.alt_type).bind(4, u.alt_id).bind(5, profile_id);
    ins.bind(6, u.origin).bind(8, u.hash).bind(9, run_id);
    ins.bind(10, static_cast<std::int64_t>(inherit_resolve)).bind(11, now).bind(12, op);
    ins.bind(7, std::string(u.held ? "retry" : "queued")).bind(13, u.held ? kHeld : Millis{0});
    ins.run();
    db_.prepare("INSERT INTO bodies(id, body) VALUES (last_insert_rowid(), ?1)").bind(1, u.body).run();
    tx.commit();
    return EnqueueResult::Queued;
}

std::vector<ClaimedUpdate> UpdateQueue::claim(const std::string& job, int limit, Millis now, Millis lease) {
    Database::Transaction tx(db_);
    std::vector<ClaimedUpdate> out;
    {
        // The partial unique index keeps one pending row per identity, so no two claimed
        // rows share an identity. A row still inflight here was claimed by a process that
        // died (or lost its lease): its request may have landed, so it is resolved first.
        // Rows this queue holds are never taken again, whatever their lease says.
        // Three index range scans (queued by id, retries by due time, expired leases), not
        // one OR over the whole table: claim is called every few dozen requests.
        auto s = db_.prepare(
            "UPDATE updates SET state = 'inflight', lease_until = ?3, updated_at = ?2, claimed_by = ?5, "
            "claim_token = ?6, resolve = CASE WHEN state = 'inflight' THEN 1 ELSE resolve END "
            "WHERE id IN (SELECT id FROM ("
            "  SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'queued' ORDER BY id LIMIT ?4)"
            "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'retry' AND due_at <= ?2 "
            "    ORDER BY due_at LIMIT ?4)"
            "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'inflight' "
            "    AND lease_until < ?2 AND claim_token IS NOT ?6 LIMIT ?4)) ORDER BY id LIMIT ?4) "
            "RETURNING " UPDATE_COLUMNS);
        s.bind(1, job).bind(2, now).bind(3, now + lease).bind(4, static_cast<std::int64_t>(limit));
        s.bind(5, static_cast<std::int64_t>(getpid())).bind(6, token_);
        while (s.step()) out.push_back(read_update(s));
    }
    for (auto& c : out) {
        auto b = db_.prepare("SELECT body FROM bodies WHERE id = ?1");
        b.bind(1, c.id);
        if (b.step()) c.body = b.text(0);
    }
    tx.commit();
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
}

void UpdateQueue::renew(const std::string& job, Millis now, Millis lease) {
    db_.prepare("UPDATE updates SET lease_until = ?2 WHERE job = ?1 AND state = 'inflight' AND claim_token = ?3")
        .bind(1, job)
        .bind(2, now + lease)
        .bind(3, token_)
        .run();
}

void UpdateQueue::complete(const std::string& job, const std::vector<Completion>& completions, Millis now) {
    if (completions.empty()) return;
    Database::Transaction tx(db_);
    for (const auto& c : completions) {
        switch (c.state) {
            case State::Done:
            case State::Accepted: {
                auto s = db_.prepare(
                    "UPDATE updates SET state = ?2, last_status = ?3, last_error = NULL, "
                    "attempts = attempts + 1, resolve = 0, claim_token = NULL, "
                    "profile_id = COALESCE(?4, profile_id), updated_at = ?5 WHERE id = ?1 "
                    "RETURNING identity, hash, profile_id, coalesce(op, '')");
                s.bind(1, c.id).bind(2, std::string(to_string(c.state))).bind(3, static_cast<std::int64_t>(c.status));
                s.bind(4, c.profile_id).bind(5, now);
                if (s.step()) {
                    drop_body(c.id);
                    auto identity = s.text(0), hash = s.text(1), op = s.text(3);
                    auto pid = s.opt_i64(2);
                    if (op == "deactivate")
                        synced_.mark_gone(job, identity, "deactivated", now);
                    else if (op == "archive")
                        synced_.mark_gone(job, identity, "archived", now);
                    else if (op == "delete")
                        synced_.mark_gone(job, identity, "", now);
                    else
                        synced_.record(job, identity, hash, pid, now, c.accepted_body);
                }
                break;
            }
            case State::Retry:
                db_.prepare(
                       "UPDATE updates SET state = 'retry', attempts = attempts + ?6, due_at = ?2, "
                       "last_status = ?3, last_error = ?4, resolve = ?5, claim_token = NULL, "
                       "profile_id = COALESCE(?7, profile_id), updated_at = ?8 WHERE id = ?1")
                    .bind(1, c.id)
                    .bind(2, c.due_at)
                    .bind(3, static_cast<std::int64_t>(c.status))
                    .bind(4, c.error)
                    .bind(5, static_cast<std::int64_t>(c.resolve))
                    .bind(6, static_cast<std::int64_t>(c.count_attempt))
                    .bind(7, c.profile_id)
                    .bind(8, now)
                    .run();
                break;
            case State::Failed:
                db_.prepare(
                       "UPDATE updates SET state = 'failed', attempts = attempts + ?5, last_status = ?2, "
                       "last_error = ?3, claim_token = NULL, updated_at = ?4 WHERE id = ?1")
                    .bind(1, c.id)
                    .bind(2, static_cast<std::int64_t>(c.status))
                    .bind(3, c.error)
                    .bind(4, now)
                    .bind(5, static_cast<std::int64_t>(c.count_attempt))
                    .run();
                break;
            case State::Queued:
                // Released unsent: whatever "resolve first" mark the row had, it keeps.
                db_.prepare(
                       "UPDATE updates SET state = 'queued', lease_until = 0, claim_token = NULL, "
                       "attempts = attempts + ?3, updated_at = ?2 WHERE id = ?1")
                    .bind(1, c.id)
                    .bind(2, now)
                    .bind(3, static_cast<std::int64_t>(c.count_attempt))
                    .run();
                break;
            default: throw JournalError("journal " + db_.path() + ": invalid completion state");
        }
    }
    tx.commit();
}

std::int64_t UpdateQueue::release_dead_claims(const std::string& job) {
    std::vector<std::int64_t> owners;
    {
        auto s = db_.prepare(
            "SELECT DISTINCT claimed_by FROM updates WHERE job = ?1 AND state = 'inflight' "
            "AND claimed_by IS NOT NULL");
        s.bind(1, job);
        while (s.step()) owners.push_back(s.i64(0));
    }
    std::int64_t released = 0;
    Database::Transaction tx(db_);
    for (auto pid : owners) {
        if (pid == getpid()) continue;
        if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to know)
        db_.prepare("UPDATE updates SET lease_until = 0 WHERE job = ?1 AND state = 'inflight' AND claimed_by = ?2")
            .bind(1, job)
            .bind(2, pid)
            .run();
        released += db_.changes();
    }
    tx.commit();
    return released;
}

std::optional<Millis> UpdateQueue::next_due(const std::string& job) {
    // One small partial index per state, not a scan of every pending row: this is asked
    // each time the send loop runs dry.
    {
        auto s = db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'queued' LIMIT 1");
        s.bind(1, job);
        if (s.step()) return Millis{0};
    }
    std::optional<Millis> due;
    auto earliest = [&](std::optional<Millis> t) {
        if (t && (!due || *t < *due)) due = t;
    };
    {
        auto s = db_.prepare("SELECT MIN(due_at) FROM updates WHERE job = ?1 AND state = 'retry' AND due_at < ?2");
        s.bind(1, job).bind(2, kHeld);
        if (s.step()) earliest(s.opt_i64(0));
    }
    {
        auto s = db_.prepare(
            "SELECT MIN(lease_until) FROM updates WHERE job = ?1 AND state = 'inflight' "
            "AND claim_token IS NOT ?2");
        s.bind(1, job).bind(2, token_);
        if (s.step()) earliest(s.opt_i64(0));
    }
    return due;
}

std::int64_t UpdateQueue::release_held(const std::string& job, Millis now) {
    db_.prepare("UPDATE updates SET due_at = ?2 WHERE job = ?1 AND state = 'retry' AND due_at = ?3")
        .bind(1, job)
        .bind(2, now)
        .bind(3, kHeld)
        .run();
    return db_.changes();
}

void UpdateQueue::drop_body(std::int64_t id) {
    db_.prepare("DELETE FROM bodies WHERE id = ?1").bind(1, id).run();
}

StateCounts UpdateQueue::counts(const std::string& job) {
    StateCounts c;
    auto s = db_.prepare("SELECT state, COUNT(*) FROM updates WHERE job = ?1 GROUP BY state");
    s.bind(1, job);
    while (s.step()) {
        auto n = s.i64(1);
        switch (parse_state(s.text(0))) {
            case State::Queued: c.queued = n; break;
            case State::Inflight: c.inflight = n; break;
            case State::Retry: c.retry = n; break;
            case State::Accepted: c.accepted = n; break;
            case State::Done: c.done = n; break;
            case State::Verified: c.verified = n; break;
            case State::Failed: c.failed = n; break;
            case State::Superseded: c.superseded = n; break;
        }
    }
    return c;
}

std::vector<std::string> UpdateQueue::jobs() {
    std::vector<std::string> out;
    auto s = db_.prepare("SELECT DISTINCT job FROM updates ORDER BY job");
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::vector<Failure> UpdateQueue::failures(const std::string& job) {
    std::vector<Failure> out;
    auto s = db_.prepare(
        "SELECT id, identity, origin, COALESCE(last_status, 0), COALESCE(last_error, ''), attempts "
        "FROM updates WHERE job = ?1 AND state = 'failed' ORDER BY id");
    s.bind(1, job);
    while (s.step())
        out.push_back(
            {s.i64(0), s.text(1), s.text(2), s.text(4), static_cast<int>(s.i64(3)), static_cast<int>(s.i64(5))});
    return out;
}

std::int64_t UpdateQueue::retry_failed(const std::string& job, std::optional<int> status, Millis now) {
    Database::Transaction tx(db_);
    // A newer pending change for the same identity wins; its failed predecessor is superseded.
    {
        auto s = db_.prepare(
            "UPDATE updates SET state = 'superseded', updated_at = ?2 WHERE job = ?1 "
            "AND state = 'failed' AND identity IN (SELECT identity FROM updates WHERE job = ?1 "
            "AND state IN ('queued','inflight','retry')) RETURNING id");
        s.bind(1, job).bind(2, now);
        std::vector<std::int64_t> obsolete;
        while (s.step()) obsolete.push_back(s.i64(0));
        // So does a newer failed change of the same identity: only one may be pending again.
        auto t = db_.prepare(
            "UPDATE updates SET state = 'superseded', updated_at = ?2 WHERE job = ?1 AND state = 'failed' "
            "AND EXISTS (SELECT 1 FROM updates n WHERE n.job = ?1 AND n.identity = updates.identity "
            "AND n.state = 'failed' AND n.id > updates.id) RETURNING id");
        t.bind(1, job).bind(2, now);
        while (t.step()) obsolete.push_back(t.i64(0));
        for (auto id : obsolete) drop_body(id);
    }
    auto s = db_.prepare(
        "UPDATE updates SET state = 'queued', attempts = 0, due_at = 0, updated_at = ?2 "
        "WHERE job = ?1 AND state = 'failed' AND (?3 IS NULL OR last_status = ?3)");
    s.bind(1, job).bind(2, now);
    if (status)
        s.bind(3, static_cast<std::int64_t>(*status));
    else
        s.bind_null(3);
    s.run();
    auto n = db_.changes();
    tx.commit();
    return n;
}

std::vector<UpdateRecord> UpdateQueue::history(const std::string& job, const std::string& identity, int limit) {
    std::vector<UpdateRecord> out;
    auto s = db_.prepare(
        "SELECT id, state, coalesce(op, ''), coalesce(origin, ''), coalesce(last_error, ''), "
        "coalesce(last_status, 0), attempts, resolve, created_at, updated_at FROM updates "
        "WHERE job = ?1 AND identity = ?2 ORDER BY id DESC LIMIT ?3");
    s.bind(1, job).bind(2, identity).bind(3, static_cast<std::int64_t>(limit));
    while (s.step())
        out.push_back({s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), static_cast<int>(s.i64(5)),
                       static_cast<int>(s.i64(6)), s.i64(7) != 0, s.i64(8), s.i64(9)});
    return out;
}

std::vector<ClaimedUpdate> UpdateQueue::accepted(const std::string& job, int limit) {
    std::vector<ClaimedUpdate> out;
    auto s = db_.prepare("SELECT " UPDATE_COLUMNS
                         " FROM updates WHERE job = ?1 AND state = 'accepted' "
                         "ORDER BY id LIMIT ?2");
    s.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(read_update(s));
    return out;
}

std::vector<Millis> UpdateQueue::mark_verified(const std::vector<std::int64_t>& ids, Millis now) {
    std::vector<Millis> waited;
    Database::Transaction tx(db_);
    for (auto id : ids) {
        // updated_at is when the 202 was recorded: the wait for "Complete" (an upper bound,
        // to the granularity of verification).
        {
            auto q = db_.prepare("SELECT updated_at FROM updates WHERE id = ?1 AND state = 'accepted'");
            q.bind(1, id);
            if (!q.step()) continue;
            waited.push_back(std::max<Millis>(0, now - q.i64(0)));
        }
        db_.prepare("UPDATE updates SET state = 'verified', updated_at = ?2 WHERE id = ?1")
            .bind(1, id)
            .bind(2, now)
            .run();
    }
    tx.commit();
    return waited;
}

std::int64_t UpdateQueue::prune(Millis before, int limit) {
    Database::Transaction tx(db_);
    db_.prepare(
           "DELETE FROM updates WHERE id IN (SELECT id FROM updates WHERE updated_at < ?1 "
           "AND state IN ('done', 'verified', 'superseded') LIMIT ?2)")
        .bind(1, before)
        .bind(2, static_cast<std::int64_t>(limit))
        .run();
    auto n = db_.changes();
    tx.commit();
    return n;
}

}  // namespace prefsync::journal
