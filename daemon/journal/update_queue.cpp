#include "daemon/journal/update_queue.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cerrno>
#include <limits>
#include <map>
#include <random>
#include <unordered_set>

namespace prefsync::journal {
namespace {

// The columns read_update() expects, in its order.
#define UPDATE_COLUMNS "id, identity, alt_type, alt_id, profile_id, origin, hash, attempts, resolve, op, body"

ClaimedUpdate read_update(Statement& s) {
    ClaimedUpdate c;
    c.id = s.i64(0);
    c.identity = s.text(1);
    c.alt_type = s.text(2);
    c.alt_id = s.text(3);
    c.profile_id = s.opt_i64(4);
    c.origin = s.text(5);
    c.hash = s.hash(6);
    c.attempts = static_cast<int>(s.i64(7));
    c.resolve = s.i64(8) != 0;
    c.op = s.text(9);
    c.body = s.text(10);
    return c;
}

// Why an update is held (updates.held): not sent, whatever its due time, until
// release_held(); its due time (a retry's backoff, a Retry-After) stands after that.
constexpr std::int64_t kNotHeld = 0;
// Held by hold_pending() for the read: released by a read cut short too, and by a run that
// does not read its source.
constexpr std::int64_t kHeldForRead = 1;
// Held by hold_writes(): a row that left the source (or could not be told apart from one
// that did) whose removal was not journaled. Released only at the end of a read, which
// settles it or holds it again; not by a run that reads nothing, and kept by hold_pending().
constexpr std::int64_t kHeldLeft = 2;
// A later row of a duplicate id may still come: released at the end of a read only.
constexpr std::int64_t kHeldDuplicate = 3;

// An in-flight batch's rows, one after another: seven length-prefixed strings (identity,
// alternate id type and value, origin, hash, op, body), a flags byte (profile id, run id,
// resolve) and the ids it announces, little-endian.
void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_i64(std::string& out, std::int64_t v) {
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}
void put_str(std::string& out, const std::string& v) {
    put_u32(out, static_cast<std::uint32_t>(v.size()));
    out += v;
}

struct EncodedRow {
    NewUpdate u;
    std::optional<std::int64_t> run_id;
    bool resolve = false;
};

std::array<const std::string*, 7> encoded_strings(const NewUpdate& u) {
    return {&u.identity, &u.alt_type, &u.alt_id, &u.origin, &u.hash, &u.op, &u.body};
}

void encode_row(std::string& out, const NewUpdate& u, std::optional<std::int64_t> run_id, bool resolve) {
    for (const auto* f : encoded_strings(u)) put_str(out, *f);
    out.push_back(static_cast<char>((u.profile_id ? 1 : 0) | (run_id ? 2 : 0) | (resolve ? 4 : 0)));
    if (u.profile_id) put_i64(out, *u.profile_id);
    if (run_id) put_i64(out, *run_id);
}

// At most encode_row()'s size for `u` (both ids counted, whether or not they are set).
std::size_t encoded_size(const NewUpdate& u) {
    std::size_t size = 1 + 2 * 8;
    for (const auto* f : encoded_strings(u)) size += 4 + f->size();
    return size;
}

std::vector<EncodedRow> decode_rows(const std::string& blob, const std::string& where) {
    std::vector<EncodedRow> rows;
    std::size_t at = 0;
    auto need = [&](std::size_t n) {
        if (blob.size() - at < n) throw JournalError(where + " is cut short: the journal is damaged");
    };
    auto u64 = [&](int bytes) {
        need(static_cast<std::size_t>(bytes));
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(blob[at++])) << (8 * i);
        return v;
    };
    auto str = [&](std::string& v) {
        auto n = static_cast<std::size_t>(u64(4));
        need(n);
        v.assign(blob, at, n);
        at += n;
    };
    while (at < blob.size()) {
        EncodedRow r;
        for (auto* f : {&r.u.identity, &r.u.alt_type, &r.u.alt_id, &r.u.origin, &r.u.hash, &r.u.op, &r.u.body}) str(*f);
        auto flags = u64(1);
        if (flags & 1) r.u.profile_id = static_cast<std::int64_t>(u64(8));
        if (flags & 2) r.run_id = static_cast<std::int64_t>(u64(8));
        r.resolve = (flags & 4) != 0;
        rows.push_back(std::move(r));
    }
    return rows;
}

// A batch's rows, checked against the count its record gives.
std::vector<EncodedRow> batch_rows(const std::string& blob, std::int64_t count, const std::string& where) {
    auto rows = decode_rows(blob, where);
    if (static_cast<std::int64_t>(rows.size()) != count)
        throw JournalError(where + " holds " + std::to_string(rows.size()) + " rows, not " + std::to_string(count) +
                           ": the journal is damaged");
    return rows;
}

// A batch's bitmap of answered rows: bit i of byte i / 8.
bool bit_set(const std::string& bits, std::size_t i) {
    return i / 8 < bits.size() && (static_cast<unsigned char>(bits[i / 8]) >> (i % 8)) & 1;
}
void set_bit(std::string& bits, std::size_t i) {
    bits[i / 8] = static_cast<char>(bits[i / 8] | (1 << (i % 8)));
}

std::string finished_bits(std::size_t count) {
    return std::string((count + 7) / 8, '\0');
}

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
        case State::Waiting: return "waiting";
    }
    return "?";
}

UpdateQueue::UpdateQueue(Database& db, SyncedStore& synced) : db_(db), synced_(synced), token_(random_token()) {}

EnqueueResult UpdateQueue::enqueue(const std::string& job, const NewUpdate& u, Millis now, bool force,
                                   std::optional<std::int64_t> run_id, Database::Sync sync) {
    return enqueue_impl(job, u, now, force, run_id, std::nullopt, nullptr, nullptr, sync);
}

EnqueueResult UpdateQueue::enqueue_claimed(const std::string& job, NewUpdate u, Millis now, bool force,
                                           std::optional<std::int64_t> run_id, Millis lease,
                                           std::optional<ClaimedUpdate>& claimed, Database::Sync sync) {
    claimed.reset();
    return enqueue_impl(job, u, now, force, run_id, lease, &claimed, &u, sync);
}

