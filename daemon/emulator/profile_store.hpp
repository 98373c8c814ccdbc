#pragma once
// The emulator's in-memory MyPreferences account: profiles, alternate-id index, write
// history, and the documented semantics of every endpoint, with no I/O (the HTTP layer is
// emulator_api / server). Thread-safe: one mutex, held only for the duration of a call.
//
// Design constraints:
// - Semantics follow the vendor's API reference (its endpoint groups are listed in README.md
//   beside this file); where it is silent the choice is written there ("Interpretations"), so
//   a test can hold us to it.
// - Time comes from an injected clock: "Pending Update" → "Complete" and history order are
//   tested on fake time.
// - Responses are (status, JSON) pairs; the HTTP layer only serialises them.
#include <boost/json.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace prefsync::emulator {

namespace json = boost::json;
using Clock = std::function<std::chrono::system_clock::time_point()>;

struct Reply {
    int status = 200;
    json::value body;  // null: no body (204)
};

struct AltId {
    std::string type;
    std::string id;
};

enum class HistoryKind { Consents, ContactElements, CustomFields, Preferences, StandardFields };

class ProfileStore {
public:
    ProfileStore(Clock clock, std::chrono::milliseconds processing_delay);

    // W1. With allow_duplicates, an alternate id another profile carries does not refuse the
    // create (409): a second profile carries it too, as a server that does not check would do.
    Reply create(json::object body, bool allow_duplicates = false);
    Reply merge(std::int64_t profile_id, json::object body);  // W2
    Reply remove(std::int64_t profile_id);                    // W3
    Reply upsert(const AltId& alt, json::object body);        // W4
    // W5, W8. A failed `test` operation answers test_failure_status (the reference does not
    // say whether it is 400 or 409).
    Reply patch(std::int64_t profile_id, const json::array& operations, int test_failure_status = 409);
    Reply replace(std::int64_t profile_id, json::object body);         // W7
    Reply replace(const AltId& alt, json::object body);                // W6
    Reply archive(std::int64_t profile_id, const json::object& body);  // W9

    Reply get(std::int64_t profile_id, bool match_inactive) const;  // R2
    // R1 resolves through this. Of several profiles carrying `alt` (see create), the oldest.
    std::optional<std::int64_t> find(const AltId& alt) const;

    // Searches: every profile for which `match` is true, rendered as GET renders them.
    // Capped searches answer 403 over `cap` matches.
    Reply search(const std::function<bool(const json::object&)>& match, std::size_t cap) const;
    // Group searches: the profiles sharing a (groupType, groupName) group with the primary
    // profile chosen by `primary`.
    Reply group_search(const std::function<bool(std::int64_t, const json::object&)>& primary,
                       const std::string& group_type) const;

    Reply history(std::int64_t profile_id, HistoryKind kind, const std::string& filter_id) const;

    // Whether writes give every element they store the server's own `Edited` (FaultConfig).
    void set_stamp_elements(bool on);

    std::chrono::milliseconds processing_delay() const;
    void set_processing_delay(std::chrono::milliseconds delay);

    json::array dump() const;  // every profile as stored (admin)
    // Every alternate id carried, with the ProfileIds carrying it (admin), or only `only`'s.
    // As found in the profiles themselves, so a test counting duplicates does not trust the index.
    json::array alternate_ids(const std::optional<AltId>& only) const;
    std::size_t size() const;
    void reset();
    void load(const json::array& profiles);

private:
    struct Version {
        std::uint64_t seq;
        std::string time;     // ISO 8601 with milliseconds
        std::string profile;  // serialized: a fifth of the memory of a DOM, parsed on request
    };
    struct Profile {
        std::int64_t id = 0;
        json::object data;  // without ProfileId / UpdateStatus (rendered on read)
        std::chrono::system_clock::time_point complete_at;
        std::vector<Version> versions;
    };

    std::string now_iso() const;
    Reply accepted(const Profile& p, const AltId* alt) const;
    json::object render(const Profile& p, bool match_inactive) const;
    Reply store_new(json::object body, const AltId* alt, bool allow_duplicates = false);
    void commit(Profile& p, json::object data);
    std::optional<std::string> index_conflict(const json::object& data, std::int64_t self) const;
    void reindex(Profile& p, const json::object& old_data);
    Profile* find_locked(std::int64_t id);
    const Profile* find_locked(std::int64_t id) const;

    Clock clock_;
    std::chrono::milliseconds processing_delay_;
    mutable std::mutex mutex_;
    std::atomic<bool> stamp_elements_{false};
    std::map<std::int64_t, Profile> profiles_;
    // (type, id) → the profiles carrying it: one, unless duplicates were allowed.
    std::map<std::pair<std::string, std::string>, std::set<std::int64_t>> alt_index_;
    std::int64_t next_id_ = 1000001;
    std::uint64_t next_seq_ = 1;
};

// Small JSON helpers shared with the API layer.
std::string lower(std::string_view s);
std::string digits(std::string_view s);
std::string str(const json::object& o, std::string_view key);

}  // namespace prefsync::emulator
