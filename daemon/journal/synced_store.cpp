#include "daemon/journal/synced_store.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

namespace prefsync::journal {

namespace {
// How one answer lands on the identity's row: the same whether it is written straight or
// merged (the profile id is kept when the answer has none; the identity is present again).
const std::string kApplyAnswer =
    " ON CONFLICT(job, identity) DO UPDATE SET hash = excluded.hash, "
    "profile_id = COALESCE(excluded.profile_id, synced.profile_id), synced_at = excluded.synced_at, "
    "body = excluded.body, gone = NULL, run_id = excluded.run_id, verify = excluded.verify";
const std::string kColumns = "(job, identity, hash, profile_id, synced_at, body, gone, run_id, verify) ";
// ORDER BY (job, identity, id): `synced` is written in key order, and one identity's staged
// answers in the order they came (each conflicts with the row the one before it left).
// "WHERE true": SQLite's rule for an upsert fed by a SELECT.
const std::string kStagedInOrder =
    "SELECT job, identity, hash, profile_id, synced_at, body, NULL, run_id, verify FROM synced_staged "
    "WHERE true ORDER BY job, identity, id";
const std::string kMerge = "INSERT INTO synced" + kColumns + kStagedInOrder + kApplyAnswer;
// A read-only handle cannot merge what a stopped process left staged: it reads `synced` as
// merge() would leave it. The staged identities' rows are copied into a table of this
// connection's own (CROSS JOIN: each staged identity looked up, not `synced` scanned), the
// staged answers applied to them by the same statement as merge()'s, and the reads go
// through a view of `synced` with those rows in place of its own.
const std::string kSeeLeftovers =
    "CREATE TEMP TABLE synced_leftovers(job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, "
    "profile_id INTEGER, synced_at INTEGER NOT NULL, body TEXT, gone TEXT, run_id INTEGER, verify INTEGER, "
    "PRIMARY KEY(job, identity)) WITHOUT ROWID;"
    "INSERT INTO synced_leftovers" +
    kColumns +
    "SELECT m.job, m.identity, m.hash, m.profile_id, m.synced_at, m.body, m.gone, m.run_id, m.verify "
    "FROM (SELECT DISTINCT job, identity FROM main.synced_staged) AS d CROSS JOIN main.synced AS m "
    "ON m.job = d.job AND m.identity = d.identity;"
    "INSERT INTO synced_leftovers AS synced" +
    kColumns + kStagedInOrder + kApplyAnswer +
    ";"
    "CREATE TEMP VIEW synced_seen AS "
    "SELECT job, identity, hash, profile_id, synced_at, body, gone, run_id, verify FROM main.synced AS m "
    "WHERE NOT EXISTS (SELECT 1 FROM synced_leftovers AS l WHERE l.job = m.job AND l.identity = m.identity) "
    "UNION ALL SELECT job, identity, hash, profile_id, synced_at, body, gone, run_id, verify FROM synced_leftovers";

// The reads, of `synced` or of the view above. Statements are cached by their text's
// address: one constant per read and table.
struct Reads {
    std::string get, last_body, present, counts, unverified, any_unverified, count_present, any_known;
    explicit Reads(const std::string& from)
        : get("SELECT hash, profile_id, coalesce(gone, ''), run_id, synced_at, "
              "CASE WHEN verify > 0 THEN 'accepted' WHEN verify < 0 THEN 'verified' ELSE '' END, "
              "body IS NOT NULL FROM " +
              from + " WHERE job = ?1 AND identity = ?2"),
          // An archived profile's preferences were archived by us: its last body no longer
          // describes it.
          last_body("SELECT body FROM " + from +
                    " WHERE job = ?1 AND identity = ?2 AND body IS NOT NULL AND (gone IS NULL OR gone <> 'archived')"),
          present("SELECT identity, profile_id FROM " + from + " WHERE job = ?1 AND gone IS NULL ORDER BY identity"),
          counts(
              "SELECT coalesce(sum(verify IS NULL), 0), coalesce(sum(verify > 0), 0), "
              "coalesce(sum(verify < 0), 0) FROM " +
              from + " WHERE job = ?1 AND gone IS NULL"),
          unverified("SELECT identity, profile_id, verify FROM " + from +
                     " WHERE job = ?1 AND verify > 0 ORDER BY verify, identity LIMIT ?2"),
          any_unverified("SELECT 1 FROM " + from + " WHERE job = ?1 AND verify > 0 LIMIT 1"),
          count_present("SELECT count(*) FROM " + from + " WHERE job = ?1 AND gone IS NULL"),
          any_known("SELECT 1 FROM " + from + " WHERE job = ?1 LIMIT 1") {}
};
const Reads& reads(bool leftovers) {
    static const Reads synced("synced"), seen("synced_seen");
    return leftovers ? seen : synced;
}
const std::string kRecord =
    "INSERT INTO synced(job, identity, hash, profile_id, synced_at, body, run_id, verify) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" +
    kApplyAnswer;
const char* const kStage =
    "INSERT INTO synced_staged(job, identity, hash, profile_id, synced_at, body, run_id, verify) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
}  // namespace

void SyncedStore::merge_leftovers() {
    if (db_.prepare("SELECT 1 FROM synced_staged LIMIT 1").step()) merge();
}

SyncedStore::~SyncedStore() {
    if (staged_rows_ == 0) return;
    try {
        merge();
    } catch (const std::exception&) {
        // Still staged: the next push run merges them before it reads anything.
    }
}

std::uint64_t SyncedStore::key(const std::string& job, const std::string& identity) {
    std::hash<std::string_view> h;
    return h(job) * 0x9E3779B97F4A7C15ULL ^ h(identity);
}

void SyncedStore::merge() {
    auto apply = [this] {
        db_.prepare(kMerge.c_str()).run();  // a constant: cached by its address
        db_.prepare("DELETE FROM synced_staged").run();
    };
    // Forgotten now, put back if the merge does not commit.
    auto taken = std::exchange(staged_, {});
    auto rows = std::exchange(staged_rows_, 0);
    auto first = std::exchange(first_staged_at_, 0);
    auto put_back = [this](std::unordered_set<std::uint64_t>& keys, std::size_t n, Millis at) {
        staged_.merge(keys);
        if (n > 0 && (staged_rows_ == 0 || at < first_staged_at_)) first_staged_at_ = at;
        staged_rows_ += n;
    };
    if (db_.in_transaction()) {
        try {
            apply();
        } catch (...) {
            put_back(taken, rows, first);
            throw;
        }
        db_.at_commit(
            {{}, {}, [put_back, taken = std::move(taken), rows, first]() mutable { put_back(taken, rows, first); }});
        return;
    }
    try {
        // Moves answers already recorded: durable with the next durable commit, as they were.
        Database::Transaction tx(db_, Database::Sync::deferred);
        apply();
        tx.commit();
    } catch (...) {
        put_back(taken, rows, first);
        throw;
    }
}

void SyncedStore::merge_if_due(Millis now) {
    // Never inside a transaction: an error there would leave the caller's half done.
    if (staged_rows_ == 0 || db_.in_transaction()) return;
    if (staged_rows_ < kMergeRows && now - first_staged_at_ < kMergeAfter) return;
    try {
        merge();
    } catch (const JournalError&) {
        // Nothing is lost: the answers stay staged (and known to be), for the next due merge
        // or the run's end. A journal that cannot be written fails the next recording anyway.
    }
}

void SyncedStore::see_leftovers() {
    if (looked_ || !db_.read_only()) return;
    looked_ = true;
    if (db_.nothing_recorded() || !db_.prepare("SELECT 1 FROM synced_staged LIMIT 1").step()) return;
    db_.exec_scratch(kSeeLeftovers.c_str());
    leftovers_ = true;
}

std::optional<SyncedState> SyncedStore::get(const std::string& job, const std::string& identity) {
    if (maybe_staged(job, identity)) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).get.c_str());
    s.bind(1, job).bind(2, identity);
    if (!s.step()) return std::nullopt;
    return SyncedState{s.hash(0), s.opt_i64(1), s.text(2), s.opt_i64(3), s.i64(4), s.text(5), s.i64(6) != 0};
}