EnqueueResult UpdateQueue::enqueue_impl(const std::string& job, const NewUpdate& u, Millis now, bool force,
                                        std::optional<std::int64_t> run_id, std::optional<Millis> lease,
                                        std::optional<ClaimedUpdate>* claimed, NewUpdate* owned, Database::Sync sync) {
    Database::Transaction tx(db_, sync);
    auto has = shape(job, run_id);
    auto synced = synced_.get(job, u.identity);
    std::string op = u.op;
    if (op.empty() && synced && synced->gone == "deactivated") op = "reactivate";  // back in the source
    // Judged as it is queued: `op` may yet become a reactivation below.
    const auto queued = [&] {
        return u.keeps_body && op.empty() && synced && synced->gone.empty() && !synced->hash.empty() &&
                       !synced->has_body
                   ? EnqueueResult::QueuedWithoutBase
                   : EnqueueResult::Queued;
    };
    // The identity's pending update, if any (the partial unique index keeps at most one).
    struct Pending {
        std::int64_t id;
        std::string hash, state;
        bool resolve, ours;
        std::string op;
        std::int64_t held = kNotHeld;
    };
    std::optional<Pending> pending;
    // A row of this process's in-flight batches is the identity's pending update.
    BatchRow* in_batch = nullptr;
    if (auto it = held_.find(lookup_key(job, u.identity)); it != held_.end() && (in_batch = batched(it->second)))
        pending = Pending{it->second, in_batch->u.hash, "inflight", in_batch->resolve, true, in_batch->u.op};
    if (!pending && has.pending) {
        auto s = db_.prepare(
            "SELECT id, hash, state, resolve OR coalesce(last_status, 0) >= 500, claim_token IS ?3, coalesce(op, ''), "
            "held FROM updates "
            "WHERE job = ?1 AND identity = ?2 AND state IN ('queued', 'inflight', 'retry')");
        s.bind(1, job).bind(2, u.identity).bind(3, token_);
        if (s.step())
            pending = Pending{s.i64(0), s.hash(1), s.text(2), s.i64(3) != 0, s.i64(4) != 0, s.text(5), s.i64(6)};
    }
    // A write an earlier run left, held for this read (hold_pending), that this row confirms:
    // the row is in the source and wants what the write sends, so it need not wait for the
    // read's end (a resumed backfill's retries waited for the whole source).
    const auto release_confirmed = [&] {
        if (!pending || pending->held != kHeldForRead || u.held) return false;
        db_.prepare("UPDATE updates SET held = 0 WHERE id = ?1").bind(1, pending->id).run();
        return true;
    };
    if (run_id) {
        // A resumed backfill: this row was sent by this run already (finished, or still in
        // the queue or failed). Hashes are compared as read back (a version-4 row's whole
        // SHA-256 reads as its first half).
        bool sent = synced && synced->run_id == run_id && synced->hash == u.hash && synced->gone.empty();
        if (!sent && in_batch) sent = in_batch->run_id == run_id && in_batch->u.hash == u.hash;
        if (!sent && has.of_run) {
            auto s = db_.prepare("SELECT hash FROM updates WHERE run_id = ?1 AND identity = ?2");
            s.bind(1, *run_id).bind(2, u.identity);
            while (!sent && s.step()) sent = s.hash(0) == u.hash;
        }
        if (sent) {
            // It is the identity's last row read so far: an earlier row of it re-read before
            // it (a duplicate id) must not be sent after it.
            if (pending && pending->hash != u.hash && pending->state != "inflight") supersede(pending->id);
            if (pending && pending->hash == u.hash) release_confirmed();
            if (has.waiting) supersede_waiting(job, u.identity);
            tx.commit();
            return EnqueueResult::AlreadyInRun;
        }
    }
    if (has.waiting) supersede_waiting(job, u.identity);
    if (pending && pending->state == "inflight" && pending->ours) {
        // This process has a request of the identity out. Nothing may take its place (two
        // requests of one identity could land in either order), and whether the row is
        // unchanged can only be judged once it is answered: the row waits, and complete()
        // promotes it then.
        if (pending->hash == u.hash && !run_id && op.empty()) {
            tx.commit();
            return EnqueueResult::AlreadyPending;
        }
        // A held row stays held once promoted.
        insert(job, u, op, "waiting", Millis{0}, false,
               u.profile_id ? u.profile_id
               : synced     ? synced->profile_id
                            : std::nullopt,
               run_id, now);
        tx.commit();
        return queued();
    }
    bool present = !synced || synced->gone.empty();
    // A process that is gone left a write of the identity in flight: it may have landed, so
    // the API may not have what `synced` says, and the row is sent (after that one). Not a
    // removal: that one is sent again and recorded, and the next run brings the row back.
    bool left_in_flight = pending && pending->state == "inflight" && !pending->ours && pending->op.empty();
    // A write sent without an answer and not yet resolved (waiting to retry, or given up as
    // failed) may have landed too: back at the synced hash, the row is sent all the same,
    // or the API would keep what that write did (inheriting its mark: it looks first).
    bool may_have_landed = left_in_flight || (pending && pending->state != "inflight" && pending->resolve);
    // Whether the API refused this very body, for what it is, in this identity's failure. A
    // mark that failure carries does not stop the skip: the body it was refused for is the
    // row's, so no write of this row landed either (what an earlier write of another body
    // may have done, the mark hands on to the row that replaces the failure).
    bool refused_before = false, failure_marked = false, deactivation_marked = false;
    if (has.failed) {
        auto scope = refusal_scope_.find(job);
        auto s = db_.prepare(
            "SELECT resolve, refused = ?5 AND updated_at > ?6 AND hash = ?3 AND coalesce(op, '') = ?4, "
            "coalesce(op, '') = 'deactivate' FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'failed'");
        s.bind(1, job).bind(2, u.identity).bind_hash(3, u.hash).bind(4, op);
        s.bind(5, scope == refusal_scope_.end() ? std::int64_t{0} : scope->second).bind(6, now - kRefusalHeld);
        while (s.step()) {
            failure_marked = failure_marked || s.i64(0) != 0;
            refused_before = refused_before || s.i64(1) != 0;
            deactivation_marked = deactivation_marked || (s.i64(0) != 0 && s.i64(2) != 0);
        }
    }
    bool skip_refused = !force && op.empty() && present && refused_before && !may_have_landed;
    may_have_landed = may_have_landed || failure_marked;
    // A deactivation that may have landed (pending, or given up unanswered), of a row that is
    // back: undone.
    if (op.empty() && present && may_have_landed && ((pending && pending->op == "deactivate") || deactivation_marked))
        op = "reactivate";
    if (!force && op.empty() && present && synced && synced->hash == u.hash && !may_have_landed) {
        // The API has this already: whatever still waits for the identity is obsolete (an
        // earlier row of the same identity in this file, or an older change), and so is a
        // failure of an older change.
        if (pending && pending->state != "inflight") supersede(pending->id);
        if (has.failed) supersede_failed(job, u.identity, std::nullopt);
        // Same hash, same body: what the API accepted last, now the diff base of a job
        // switched to mirror mode (without one, its next change went out whole, as a merge
        // that keeps what the source cleared).
        if (u.keeps_body && !synced->has_body) synced_.keep_body(job, u.identity, u.body);
        tx.commit();
        return EnqueueResult::Unchanged;
    }
    if (skip_refused && op.empty() && !(synced && synced->hash == u.hash)) {
        // Sent again it would be refused again, by every run (a daemon on a one-minute
        // schedule sent a thousand hopeless requests a minute). This row is the identity's
        // last so far: an earlier one still waiting must not be sent in its place.
        if (pending && pending->state != "inflight") supersede(pending->id);
        tx.commit();
        return EnqueueResult::StillRefused;
    }
    bool inherit_resolve = false;
    if (pending) {
        if (pending->hash == u.hash && !run_id && op.empty()) {
            bool released = release_confirmed();
            tx.commit();
            return released ? EnqueueResult::AlreadyPendingFromEarlier : EnqueueResult::AlreadyPending;
        }
        // An update left in flight (its process died) or already marked "resolve first"
        // may have landed: its successor must look before it writes.
        inherit_resolve = pending->state == "inflight" || pending->resolve;
        supersede(pending->id);
    }
    Superseded failed;
    if (has.failed) {
        // A failure that gave up while its write may have landed (a create sent without an
        // answer, then lookups or merges that got none either): the row that replaces it
        // looks before it writes, as that one would have, with any profile id it learned.
        failed = supersede_failed(job, u.identity, std::nullopt);
        inherit_resolve = inherit_resolve || failed.resolve;
    }
    std::optional<std::int64_t> profile_id = u.profile_id ? u.profile_id
                                             : synced     ? synced->profile_id
                                                          : failed.profile_id;
    if (claimed && !u.held) {
        ClaimedUpdate c;
        c.identity = u.identity;
        c.alt_type = u.alt_type;
        c.alt_id = u.alt_id;
        c.profile_id = profile_id;
        c.origin = u.origin;
        c.body = u.body;
        c.hash = u.hash;
        c.resolve = inherit_resolve;
        c.op = op;
        // The batch takes the row itself: one copy of its strings (the request's), not two.
        assert(owned == &u);
        c.id = add_to_batch(job, std::move(*owned), op, inherit_resolve, profile_id, run_id, now, *lease);
        *claimed = std::move(c);
    } else {
        insert(job, u, op, u.held ? "retry" : "queued", Millis{0}, inherit_resolve, profile_id, run_id, now);
    }
    tx.commit();
    return queued();
}

