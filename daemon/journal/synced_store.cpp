#include "daemon/journal/synced_store.hpp"

namespace prefsync::journal {

std::optional<SyncedState> SyncedStore::get(const std::string& job, const std::string& identity) {
    auto s = db_.prepare("SELECT hash, profile_id, coalesce(gone, '') FROM synced WHERE job = ?1 AND identity = ?2");
    s.bind(1, job).bind(2, identity);
    if (!s.step()) return std::nullopt;
    return SyncedState{s.text(0), s.opt_i64(1), s.text(2)};
}

void SyncedStore::record(const std::string& job, const std::string& identity, const std::string& hash,
                         std::optional<std::int64_t> profile_id, Millis now, const std::optional<std::string>& body) {
    auto s = db_.prepare(
        "INSERT INTO synced(job, identity, hash, profile_id, synced_at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(job, identity) DO UPDATE SET hash = excluded.hash, "
        "profile_id = COALESCE(excluded.profile_id, synced.profile_id), synced_at = excluded.synced_at, "
        "body = excluded.body, gone = NULL");
    s.bind(1, job).bind(2, identity).bind(3, hash).bind(4, profile_id).bind(5, now);
    if (body)
        s.bind(6, *body);
    else
        s.bind_null(6);
    s.run();
}

std::optional<std::string> SyncedStore::last_body(const std::string& job, const std::string& identity) {
    // An archived profile's preferences were archived by us: its last body no longer describes it.
    auto s = db_.prepare(
        "SELECT body FROM synced WHERE job = ?1 AND identity = ?2 AND body IS NOT NULL "
        "AND (gone IS NULL OR gone <> 'archived')");
    s.bind(1, job).bind(2, identity);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void SyncedStore::mark_gone(const std::string& job, const std::string& identity, const std::string& gone, Millis now) {
    if (gone.empty()) {
        db_.prepare("DELETE FROM synced WHERE job = ?1 AND identity = ?2").bind(1, job).bind(2, identity).run();
        return;
    }
    db_.prepare("UPDATE synced SET gone = ?3, synced_at = ?4 WHERE job = ?1 AND identity = ?2")
        .bind(1, job)
        .bind(2, identity)
        .bind(3, gone)
        .bind(4, now)
        .run();
}

void SyncedStore::for_each_present(const std::string& job, const std::function<void(const KnownIdentity&)>& fn) {
    auto s = db_.prepare("SELECT identity, profile_id FROM synced WHERE job = ?1 AND gone IS NULL ORDER BY identity");
    s.bind(1, job);
    while (s.step()) {
        KnownIdentity k;
        k.identity = s.text(0);
        k.profile_id = s.opt_i64(1);
        // "TYPE:ID" (alternate id) or "profile:123".
        auto colon = k.identity.find(':');
        if (!k.identity.starts_with("profile:") && colon != std::string::npos) {
            k.alt_type = k.identity.substr(0, colon);
            k.alt_id = k.identity.substr(colon + 1);
        }
        fn(k);
    }
}

std::int64_t SyncedStore::count_present(const std::string& job) {
    auto s = db_.prepare("SELECT count(*) FROM synced WHERE job = ?1 AND gone IS NULL");
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