void SyncedStore::keep_body(const std::string& job, const std::string& identity, const std::string& body) {
    if (maybe_staged(job, identity)) merge();
    db_.prepare("UPDATE synced SET body = ?3 WHERE job = ?1 AND identity = ?2 AND body IS NULL")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, body)
        .run();
}

void SyncedStore::record(const std::string& job, const std::string& identity, const std::string& hash,
                         std::optional<std::int64_t> profile_id, Millis now, const std::optional<std::string>& body,
                         Outcome outcome, std::optional<std::int64_t> run_id) {
    // Past the last answer written straight, in key order: written straight too, at the
    // b-tree's right edge (a source in identity order costs no staging). Anything else is
    // staged. Never straight while an answer of the identity may be staged: the merge would
    // then put the older answer over it.
    bool straight = !maybe_staged(job, identity) &&
                    (job > straight_job_ || (job == straight_job_ && identity > straight_identity_));
    auto s = db_.prepare(straight ? kRecord.c_str() : kStage);
    s.bind(1, job).bind(2, identity).bind_hash(3, hash).bind(4, profile_id).bind(5, now);
    if (body)
        s.bind(6, *body);
    else
        s.bind_null(6);
    s.bind(7, run_id);
    // verify > 0: when the 202 came (never 0, which would read as neither accepted nor verified).
    s.bind(8, outcome == Outcome::Accepted ? std::optional<std::int64_t>(std::max<Millis>(now, 1)) : std::nullopt);
    s.run();
    if (straight) {
        straight_job_ = job;
        straight_identity_ = identity;
        return;
    }
    staged_.insert(key(job, identity));
    if (staged_rows_++ == 0) first_staged_at_ = now;
}