std::int64_t UpdateQueue::insert(const std::string& job, const NewUpdate& u, const std::string& op,
                                 const std::string& state, Millis due_at, bool resolve,
                                 std::optional<std::int64_t> profile_id, std::optional<std::int64_t> run_id, Millis now,
                                 std::optional<Millis> lease) {
    auto ins = db_.prepare(
        "INSERT INTO updates(job, identity, alt_type, alt_id, profile_id, origin, hash, "
        "state, due_at, run_id, resolve, created_at, updated_at, op, body, lease_until, claimed_by, claim_token, held) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?13, ?9, ?10, ?11, ?11, NULLIF(?12, ''), ?14, ?15, ?16, ?17, ?18) "
        "RETURNING id");
    ins.bind(1, job).bind(2, u.identity).bind(3, u.alt_type).bind(4, u.alt_id).bind(5, profile_id);
    ins.bind(6, u.origin).bind(7, state).bind_hash(8, u.hash).bind(9, run_id);
    ins.bind(10, static_cast<std::int64_t>(resolve)).bind(11, now).bind(12, op).bind(13, due_at).bind(14, u.body);
    ins.bind(15, lease ? now + *lease : 0).bind(18, u.held ? kHeldDuplicate : kNotHeld);
    if (lease) {
        ins.bind(16, static_cast<std::int64_t>(getpid())).bind(17, token_);
    } else {
        ins.bind_null(16).bind_null(17);
    }
    bool known = shape_known();
    std::int64_t id = ins.step() ? ins.i64(0) : 0;
    ins.run();
    if (known) {
        // What was known stays true, with this row added to it.
        auto& k = shape_;
        if (k.job == job) {
            if (state == "queued" || state == "inflight" || state == "retry") k.has.pending = true;
            if (state == "waiting") k.has.waiting = true;
            if (state == "failed") k.has.failed = true;
        }
        if (run_id && k.run_id == run_id) k.has.of_run = true;
        k.changes = db_.total_changes();
    }
    return id;
}

const std::string& UpdateQueue::lookup_key(const std::string& job, const std::string& identity) {
    // Written into a buffer kept for it: a key built per look-up was an allocation each.
    lookup_key_.assign(job);
    lookup_key_ += '\x1f';
    lookup_key_ += identity;
    return lookup_key_;
}

std::int64_t UpdateQueue::add_to_batch(const std::string& job, NewUpdate&& u, const std::string& op, bool resolve,
                                       std::optional<std::int64_t> profile_id, std::optional<std::int64_t> run_id,
                                       Millis now, Millis lease) {
    Batch* batch = nullptr;
    if (open_batch_) {
        batch = &batches_.at(*open_batch_);
        if (batch->job != job || static_cast<std::int64_t>(batch->rows.size()) >= kBatchRows) {
            seal(*open_batch_);  // full (or another job's): this transaction starts another
            batch = nullptr;
        }
    }
    if (!batch) {
        // The batch's id now, for the rows' ids; its rows and lease when the transaction
        // commits (seal()), so the record and the rows it stands for are one write.
        auto s = db_.prepare(
            "INSERT INTO inflight_batches(job, count, remaining, finished, lease_until, claimed_by, claim_token, "
            "created_at) VALUES (?1, 0, 0, x'', ?2, ?3, ?4, ?5) RETURNING id");
        s.bind(1, job).bind(2, now + lease).bind(3, static_cast<std::int64_t>(getpid())).bind(4, token_).bind(5, now);
        if (!s.step()) db_.fail("in-flight batch");
        auto id = s.i64(0);
        s.run();
        batches_[id].job = job;
        batches_[id].created_at = now;
        open_batch_ = id;
        db_.at_commit({[this, id] { seal(id); }, {}, [this, id] { discard(id); }});
        batch = &batches_.at(id);
    }
    auto batch_id = *open_batch_;
    auto index = static_cast<std::int64_t>(batch->rows.size());
    auto id = -(batch_id * kBatchRows + index) - 1;
    u.op = op;
    u.profile_id = profile_id;
    held_[lookup_key(job, u.identity)] = id;  // the map keeps a copy of the key
    // The row's strings are moved, never copied (clang 14 has no parenthesised aggregate
    // initialisation, so no emplace_back straight from the members).
    batch->rows.push_back(BatchRow{std::move(u), run_id, resolve, false});
    ++batch->remaining;
    batch->lease_until = std::max(batch->lease_until, now + lease);
    return id;
}

void UpdateQueue::seal(std::int64_t batch_id) {
    auto& batch = batches_.at(batch_id);
    if (batch.sealed) return;
    // Sized once: a batch's blob holds every body of up to 1,000 rows, which growing by
    // doubling copies again.
    std::size_t size = 0;
    for (const auto& r : batch.rows) size += encoded_size(r.u);
    std::string blob;
    blob.reserve(size);
    for (const auto& r : batch.rows) encode_row(blob, r.u, r.run_id, r.resolve);
    assert(blob.size() <= size);
    db_.prepare("INSERT INTO inflight_batch_rows(id, rows) VALUES (?1, ?2)").bind(1, batch_id).bind_blob(2, blob).run();
    const auto none_finished = finished_bits(batch.rows.size());
    db_.prepare("UPDATE inflight_batches SET count = ?2, remaining = ?2, finished = ?3, lease_until = ?4 WHERE id = ?1")
        .bind(1, batch_id)
        .bind(2, static_cast<std::int64_t>(batch.rows.size()))
        .bind_blob(3, none_finished)
        .bind(4, batch.lease_until)
        .run();
    batch.sealed = true;
    if (open_batch_ == batch_id) open_batch_.reset();
}

void UpdateQueue::discard(std::int64_t batch_id) {
    auto it = batches_.find(batch_id);
    if (it == batches_.end()) return;
    for (const auto& r : it->second.rows) {
        if (auto h = held_.find(lookup_key(it->second.job, r.u.identity));
            h != held_.end() && batch_of(h->second) == batch_id)
            held_.erase(h);
    }
    batches_.erase(it);
    if (open_batch_ == batch_id) open_batch_.reset();
}

UpdateQueue::BatchRow* UpdateQueue::batched(std::int64_t id) {
    if (id >= 0) return nullptr;
    auto n = -(id + 1);
    auto it = batches_.find(batch_of(id));
    if (it == batches_.end()) return nullptr;
    auto index = static_cast<std::size_t>(n % kBatchRows);
    if (index >= it->second.rows.size() || it->second.rows[index].finished) return nullptr;
    return &it->second.rows[index];
}

bool UpdateQueue::shape_known() const {
    return db_.in_transaction() && shape_.transaction == db_.transaction_serial() &&
           shape_.changes == db_.total_changes();
}

