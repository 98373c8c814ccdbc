#pragma once
// Change detection: per job and identity, the hash of the last body the API accepted and
// the profile id it answered with. A row whose hash equals it is not sent again.
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/journal/database.hpp"

namespace prefsync::journal {

struct SyncedState {
    std::string hash;
    std::optional<std::int64_t> profile_id;
};

class SyncedStore {
public:
    explicit SyncedStore(Database& db) : db_(db) {}
    std::optional<SyncedState> get(const std::string& job, const std::string& identity);
    // Records an accepted body's hash (and the profile id, kept when `profile_id` is empty).
    void record(const std::string& job, const std::string& identity, const std::string& hash,
                std::optional<std::int64_t> profile_id, Millis now);

private:
    Database& db_;
};

}  // namespace prefsync::journal
