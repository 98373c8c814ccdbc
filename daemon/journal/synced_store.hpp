#pragma once
// Change detection: per job and identity, the hash of the last body the API accepted and
// the profile id it answered with. A row whose hash equals it is not sent again.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "daemon/journal/database.hpp"

namespace prefsync::journal {

struct SyncedState {
    std::string hash;
    std::optional<std::int64_t> profile_id;
    std::string gone;  // "" present; "deactivated" or "archived" after its row left the source
};

// A profile the job has synced and that is still present (not deactivated, archived or
// deleted for having left the source).
struct KnownIdentity {
    std::string identity;
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;
};

class SyncedStore {
public:
    explicit SyncedStore(Database& db) : db_(db) {}
    std::optional<SyncedState> get(const std::string& job, const std::string& identity);
    // Records an accepted body's hash (and the profile id, kept when `profile_id` is empty);
    // `body`, when given, is the last accepted body (mirror mode diffs against it). The
    // identity is present again.
    void record(const std::string& job, const std::string& identity, const std::string& hash,
                std::optional<std::int64_t> profile_id, Millis now,
                const std::optional<std::string>& body = std::nullopt);
    // The last accepted body (mirror), if one is kept and still describes the profile.
    std::optional<std::string> last_body(const std::string& job, const std::string& identity);
    // The profile left the source and was deactivated or archived ("deactivated",
    // "archived"); or deleted (`gone` empty): forgotten.
    void mark_gone(const std::string& job, const std::string& identity, const std::string& gone, Millis now);
    // Every present identity of `job`, in identity order.
    void for_each_present(const std::string& job, const std::function<void(const KnownIdentity&)>& fn);
    std::int64_t count_present(const std::string& job);

    // Identities the source had more than once (the last row of each wins). A run records
    // each as it meets it; after a complete read it forgets those of earlier runs.
    void note_duplicate(const std::string& job, const std::string& identity, std::int64_t run_id);
    bool was_duplicate(const std::string& job, const std::string& identity);
    bool any_duplicates(const std::string& job);
    void forget_duplicates_before(const std::string& job, std::int64_t run_id);

private:
    Database& db_;
};

}  // namespace prefsync::journal