UpdateQueue::QueueShape UpdateQueue::shape(const std::string& job, std::optional<std::int64_t> run_id) {
    auto& k = shape_;
    if (shape_known() && k.job == job && k.run_id == run_id) return k.has;
    // One query per state, each answered by that state's partial index.
    auto any = [](Statement s, const auto& key) {
        s.bind(1, key);
        return s.step();
    };
    auto& has = k.has;
    has.pending = any(db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'queued' LIMIT 1"), job) ||
                  any(db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'inflight' LIMIT 1"), job) ||
                  any(db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'retry' LIMIT 1"), job);
    has.waiting = any(db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'waiting' LIMIT 1"), job);
    has.failed = any(db_.prepare("SELECT 1 FROM updates WHERE job = ?1 AND state = 'failed' LIMIT 1"), job);
    has.of_run = run_id && any(db_.prepare("SELECT 1 FROM updates WHERE run_id = ?1 LIMIT 1"), *run_id);
    k.transaction = db_.transaction_serial();
    k.changes = db_.total_changes();
    k.job = job;
    k.run_id = run_id;
    return has;
}

void UpdateQueue::supersede(std::int64_t id) {
    // A newer update of the identity replaces it: nothing of it is needed any more.
    bool known = shape_known();
    db_.prepare("DELETE FROM updates WHERE id = ?1").bind(1, id).run();
    if (known) shape_.changes = db_.total_changes();  // a row fewer: "none" is still none
}

void UpdateQueue::supersede_waiting(const std::string& job, const std::string& identity) {
    std::vector<std::int64_t> ids;
    {
        auto s = db_.prepare("SELECT id FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'waiting'");
        s.bind(1, job).bind(2, identity);
        while (s.step()) ids.push_back(s.i64(0));
    }
    for (auto id : ids) supersede(id);
}

UpdateQueue::Superseded UpdateQueue::supersede_failed(const std::string& job, const std::string& identity,
                                                      std::optional<std::int64_t> before_id) {
    std::vector<std::int64_t> ids;
    Superseded out;
    {
        auto s = db_.prepare(
            "SELECT id, resolve, profile_id FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'failed' AND "
            "(?3 IS NULL OR id < ?3) ORDER BY id");
        s.bind(1, job).bind(2, identity).bind(3, before_id);
        while (s.step()) {
            ids.push_back(s.i64(0));
            out.resolve = out.resolve || s.i64(1) != 0;
            if (auto pid = s.opt_i64(2)) out.profile_id = pid;
        }
    }
    for (auto id : ids) supersede(id);
    return out;
}

bool UpdateQueue::promote_waiting(const std::string& job, const std::string& identity,
                                  std::optional<std::int64_t> predecessor, std::string state, Millis due_at,
                                  bool resolve, std::optional<std::int64_t> profile_id, Millis now) {
    std::optional<std::int64_t> newest;
    bool held = false;
    {
        auto s = db_.prepare(
            "SELECT id, held FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'waiting' "
            "ORDER BY id DESC LIMIT 1");
        s.bind(1, job).bind(2, identity);
        if (s.step()) {
            newest = s.i64(0);
            held = s.i64(1) != kNotHeld;
        }
    }
    if (!newest) return false;
    // Still waiting for the end of the read: held (the row keeps its mark), whatever its
    // predecessor's outcome.
    if (held) state = "retry";
    std::vector<std::int64_t> older;
    {
        auto s =
            db_.prepare("SELECT id FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'waiting' AND id < ?3");
        s.bind(1, job).bind(2, identity).bind(3, *newest);
        while (s.step()) older.push_back(s.i64(0));
    }
    for (auto id : older) supersede(id);
    // Out of the pending states first: the unique index allows one pending update.
    if (predecessor) supersede(*predecessor);
    db_.prepare(
           "UPDATE updates SET state = ?2, due_at = ?3, resolve = ?4, profile_id = COALESCE(profile_id, ?5), "
           "updated_at = ?6 WHERE id = ?1")
        .bind(1, *newest)
        .bind(2, state)
        .bind(3, due_at)
        .bind(4, static_cast<std::int64_t>(resolve))
        .bind(5, profile_id)
        .bind(6, now)
        .run();
    return true;
}

std::int64_t UpdateQueue::promote_all_waiting(const std::string& job, Millis now) {
    // At the start of a run this process holds nothing: a waiting update's predecessor was
    // left in flight by a process that is gone. Its successor takes over, looking first.
    std::vector<std::string> identities;
    {
        auto s = db_.prepare("SELECT DISTINCT identity FROM updates WHERE job = ?1 AND state = 'waiting'");
        s.bind(1, job);
        while (s.step()) identities.push_back(s.text(0));
    }
    Database::Transaction tx(db_);
    for (const auto& identity : identities) {
        std::optional<std::int64_t> predecessor;
        auto s = db_.prepare(
            "SELECT id FROM updates WHERE job = ?1 AND identity = ?2 AND state IN ('queued', 'inflight', 'retry')");
        s.bind(1, job).bind(2, identity);
        if (s.step()) predecessor = s.i64(0);
        promote_waiting(job, identity, predecessor, "queued", 0, true, std::nullopt, now);
    }
    tx.commit();
    return static_cast<std::int64_t>(identities.size());
}

std::vector<ClaimedUpdate> UpdateQueue::claim(const std::string& job, int limit, Millis now, Millis lease) {
    Database::Transaction tx(db_);
    adopt_batches(job, now);  // those whose lease ended (a run starts with take_over_batches())
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
            "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'retry' AND held = 0 "
            "    AND due_at <= ?2"
            "    ORDER BY due_at LIMIT ?4)"
            "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'inflight' "
            "    AND lease_until < ?2 AND claim_token IS NOT ?6 LIMIT ?4)) ORDER BY id LIMIT ?4) "
            "RETURNING " UPDATE_COLUMNS);
        s.bind(1, job).bind(2, now).bind(3, now + lease).bind(4, static_cast<std::int64_t>(limit));
        s.bind(5, static_cast<std::int64_t>(getpid())).bind(6, token_);
        while (s.step()) out.push_back(read_update(s));
    }
    tx.commit();
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
}

void UpdateQueue::renew(const std::string& job, Millis now, Millis lease) {
    Database::Transaction tx(db_);
    db_.prepare("UPDATE inflight_batches SET lease_until = ?2 WHERE job = ?1 AND claim_token = ?3")
        .bind(1, job)
        .bind(2, now + lease)
        .bind(3, token_)
        .run();
    db_.prepare("UPDATE updates SET lease_until = ?2 WHERE job = ?1 AND state = 'inflight' AND claim_token = ?3")
        .bind(1, job)
        .bind(2, now + lease)
        .bind(3, token_)
        .run();
    tx.commit();
}

void UpdateQueue::complete(const std::string& job, const std::vector<Completion>& completions, Millis now) {
    if (completions.empty()) return;
    // Batch rows' bits are written from what memory holds, which changes only once this
    // commits: a second complete() inside the same transaction would write stale bits.
    if (db_.in_transaction() && std::any_of(completions.begin(), completions.end(), [](auto& c) { return c.id < 0; }))
        throw JournalError("journal " + db_.path() + ": complete() of in-flight batch rows inside a transaction");
    // Without its own fsync (journal.hpp): an outcome lost to a power loss leaves its update
    // in flight, as a kill before the answer would; a request leaves only once its own
    // claim is durable, and decisions read from outcomes are durable before anything acts
    // on them.
    Database::Transaction tx(db_, Database::Sync::deferred);
    // Whether any failure or waiting row of the job exists: if not (the usual case), a
    // success has nothing to supersede or promote, and two lookups per row are saved. Only
    // enqueue() adds waiting rows; a failure recorded below sets the flag.
    auto has = shape(job, std::nullopt);
    bool any_failed = has.failed, any_waiting = has.waiting;
    // Batch rows answered by this call: their bits are written below, and set in memory only
    // once the transaction commits.
    std::map<std::int64_t, std::vector<std::size_t>> answered;
    std::unordered_set<std::int64_t> answered_ids;
    std::map<std::int64_t, bool> ours;
    for (const auto& c : completions) {
        auto id = c.id;  // a batch row written out gets the id of its ordinary row
        if (c.state == State::Failed) any_failed = true;
        const BatchRow* from_batch = nullptr;  // the answered row, while its batch is held in memory
        if (id < 0) {
            auto batch_id = batch_of(id);
            if (batched(id) && !ours.contains(batch_id)) {
                // Still this queue's? A batch another run took over (its lease ended while
                // this process was stalled) is no longer: its rows are written out and theirs.
                auto q = db_.prepare("SELECT 1 FROM inflight_batches WHERE id = ?1 AND claim_token = ?2");
                q.bind(1, batch_id).bind(2, token_);
                ours[batch_id] = q.step();
                if (!ours[batch_id]) discard(batch_id);
            }
            auto* row = batched(id);
            auto index = static_cast<std::size_t>(-(id + 1) % kBatchRows);
            // Only a row still in flight takes an outcome (not one answered already).
            if (!row || !batches_.at(batch_id).sealed) continue;
            if (!answered_ids.insert(id).second) continue;
            answered[batch_id].push_back(index);
            from_batch = row;
            if (c.state != State::Done && c.state != State::Accepted) {
                // Written out as the inflight row it stands for, then recorded as any other.
                id = insert(job, row->u, row->u.op, "inflight", 0, row->resolve, row->u.profile_id, row->run_id, now,
                            Millis{0});
                db_.prepare("UPDATE updates SET created_at = ?2 WHERE id = ?1")
                    .bind(1, id)
                    .bind(2, batches_.at(batch_id).created_at)
                    .run();
            }
        }
        // Only a row still in flight takes an outcome: one superseded meanwhile (by a run that
        // took over a dead process's rows) never comes back to a pending state.
        switch (c.state) {
            case State::Done:
            case State::Accepted: {
                // A finished update leaves the queue: its outcome is the identity's synced state.
                // A batch row's fields are read where they are (no copy per answer).
                std::string row_identity, row_hash, row_op;
                const std::string* identity = &row_identity;
                const std::string* hash = &row_hash;
                const std::string* op = &row_op;
                std::optional<std::int64_t> pid, run_id;
                if (from_batch) {
                    identity = &from_batch->u.identity;
                    hash = &from_batch->u.hash;
                    pid = c.profile_id ? c.profile_id : from_batch->u.profile_id;
                    op = &from_batch->u.op;
                    run_id = from_batch->run_id;
                } else {
                    auto s = db_.prepare(
                        "DELETE FROM updates WHERE id = ?1 AND state = 'inflight' "
                        "RETURNING identity, hash, profile_id, coalesce(op, ''), run_id");
                    s.bind(1, id);
                    if (!s.step()) break;
                    row_identity = s.text(0);
                    row_hash = s.hash(1);
                    pid = c.profile_id ? c.profile_id : s.opt_i64(2);
                    row_op = s.text(3);
                    run_id = s.opt_i64(4);
                }
                if (*op == "deactivate")
                    synced_.mark_gone(job, *identity, "deactivated", pid, now);
                else if (*op == "archive")
                    synced_.mark_gone(job, *identity, "archived", pid, now);
                else if (*op == "delete")
                    synced_.mark_gone(job, *identity, "", pid, now);
                else
                    synced_.record(job, *identity, *hash, pid, now, c.accepted_body,
                                   c.state == State::Accepted ? Outcome::Accepted : Outcome::Done, run_id);
                // A batch row is newer than every failure of its identity (enqueue() removed
                // those before it, and none can be recorded while it is in flight).
                if (any_failed) supersede_failed(job, *identity, from_batch ? std::nullopt : std::optional(id));
                // A newer row that waited for this answer: the profile exists now (a create
                // must not be sent again), so it looks first.
                if (any_waiting) promote_waiting(job, *identity, std::nullopt, "queued", 0, true, pid, now);
                break;
            }
            case State::Retry: {
                std::string identity;
                {
                    auto s = db_.prepare(
                        "UPDATE updates SET state = 'retry', attempts = attempts + ?6, due_at = ?2, "
                        "last_status = ?3, last_error = ?4, resolve = ?5, claim_token = NULL, "
                        "profile_id = COALESCE(?7, profile_id), updated_at = ?8 WHERE id = ?1 AND state = 'inflight' "
                        "RETURNING identity");
                    s.bind(1, id).bind(2, c.due_at).bind(3, static_cast<std::int64_t>(c.status)).bind(4, c.error);
                    s.bind(5, static_cast<std::int64_t>(c.resolve)).bind(6, static_cast<std::int64_t>(c.count_attempt));
                    s.bind(7, c.profile_id).bind(8, now);
                    if (!s.step()) break;
                    identity = s.text(0);
                }
                if (any_waiting) promote_waiting(job, identity, id, "retry", c.due_at, c.resolve, c.profile_id, now);
                break;
            }
            case State::Failed:
            case State::Queued: {
                std::string identity;
                bool resolve = false;
                std::optional<std::int64_t> pid;
                {
                    // Queued: released unsent; whatever "resolve first" mark the row had, it keeps.
                    auto s = db_.prepare(
                        "UPDATE updates SET state = ?2, attempts = attempts + ?3, lease_until = 0, "
                        "last_status = CASE WHEN ?2 = 'failed' THEN ?4 ELSE last_status END, "
                        "last_error = CASE WHEN ?2 = 'failed' THEN ?5 ELSE last_error END, "
                        "refused = CASE WHEN ?2 = 'failed' AND ?7 <> 0 THEN ?7 END, "
                        "resolve = CASE WHEN ?2 = 'failed' AND ?8 THEN 1 ELSE resolve END, "
                        "claim_token = NULL, updated_at = ?6 WHERE id = ?1 AND state = 'inflight' "
                        "RETURNING identity, resolve, profile_id");
                    const std::string state(to_string(c.state));
                    s.bind(1, id).bind(2, state);
                    s.bind(3, static_cast<std::int64_t>(c.count_attempt)).bind(4, static_cast<std::int64_t>(c.status));
                    auto scope = refusal_scope_.find(job);
                    s.bind(5, c.error).bind(6, now);
                    s.bind(7, c.refused && scope != refusal_scope_.end() ? scope->second : std::int64_t{0});
                    s.bind(8, static_cast<std::int64_t>(c.resolve));
                    if (!s.step()) break;
                    identity = s.text(0);
                    resolve = s.i64(1) != 0;
                    pid = s.opt_i64(2);
                }
                // A newer row of the identity supersedes this one (failed or unsent).
                if (any_waiting) promote_waiting(job, identity, id, "queued", 0, resolve, pid, now);
                break;
            }
            default: throw JournalError("journal " + db_.path() + ": invalid completion state");
        }
    }
    // Each batch touched: its bits, or the batch itself once every row is answered.
    for (auto& [batch_id, indexes] : answered) {
        auto& batch = batches_.at(batch_id);
        auto remaining = batch.remaining - static_cast<std::int64_t>(indexes.size());
        if (remaining == 0) {
            db_.prepare("DELETE FROM inflight_batch_rows WHERE id = ?1").bind(1, batch_id).run();
            db_.prepare("DELETE FROM inflight_batches WHERE id = ?1").bind(1, batch_id).run();
            continue;
        }
        auto bits = finished_bits(batch.rows.size());
        for (std::size_t i = 0; i < batch.rows.size(); ++i)
            if (batch.rows[i].finished) set_bit(bits, i);
        for (auto i : indexes) set_bit(bits, i);
        db_.prepare("UPDATE inflight_batches SET remaining = ?2, finished = ?3 WHERE id = ?1")
            .bind(1, batch_id)
            .bind(2, remaining)
            .bind_blob(3, bits)
            .run();
    }
    if (!answered.empty()) {
        db_.at_commit({{},
                       [this, answered = std::move(answered)] {
                           for (const auto& [batch_id, indexes] : answered) {
                               auto it = batches_.find(batch_id);
                               if (it == batches_.end()) continue;
                               auto& batch = it->second;
                               for (auto i : indexes) {
                                   auto& row = batch.rows[i];
                                   row.finished = true;
                                   if (auto h = held_.find(lookup_key(batch.job, row.u.identity));
                                       h != held_.end() && batched(h->second) == nullptr)
                                       held_.erase(h);
                                   // Its body is not needed any more: memory holds what is in
                                   // flight, not the batches a slow answer keeps open.
                                   row.u = NewUpdate{};
                               }
                               batch.remaining -= static_cast<std::int64_t>(indexes.size());
                               if (batch.remaining == 0) batches_.erase(it);
                           }
                       },
                       {}});
    }
    tx.commit();
    synced_.merge_if_due(now);
}

std::int64_t UpdateQueue::take_over_batches(const std::string& job) {
    return adopt_batches(job, std::nullopt);
}

std::int64_t UpdateQueue::adopt_batches(const std::string& job, std::optional<Millis> expired_before) {
    struct Orphan {
        std::int64_t id, count, lease_until, created_at;
        std::optional<std::int64_t> claimed_by, claim_token;
        std::string finished;
    };
    std::vector<Orphan> orphans;
    {
        // Newest first: should two batches hold rows of one identity, the newer row is the
        // one written out and the older one only marks it "resolve first" (below).
        auto s = db_.prepare(
            "SELECT id, count, lease_until, claimed_by, claim_token, created_at, finished FROM inflight_batches "
            "WHERE job = ?1 AND claim_token IS NOT ?2 AND (?3 IS NULL OR lease_until < ?3) ORDER BY id DESC");
        s.bind(1, job).bind(2, token_).bind(3, expired_before);
        while (s.step())
            orphans.push_back({s.i64(0), s.i64(1), s.i64(2), s.i64(5), s.opt_i64(3), s.opt_i64(4), s.blob(6)});
    }
    if (orphans.empty()) return 0;
    Database::Transaction tx(db_);
    std::int64_t rows = 0;
    for (const auto& o : orphans) {
        auto where = "journal " + db_.path() + ": in-flight batch " + std::to_string(o.id);
        std::string blob;
        {
            auto s = db_.prepare("SELECT rows FROM inflight_batch_rows WHERE id = ?1");
            s.bind(1, o.id);
            if (!s.step()) throw JournalError(where + " has no rows: the journal is damaged");
            blob = s.blob(0);
        }
        auto decoded = batch_rows(blob, o.count, where);
        for (std::size_t i = 0; i < decoded.size(); ++i) {
            if (bit_set(o.finished, i)) continue;
            auto& r = decoded[i];
            // This queue has a row of the identity in flight already: only possible if a
            // process enqueued without holding the job's lock. Two requests of one identity
            // could land in either order: refused, not merged.
            if (auto h = held_.find(lookup_key(job, r.u.identity)); h != held_.end() && batched(h->second))
                throw JournalError(where + ": " + r.u.identity +
                                   " is in flight in this process too; is another process running this job "
                                   "without its lock?");
            // The identity may have a newer pending update already (only if some process
            // enqueued it without seeing this batch): that one takes over, looking first,
            // since this one may have landed.
            std::optional<std::int64_t> pending;
            {
                auto s = db_.prepare(
                    "SELECT id FROM updates WHERE job = ?1 AND identity = ?2 AND state IN ('queued', 'inflight', "
                    "'retry')");
                s.bind(1, job).bind(2, r.u.identity);
                if (s.step()) pending = s.i64(0);
            }
            if (pending) {
                db_.prepare("UPDATE updates SET resolve = 1 WHERE id = ?1").bind(1, *pending).run();
                continue;
            }
            // The inflight row the batch stood for, with its lease, pid and claim token.
            auto ins = db_.prepare(
                "INSERT INTO updates(job, identity, alt_type, alt_id, profile_id, origin, hash, state, due_at, run_id, "
                "resolve, created_at, updated_at, op, body, lease_until, claimed_by, claim_token) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'inflight', 0, ?8, ?9, ?10, ?10, NULLIF(?11, ''), ?12, ?13, ?14, "
                "?15)");
            ins.bind(1, job).bind(2, r.u.identity).bind(3, r.u.alt_type).bind(4, r.u.alt_id).bind(5, r.u.profile_id);
            ins.bind(6, r.u.origin)
                .bind_hash(7, r.u.hash)
                .bind(8, r.run_id)
                .bind(9, static_cast<std::int64_t>(r.resolve));
            ins.bind(10, o.created_at).bind(11, r.u.op).bind(12, r.u.body).bind(13, o.lease_until);
            ins.bind(14, o.claimed_by).bind(15, o.claim_token);
            ins.run();
            ++rows;
        }
        db_.prepare("DELETE FROM inflight_batch_rows WHERE id = ?1").bind(1, o.id).run();
        db_.prepare("DELETE FROM inflight_batches WHERE id = ?1").bind(1, o.id).run();
    }
    tx.commit();
    return rows;
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
        if (pid == getpid()) {
            db_.prepare(
                   "UPDATE updates SET lease_until = 0 WHERE job = ?1 AND state = 'inflight' AND claimed_by = ?2 "
                   "AND claim_token IS NOT ?3")
                .bind(1, job)
                .bind(2, pid)
                .bind(3, token_)
                .run();
            released += db_.changes();
            continue;
        }
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
        // Held rows (for a read, for a duplicate id's later row, of a row that left) are due
        // at no time.
        auto s = db_.prepare("SELECT MIN(due_at) FROM updates WHERE job = ?1 AND state = 'retry' AND held = 0");
        s.bind(1, job);
        if (s.step()) earliest(s.opt_i64(0));
    }
    {
        auto s = db_.prepare(
            "SELECT MIN(lease_until) FROM updates WHERE job = ?1 AND state = 'inflight' "
            "AND claim_token IS NOT ?2");
        s.bind(1, job).bind(2, token_);
        if (s.step()) earliest(s.opt_i64(0));
    }
    {
        auto s = db_.prepare("SELECT MIN(lease_until) FROM inflight_batches WHERE job = ?1 AND claim_token IS NOT ?2");
        s.bind(1, job).bind(2, token_);
        if (s.step()) earliest(s.opt_i64(0));
    }
    return due;
}

std::int64_t UpdateQueue::release_held(const std::string& job, Held which) {
    Database::Transaction tx(db_);
    // Each keeps its due time: a retry's backoff or Retry-After still stands. A held row still
    // waiting for its predecessor's answer is released too (the whole read's end only): when
    // the answer comes, it is promoted and sent like any waiting row.
    // One statement per state and mark: each is a range of its state's partial index (a
    // partial index serves only a term it can match as written).
    std::int64_t released = 0;
    auto release = [&](const char* sql, std::int64_t mark) {
        db_.prepare(sql).bind(1, job).bind(2, mark).run();
        released += db_.changes();
    };
    // The state is written in the text, not bound: a statement is compiled before anything
    // is bound, so a bound state could not pick its state's partial index.
    static constexpr const char* kRetry =
        "UPDATE updates SET held = 0 WHERE job = ?1 AND state = 'retry' AND held = ?2";
    static constexpr const char* kWaiting =
        "UPDATE updates SET held = 0 WHERE job = ?1 AND state = 'waiting' AND held = ?2";
    if (which != Held::ExceptForRead) release(kRetry, kHeldForRead);
    if (which != Held::ForRead) {
        release(kRetry, kHeldLeft);
        release(kRetry, kHeldDuplicate);
        release(kWaiting, kHeldDuplicate);
    }
    tx.commit();
    return released;
}

std::int64_t UpdateQueue::held(const std::string& job) {
    auto s = db_.prepare(
        "SELECT (SELECT COUNT(*) FROM updates WHERE job = ?1 AND state = 'retry' AND held = ?2) + "
        "(SELECT COUNT(*) FROM updates WHERE job = ?1 AND state = 'waiting' AND held = ?2)");
    s.bind(1, job).bind(2, kHeldDuplicate);
    return s.step() ? s.i64(0) : 0;
}

// Every state a write waits in until it is settled, one query each (a partial index per
// state): queued, in flight, waiting to retry, waiting behind one in flight, failed.
#define PREFSYNC_EACH_UNSETTLED_STATE(QUERY) \
    { QUERY("queued"), QUERY("inflight"), QUERY("retry"), QUERY("waiting"), QUERY("failed") }

void UpdateQueue::for_each_unsettled(const std::string& job,
                                     const std::function<void(const KnownIdentity&, bool may_exist)>& fn) {
    // One query per state, each answered by that state's partial index. This process's batch
    // rows are in flight for rows this run read; a stopped process's are made ordinary rows
    // before a sync reads (take_over_batches), and read from their batches by `plan`, which
    // takes nothing over (in_flight_elsewhere).
    struct Found {
        KnownIdentity k;
        bool may_exist = false;
    };
    std::map<std::string, Found> found;
#define PREFSYNC_UNSETTLED(state)                                                            \
    "SELECT u.identity, u.alt_type, u.alt_id, u.profile_id, "                                \
    "u.resolve OR u.state = 'inflight' OR coalesce(u.last_status, 0) >= 500 FROM updates u " \
    "WHERE u.job = ?1 AND u.state = '" state                                                 \
    "' AND coalesce(u.op, '') IN ('', 'reactivate') "                                        \
    "AND NOT EXISTS (SELECT 1 FROM synced s WHERE s.job = u.job AND s.identity = u.identity AND s.gone IS NULL)"
    // Constants (the statement cache is keyed by the text's address), each state a literal: a
    // partial index is used only for a term it can match as written.
    static constexpr const char* kQueries[] = PREFSYNC_EACH_UNSETTLED_STATE(PREFSYNC_UNSETTLED);
#undef PREFSYNC_UNSETTLED
    for (const char* query : kQueries) {
        auto s = db_.prepare(query);
        s.bind(1, job);
        while (s.step()) {
            auto& f = found[s.text(0)];
            f.k.identity = s.text(0);
            f.k.alt_type = s.text(1);
            f.k.alt_id = s.text(2);
            if (auto pid = s.opt_i64(3)) f.k.profile_id = pid;
            f.may_exist = f.may_exist || s.i64(4) != 0;
        }
    }
    for (auto& [identity, k] : in_flight_elsewhere(job)) {
        // Through the store: a read-only handle sees answers a stopped process staged.
        if (auto synced = synced_.get(job, identity); synced && synced->gone.empty()) continue;
        auto& f = found[identity];
        if (f.k.identity.empty()) f.k = std::move(k);
        f.may_exist = true;
    }
    for (const auto& [identity, f] : found) fn(f.k, f.may_exist);
}

std::unordered_set<std::string> UpdateQueue::identities(std::span<const char* const> queries, const std::string& job) {
    std::unordered_set<std::string> out;
    for (const char* query : queries) {
        auto s = db_.prepare(query);
        s.bind(1, job);
        while (s.step()) out.insert(s.text(0));
    }
    for (auto& [identity, k] : in_flight_elsewhere(job)) out.insert(identity);
    return out;
}

std::unordered_set<std::string> UpdateQueue::may_have_landed(const std::string& job) {
#define PREFSYNC_LANDED(state)                                        \
    "SELECT identity FROM updates WHERE job = ?1 AND state = '" state \
    "' AND coalesce(op, '') IN ('', 'reactivate') "                   \
    "AND (resolve OR state = 'inflight' OR coalesce(last_status, 0) >= 500)"
    // Constants, each state a literal for its partial index (see for_each_unsettled()).
    static constexpr const char* kQueries[] = PREFSYNC_EACH_UNSETTLED_STATE(PREFSYNC_LANDED);
#undef PREFSYNC_LANDED
    return identities(kQueries, job);
}

std::unordered_set<std::string> UpdateQueue::pending_identities(const std::string& job) {
    // The states of counts().pending(), each a literal for its partial index.
#define PREFSYNC_PENDING(state) "SELECT identity FROM updates WHERE job = ?1 AND state = '" state "'"
    static constexpr const char* kQueries[] = {PREFSYNC_PENDING("queued"), PREFSYNC_PENDING("inflight"),
                                               PREFSYNC_PENDING("retry"), PREFSYNC_PENDING("waiting")};
#undef PREFSYNC_PENDING
    return identities(kQueries, job);
}

std::map<std::string, KnownIdentity> UpdateQueue::in_flight_elsewhere(const std::string& job) {
    std::map<std::string, KnownIdentity> out;
    // A batch without its rows is damage, as take_over_batches() finds it: not skipped.
    auto b = db_.prepare(
        "SELECT b.id, b.count, b.finished, r.rows, r.id IS NULL FROM inflight_batches b "
        "LEFT JOIN inflight_batch_rows r ON r.id = b.id WHERE b.job = ?1 AND b.claim_token IS NOT ?2");
    b.bind(1, job).bind(2, token_);
    while (b.step()) {
        auto where = "journal " + db_.path() + ": in-flight batch " + std::to_string(b.i64(0));
        if (b.i64(4) != 0) throw JournalError(where + " has no rows: the journal is damaged");
        auto finished = b.blob(2);
        auto rows = batch_rows(b.blob(3), b.i64(1), where);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            auto& u = rows[i].u;
            if (bit_set(finished, i) || !(u.op.empty() || u.op == "reactivate")) continue;
            auto& k = out[u.identity];
            k.identity = u.identity;
            k.alt_type = std::move(u.alt_type);
            k.alt_id = std::move(u.alt_id);
            if (u.profile_id) k.profile_id = u.profile_id;
        }
    }
    return out;
}