std::optional<std::string> SyncedStore::last_body(const std::string& job, const std::string& identity) {
    if (maybe_staged(job, identity)) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).last_body.c_str());
    s.bind(1, job).bind(2, identity);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void SyncedStore::mark_gone(const std::string& job, const std::string& identity, const std::string& gone,
                            std::optional<std::int64_t> profile_id, Millis now) {
    if (maybe_staged(job, identity)) merge();
    if (gone.empty()) {
        db_.prepare("DELETE FROM synced WHERE job = ?1 AND identity = ?2").bind(1, job).bind(2, identity).run();
        return;
    }
    db_.prepare("UPDATE synced SET gone = ?3, synced_at = ?4, verify = NULL WHERE job = ?1 AND identity = ?2")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, gone)
        .bind(4, now)
        .run();
    if (db_.changes() == 0)
        db_.prepare(
               "INSERT INTO synced(job, identity, hash, profile_id, synced_at, gone) VALUES (?1, ?2, '', ?3, ?4, ?5)")
            .bind(1, job)
            .bind(2, identity)
            .bind(3, profile_id)
            .bind(4, now)
            .bind(5, gone)
            .run();
}

namespace {
KnownIdentity known(std::string identity, std::optional<std::int64_t> profile_id) {
    KnownIdentity k;
    k.identity = std::move(identity);
    k.profile_id = profile_id;
    // "TYPE:ID" (alternate id) or "profile:123".
    auto colon = k.identity.find(':');
    if (!k.identity.starts_with("profile:") && colon != std::string::npos) {
        k.alt_type = k.identity.substr(0, colon);
        k.alt_id = k.identity.substr(colon + 1);
    }
    return k;
}
}  // namespace

void SyncedStore::for_each_present(const std::string& job, const std::function<void(const KnownIdentity&)>& fn) {
    if (!staged_.empty()) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).present.c_str());
    s.bind(1, job);
    while (s.step()) fn(known(s.text(0), s.opt_i64(1)));
}

SyncedCounts SyncedStore::counts(const std::string& job) {
    if (!staged_.empty()) merge();
    see_leftovers();
    SyncedCounts c;
    auto s = db_.prepare(reads(leftovers_).counts.c_str());
    s.bind(1, job);
    if (s.step()) c = {s.i64(0), s.i64(1), s.i64(2)};
    return c;
}

std::vector<KnownIdentity> SyncedStore::unverified(const std::string& job, int limit) {
    if (!staged_.empty()) merge();
    see_leftovers();
    std::vector<KnownIdentity> out;
    auto s = db_.prepare(reads(leftovers_).unverified.c_str());
    s.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) {
        out.push_back(known(s.text(0), s.opt_i64(1)));
        out.back().accepted_at = s.i64(2);
    }
    return out;
}

bool SyncedStore::any_known(const std::string& job) {
    if (!staged_.empty()) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).any_known.c_str());
    s.bind(1, job);
    return s.step();
}

bool SyncedStore::any_unverified(const std::string& job) {
    if (!staged_.empty()) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).any_unverified.c_str());
    s.bind(1, job);
    return s.step();
}

std::vector<Millis> SyncedStore::mark_verified(const std::string& job, const std::vector<KnownIdentity>& read_back,
                                               Millis now) {
    if (!staged_.empty()) merge();
    std::vector<Millis> waited;
    Database::Transaction tx(db_);
    for (const auto& k : read_back) {
        db_.prepare("UPDATE synced SET verify = -1 WHERE job = ?1 AND identity = ?2 AND verify = ?3")
            .bind(1, job)
            .bind(2, k.identity)
            .bind(3, k.accepted_at)
            .run();
        // accepted_at is when the 202 was recorded: the wait for "Complete" (an upper bound,
        // to the granularity of verification).
        if (db_.changes() > 0) waited.push_back(std::max<Millis>(0, now - k.accepted_at));
    }
    tx.commit();
    return waited;
}

std::int64_t SyncedStore::count_present(const std::string& job) {
    if (!staged_.empty()) merge();
    see_leftovers();
    auto s = db_.prepare(reads(leftovers_).count_present.c_str());
    s.bind(1, job);
    return s.step() ? s.i64(0) : 0;
}

void SyncedStore::note_duplicate(const std::string& job, const std::string& identity, std::int64_t run_id) {
    db_.prepare("INSERT OR REPLACE INTO duplicates(job, identity, run_id) VALUES (?1, ?2, ?3)")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, run_id)
        .run();
}

bool SyncedStore::was_duplicate(const std::string& job, const std::string& identity) {
    auto s = db_.prepare("SELECT 1 FROM duplicates WHERE job = ?1 AND identity = ?2");
    s.bind(1, job).bind(2, identity);
    return s.step();
}

bool SyncedStore::any_duplicates(const std::string& job) {
    auto s = db_.prepare("SELECT 1 FROM duplicates WHERE job = ?1 LIMIT 1");
    s.bind(1, job);
    return s.step();
}

void SyncedStore::forget_duplicates_before(const std::string& job, std::int64_t run_id) {
    db_.prepare("DELETE FROM duplicates WHERE job = ?1 AND run_id <> ?2").bind(1, job).bind(2, run_id).run();
}

}  // namespace prefsync::journal
