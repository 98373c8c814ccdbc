#include "daemon/journal/synced_store.hpp"

namespace prefsync::journal {

std::optional<SyncedState> SyncedStore::get(const std::string& job, const std::string& identity) {
    auto s = db_.prepare("SELECT hash, profile_id FROM synced WHERE job = ?1 AND identity = ?2");
    s.bind(1, job).bind(2, identity);
    if (!s.step()) return std::nullopt;
    return SyncedState{s.text(0), s.opt_i64(1)};
}

void SyncedStore::record(const std::string& job, const std::string& identity, const std::string& hash,
                         std::optional<std::int64_t> profile_id, Millis now) {
    db_.prepare("INSERT INTO synced(job, identity, hash, profile_id, synced_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                "ON CONFLICT(job, identity) DO UPDATE SET hash = excluded.hash, "
                "profile_id = COALESCE(excluded.profile_id, synced.profile_id), synced_at = excluded.synced_at")
        .bind(1, job).bind(2, identity).bind(3, hash).bind(4, profile_id).bind(5, now).run();
}

}  // namespace prefsync::journal