std::optional<UpdateQueue::Unsettled> UpdateQueue::unsettled_of(const std::string& job, const std::string& identity) {
    std::optional<Unsettled> out;
    auto note = [&](std::optional<std::int64_t> profile_id, bool may_exist) {
        if (!out) out.emplace();
        if (profile_id) out->profile_id = profile_id;
        out->may_exist = out->may_exist || may_exist;
    };
    if (auto it = held_.find(lookup_key(job, identity)); it != held_.end())
        if (auto* row = batched(it->second); row && (row->u.op.empty() || row->u.op == "reactivate"))
            note(row->u.profile_id, true);  // in flight
#define PREFSYNC_UNSETTLED_OF(states)                                                                   \
    "SELECT profile_id, resolve OR state = 'inflight' OR coalesce(last_status, 0) >= 500 FROM updates " \
    "WHERE job = ?1 AND identity = ?2 AND state IN (" states ") AND coalesce(op, '') IN ('', 'reactivate')"
    // Constants, each answered by its states' partial index (updates_one_pending, _waiting,
    // _failed).
    static constexpr const char* kQueries[] = {PREFSYNC_UNSETTLED_OF("'queued', 'inflight', 'retry'"),
                                               PREFSYNC_UNSETTLED_OF("'waiting'"), PREFSYNC_UNSETTLED_OF("'failed'")};
#undef PREFSYNC_UNSETTLED_OF
    for (const char* query : kQueries) {
        auto s = db_.prepare(query);
        s.bind(1, job).bind(2, identity);
        while (s.step()) note(s.opt_i64(0), s.i64(1) != 0);
    }
    return out;
}

