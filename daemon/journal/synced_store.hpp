#pragma once
// Change detection: per job and identity, the hash of the last body the API accepted and
// the profile id it answered with. A row whose hash equals it is not sent again. It is also
// where a finished update's outcome lives (the update queue forgets finished updates): an
// answer of 202 is "accepted" until `verify` reads the profile back as complete.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/journal/database.hpp"

namespace prefsync::journal {

struct SyncedState {
    std::string hash;
    std::optional<std::int64_t> profile_id;
    std::string gone;                    // "" present; "deactivated" or "archived" after its row left the source
    std::optional<std::int64_t> run_id;  // the backfill that recorded it, if one did
    Millis synced_at = 0;
    // "" answered 200/201; "accepted" a 202 not yet read back as complete; "verified".
    std::string verification;
};

// What the last answer for an identity said.
enum class Outcome { Done, Accepted };

// Identities by the outcome of their last write, for `status` and /metrics.
struct SyncedCounts {
    std::int64_t done = 0, accepted = 0, verified = 0;
};

// A profile the job has synced and that is still present (not deactivated, archived or
// deleted for having left the source).
struct KnownIdentity {
    std::string identity;
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;
    Millis accepted_at = 0;  // unverified(): when its 202 was recorded
};

class SyncedStore {
public:
    explicit SyncedStore(Database& db) : db_(db) {}
    std::optional<SyncedState> get(const std::string& job, const std::string& identity);
    // Records an accepted body's hash (and the profile id, kept when `profile_id` is empty);
    // `body`, when given, is the last accepted body (mirror mode diffs against it). The
    // identity is present again.
    // `outcome` Accepted: a 202, to be verified. `run_id`: the backfill that sent it.
    void record(const std::string& job, const std::string& identity, const std::string& hash,
                std::optional<std::int64_t> profile_id, Millis now,
                const std::optional<std::string>& body = std::nullopt, Outcome outcome = Outcome::Done,
                std::optional<std::int64_t> run_id = std::nullopt);
    // The last accepted body (mirror), if one is kept and still describes the profile.
    std::optional<std::string> last_body(const std::string& job, const std::string& identity);
    // The profile left the source and was deactivated or archived ("deactivated",
    // "archived"); or deleted (`gone` empty): forgotten.
    void mark_gone(const std::string& job, const std::string& identity, const std::string& gone, Millis now);
    // Every present identity of `job`, in identity order.
    void for_each_present(const std::string& job, const std::function<void(const KnownIdentity&)>& fn);
    std::int64_t count_present(const std::string& job);
    SyncedCounts counts(const std::string& job);

    // Identities whose last write was accepted (202) and not yet verified, oldest first.
    std::vector<KnownIdentity> unverified(const std::string& job, int limit);
    bool any_unverified(const std::string& job);
    // Marks them verified, each only if its last write is still the 202 unverified() returned
    // (a newer write of the identity is verified on its own); returns, per identity marked,
    // how long it waited since its 202 (ms).
    std::vector<Millis> mark_verified(const std::string& job, const std::vector<KnownIdentity>& read_back, Millis now);

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