std::int64_t UpdateQueue::hold_pending(const std::string& job) {
    Database::Transaction tx(db_);
    db_.prepare(
           "UPDATE updates SET state = 'retry', held = ?2, resolve = 1, lease_until = 0, claim_token = NULL "
           "WHERE job = ?1 AND state = 'inflight' AND claim_token IS NOT ?3")
        .bind(1, job)
        .bind(2, kHeldForRead)
        .bind(3, token_)
        .run();
    auto n = db_.changes();
    db_.prepare("UPDATE updates SET state = 'retry', held = ?2 WHERE job = ?1 AND state = 'queued'")
        .bind(1, job)
        .bind(2, kHeldForRead)
        .run();
    n += db_.changes();
    db_.prepare("UPDATE updates SET held = ?2 WHERE job = ?1 AND state = 'retry' AND held = 0")
        .bind(1, job)
        .bind(2, kHeldForRead)
        .run();
    n += db_.changes();
    tx.commit();
    return n;
}

std::int64_t UpdateQueue::hold_writes(const std::string& job, const std::string& identity, Failures failures,
                                      Millis now) {
    db_.prepare(
           "UPDATE updates SET state = 'retry', held = ?3 WHERE job = ?1 AND identity = ?2 "
           "AND state IN ('queued', 'retry') AND held IN (0, 1) AND coalesce(op, '') IN ('', 'reactivate')")
        // Not held, or held for the read (kNotHeld, kHeldForRead): a read's hold is released by a
        // run that reads nothing, this one only by a read's end.
        .bind(1, job)
        .bind(2, identity)
        .bind(3, kHeldLeft)
        .run();
    auto n = db_.changes();
    // A failure is held too, where nothing else of the identity is pending (else `retry`
    // finds it obsolete): failed, `retry` sent it (a write that may have landed looked up,
    // found nothing, and created the profile of a row no longer in the source). It keeps
    // its "resolve first" mark and profile id; older failures of it become obsolete.
    db_.prepare(
           "UPDATE updates SET state = 'retry', held = ?3, due_at = 0, attempts = 0, refused = NULL WHERE id = ("
           "SELECT max(id) FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'failed' "
           "AND coalesce(op, '') IN ('', 'reactivate')) "
           "AND (?4 = 0 OR NOT (?5 <> 0 AND coalesce(refused, 0) = ?5 AND updated_at > ?6)) "
           "AND NOT EXISTS (SELECT 1 FROM updates WHERE job = ?1 AND identity = ?2 "
           "AND state IN ('queued', 'inflight', 'retry'))")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, kHeldLeft)
        .bind(4, std::int64_t{failures == Failures::ExceptRefused})
        .bind(5, refusal_scope_of(job))
        .bind(6, now - kRefusalHeld)
        .run();
    return n + db_.changes();
}

std::int64_t UpdateQueue::drop_unsent_writes(const std::string& job, const std::string& identity, Failures failures,
                                             Millis now) {
    db_.prepare(
           "DELETE FROM updates WHERE job = ?1 AND identity = ?2 AND state IN ('queued', 'retry', 'waiting', "
           "'failed') AND coalesce(op, '') IN ('', 'reactivate') "
           "AND (?3 = 0 OR state <> 'failed' OR NOT (?4 <> 0 AND coalesce(refused, 0) = ?4 AND updated_at > ?5))")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, std::int64_t{failures == Failures::ExceptRefused})
        .bind(4, refusal_scope_of(job))
        .bind(5, now - kRefusalHeld)
        .run();
    return db_.changes();
}

std::int64_t UpdateQueue::failed_of_run(std::int64_t run_id, std::optional<Millis> before) {
    auto s = db_.prepare("SELECT count(*) FROM updates WHERE run_id = ?1 AND state = 'failed' AND updated_at < ?2");
    s.bind(1, run_id).bind(2, before.value_or(std::numeric_limits<Millis>::max()));
    return s.step() ? s.i64(0) : 0;
}

StateCounts UpdateQueue::counts(const std::string& job) {
    auto c = queue_counts(job);
    auto finished = synced_.counts(job);
    c.done = finished.done;
    c.accepted = finished.accepted;
    c.verified = finished.verified;
    return c;
}

std::int64_t UpdateQueue::pending(const std::string& job) {
    return queue_counts(job).pending();
}

StateCounts UpdateQueue::queue_counts(const std::string& job) {
    StateCounts c;
    // Each from its state's partial index (asked at every /metrics scrape): never a scan of
    // the queue's rows and their bodies.
    auto count = [&](Statement s) {
        s.bind(1, job);
        return s.step() ? s.i64(0) : 0;
    };
    c.queued = count(db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'queued'"));
    c.inflight = count(db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'inflight'")) +
                 count(db_.prepare("SELECT coalesce(sum(remaining), 0) FROM inflight_batches WHERE job = ?1"));
    c.retry = count(db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'retry'"));
    {
        auto s = db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'retry' AND held <> 0");
        s.bind(1, job);
        c.held = s.step() ? s.i64(0) : 0;
    }
    c.failed = count(db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'failed'"));
    c.waiting = count(db_.prepare("SELECT count(*) FROM updates WHERE job = ?1 AND state = 'waiting'"));
    return c;
}

std::vector<std::string> UpdateQueue::jobs() {
    std::vector<std::string> out;
    // Every update is enqueued by a push run, and finished updates leave the queue: the jobs
    // are those with push runs (the small runs table, not a scan of the queue's rows).
    auto s = db_.prepare("SELECT DISTINCT job FROM runs WHERE kind <> 'pull' ORDER BY job");
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

void UpdateQueue::scope_refusals(const std::string& job, std::int64_t scope) {
    refusal_scope_[job] = scope;
}

bool UpdateQueue::marked_failure(const std::string& job, const std::string& identity) {
    auto s = db_.prepare(
        "SELECT 1 FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'failed' AND resolve = 1 LIMIT 1");
    s.bind(1, job).bind(2, identity);
    return s.step();
}

std::int64_t UpdateQueue::refusal_scope_of(const std::string& job) const {
    auto scope = refusal_scope_.find(job);
    return scope == refusal_scope_.end() ? std::int64_t{0} : scope->second;
}

bool UpdateQueue::refused(const std::string& job, const std::string& identity, const std::string& hash,
                          std::int64_t scope, Millis now) {
    auto s = db_.prepare(
        "SELECT 1 FROM updates WHERE job = ?1 AND identity = ?2 AND state = 'failed' AND refused = ?4 AND "
        "updated_at > ?5 AND hash = ?3 AND op IS NULL LIMIT 1");
    s.bind(1, job).bind(2, identity).bind_hash(3, hash).bind(4, scope).bind(5, now - kRefusalHeld);
    return scope != 0 && s.step();
}

std::int64_t UpdateQueue::retry_failed(const std::string& job, std::optional<int> status, Millis now) {
    Database::Transaction tx(db_);
    // Called under the job's lock before a run: what a stopped process left in flight is
    // seen as the newer update it is, not missed.
    take_over_batches(job);
    // A failure is obsolete once any newer update of its identity exists (pending, waiting,
    // done or failed itself): re-sending it would put an older change over a newer one.
    std::vector<std::int64_t> obsolete;
    {
        // A newer success already supersedes the failures before it (complete()); these three
        // are what may still be newer, each found through its own partial index.
        auto s = db_.prepare(
            "SELECT f.id FROM updates f WHERE f.job = ?1 AND f.state = 'failed' AND ("
            "EXISTS (SELECT 1 FROM updates n WHERE n.job = ?1 AND n.identity = f.identity "
            "  AND n.state IN ('queued', 'inflight', 'retry')) OR "
            "EXISTS (SELECT 1 FROM updates n WHERE n.job = ?1 AND n.identity = f.identity AND n.state = 'waiting') OR "
            "EXISTS (SELECT 1 FROM updates n WHERE n.job = ?1 AND n.identity = f.identity AND n.state = 'failed' "
            "  AND n.id > f.id))");
        s.bind(1, job);
        while (s.step()) obsolete.push_back(s.i64(0));
    }
    for (auto id : obsolete) supersede(id);
    auto s = db_.prepare(
        "UPDATE updates SET state = 'queued', attempts = 0, due_at = 0, updated_at = ?2, refused = NULL "
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
        "coalesce(last_status, 0), attempts, resolve, created_at, updated_at, profile_id, "
        "CASE WHEN state = 'failed' THEN coalesce(refused, 0) ELSE 0 END FROM updates WHERE job = ?1 AND identity = ?2 "
        "ORDER BY id DESC LIMIT "
        "?3");
    s.bind(1, job).bind(2, identity).bind(3, static_cast<std::int64_t>(limit));
    while (s.step())
        out.push_back({s.i64(0), s.text(1), s.text(2), s.text(3), s.text(4), static_cast<int>(s.i64(5)),
                       static_cast<int>(s.i64(6)), s.i64(7) != 0, s.i64(8), s.i64(9), s.opt_i64(10), s.i64(11)});
    // A row still in an in-flight batch (of any process), with its negative id; newest first
    // with the others. Batches are few and short-lived, and `explain` is rare.
    std::vector<UpdateRecord> in_flight;
    auto b = db_.prepare(
        "SELECT b.id, b.finished, b.created_at, r.rows FROM inflight_batches b JOIN inflight_batch_rows r "
        "ON r.id = b.id WHERE b.job = ?1 ORDER BY b.id DESC");
    b.bind(1, job);
    while (b.step()) {
        auto batch_id = b.i64(0);
        auto finished = b.blob(1);
        auto rows = decode_rows(b.blob(3), "journal " + db_.path() + ": in-flight batch " + std::to_string(batch_id));
        for (std::size_t i = 0; i < rows.size(); ++i) {
            bool answered = bit_set(finished, i);
            if (answered || rows[i].u.identity != identity) continue;
            in_flight.push_back({-(batch_id * kBatchRows + static_cast<std::int64_t>(i)) - 1, "inflight", rows[i].u.op,
                                 rows[i].u.origin, "", 0, 0, rows[i].resolve, b.i64(2), b.i64(2), rows[i].u.profile_id,
                                 0});
        }
    }
    out.insert(out.end(), in_flight.begin(), in_flight.end());
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created_at > b.created_at; });
    if (out.size() > static_cast<std::size_t>(std::max(limit, 0)))
        out.resize(static_cast<std::size_t>(std::max(limit, 0)));
    return out;
}

}  // namespace prefsync::journal
