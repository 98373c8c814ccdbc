#include "daemon/emulator/profile_store.hpp"

#include <algorithm>
#include <ctime>
#include <set>

#include "daemon/emulator/body_validation.hpp"
#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/json_pointer.hpp"

namespace prefsync::emulator {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

std::string digits(std::string_view s) {
    std::string out;
    for (char c : s)
        if (c >= '0' && c <= '9') out += c;
    return out;
}

std::string str(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return {};
    return std::string(it->value().as_string());
}

namespace {

Reply error(int status, const std::string& message) {
    return {status, json::object{{"Message", message}}};
}

bool is_inactive(const json::value& v) {
    if (!v.is_object()) return false;
    auto it = v.as_object().find("IsActive");
    return it != v.as_object().end() && it->value().is_bool() && !it->value().as_bool();
}

// Removes inactive elements from every array, recursively (GET without matchInactive).
void drop_inactive(json::value& v) {
    if (v.is_object()) {
        for (auto& kv : v.as_object()) drop_inactive(kv.value());
    } else if (v.is_array()) {
        auto& a = v.as_array();
        for (std::size_t i = a.size(); i-- > 0;)
            if (is_inactive(a[i])) a.erase(a.begin() + static_cast<std::ptrdiff_t>(i));
        for (auto& e : a) drop_inactive(e);
    }
}

// The natural key of an element of `collection`, by which a merge update finds the element
// it updates. Empty: no key, the element is appended.
std::string element_key(std::string_view collection, const json::object& e) {
    if (collection == "Emails") return lower(str(e, "EmailAddress"));
    if (collection == "PhoneNumbers") return digits(str(e, "PhoneNumber"));
    if (collection == "Addresses")
        return lower(str(e, "Address1")) + "|" + lower(str(e, "City")) + "|" + lower(str(e, "PostalCode"));
    if (collection == "ProfileTags") return lower(str(e, "Name"));
    if (collection == "CustomFields") return lower(str(e, "Name"));
    if (collection == "Groups") return str(e, "GroupType") + "|" + str(e, "GroupName");
    if (collection == "AlternateIds") return str(e, "AlternateIdType");
    if (collection == "Consents" || collection == "ConsentAssociations")
        return str(e, "ConsentType") + "|" + str(e, "ConsentVersion");
    if (collection.ends_with("Preferences"))
        return str(e, "ProgramId") + "|" + str(e, "ChannelId") + "|" + str(e, "FilterId");
    if (collection == "PreferenceAttributes") return str(e, "Key");
    return {};
}

void merge_object(json::object& target, const json::object& update);

void merge_array(std::string_view collection, json::array& target, const json::array& update) {
    for (const auto& item : update) {
        if (!item.is_object()) continue;
        auto key = element_key(collection, item.as_object());
        auto existing = std::find_if(target.begin(), target.end(), [&](const json::value& t) {
            return !key.empty() && t.is_object() && element_key(collection, t.as_object()) == key;
        });
        if (existing != target.end())
            merge_object(existing->as_object(), item.as_object());
        else
            target.push_back(item);
    }
}

// Merge update semantics (W2, W4): absent properties stay; objects merge field by field;
// collections merge element by element on their natural key.
void merge_object(json::object& target, const json::object& update) {
    for (const auto& kv : update) {
        if (kv.value().is_null()) continue;
        auto it = target.find(kv.key());
        if (it != target.end() && it->value().is_array() && kv.value().is_array()) {
            merge_array(kv.key(), it->value().as_array(), kv.value().as_array());
        } else if (it != target.end() && it->value().is_object() && kv.value().is_object()) {
            merge_object(it->value().as_object(), kv.value().as_object());
        } else {
            target[kv.key()] = kv.value();
        }
    }
}

void drop_nulls(json::object& o) {
    for (auto it = o.begin(); it != o.end();) {
        if (it->value().is_null()) {
            it = o.erase(it);
            continue;
        }
        if (it->value().is_object()) drop_nulls(it->value().as_object());
        if (it->value().is_array())
            for (auto& e : it->value().as_array())
                if (e.is_object()) drop_nulls(e.as_object());
        ++it;
    }
}

// --- JSON Patch: the API's rules on top of RFC 6902 (applied by daemon/patch) -------------

// Why the API refuses operation `op` whatever the profile holds: a path into a read-only
// field, or the whole profile. nullopt when it is the profile's turn to decide.
std::optional<std::string> refused_path(const json::object& op) {
    static const std::set<std::string, std::less<>> read_only{"ProfileId", "UpdateStatus", "Edited"};
    const json::value* path = op.if_contains("path");
    auto tokens = path && path->is_string() ? patch::parse_pointer(path->get_string()) : std::nullopt;
    if (!tokens) return std::nullopt;  // malformed: apply_patch names the problem
    if (tokens->empty()) return "path \"\" (the whole profile) is not supported";
    if (read_only.count(tokens->front())) return "path \"" + std::string(path->get_string()) + "\" is read-only";
    return std::nullopt;
}

// --- history -------------------------------------------------------------------------------

constexpr std::size_t kMaxVersions = 20;

// Basic profile information: scalar fields, CustomerName and AlternateIds.
json::object basic(const json::object& data) {
    json::object out;
    for (const auto& kv : data)
        if (!kv.value().is_array() || kv.key() == "AlternateIds") out.emplace(kv.key(), kv.value());
    return out;
}

void stamp(json::object& element, const std::string& time) {
    json::object edited;
    if (auto* e = element.if_contains("Edited"); e && e->is_object()) edited = e->as_object();
    edited["ModifiedDate"] = time;
    element["Edited"] = std::move(edited);
}

// The server's own `Edited` on every element that has none yet (one the write brought), in
// the collections where the reference's profiles show it, their nested Consents included.
void stamp_new_elements(json::object& data, const std::string& now) {
    auto stamp_each = [&](json::value* array) {
        if (!array || !array->is_array()) return;
        for (auto& e : array->as_array()) {
            auto* o = e.if_object();
            if (!o) continue;
            if (!o->contains("Edited"))
                (*o)["Edited"] = json::object{{"CreateDate", now},
                                              {"CreatedBy", "prefsync-emulator"},
                                              {"ModifiedDate", now},
                                              {"ModifiedBy", "prefsync-emulator"}};
        }
    };
    for (auto& kv : data) {
        if (kv.key() == "ProfileTags" || kv.key() == "ProfilePreferences" || !kv.value().is_array()) continue;
        stamp_each(&kv.value());
        for (auto& e : kv.value().as_array())
            if (auto* o = e.if_object()) stamp_each(o->if_contains("Consents"));
    }
}

struct ElementVersion {
    std::uint64_t seq;
    std::string time;
    json::object element;
};

}  // namespace

ProfileStore::ProfileStore(Clock clock, std::chrono::milliseconds processing_delay)
    : clock_(std::move(clock)), processing_delay_(processing_delay) {}

std::string ProfileStore::now_iso() const {
    auto now = clock_();
    auto t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&t, &utc);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ms));
    return buf;
}

ProfileStore::Profile* ProfileStore::find_locked(std::int64_t id) {
    auto it = profiles_.find(id);
    return it == profiles_.end() ? nullptr : &it->second;
}
const ProfileStore::Profile* ProfileStore::find_locked(std::int64_t id) const {
    auto it = profiles_.find(id);
    return it == profiles_.end() ? nullptr : &it->second;
}

std::optional<std::string> ProfileStore::index_conflict(const json::object& data, std::int64_t self) const {
    if (auto* ids = data.if_contains("AlternateIds"); ids && ids->is_array()) {
        for (const auto& a : ids->as_array()) {
            if (!a.is_object()) continue;
            auto key = std::make_pair(str(a.as_object(), "AlternateIdType"), str(a.as_object(), "AlternateId"));
            auto it = alt_index_.find(key);
            // An id the profile already carries is never a conflict, even when duplicated.
            if (it == alt_index_.end() || it->second.empty() || it->second.count(self)) continue;
            return "a profile with AlternateIdType \"" + key.first + "\" and AlternateId \"" + key.second +
                   "\" already exists (ProfileId " + std::to_string(*it->second.begin()) + ")";
        }
    }
    return std::nullopt;
}

void ProfileStore::reindex(Profile& p, const json::object& old_data) {
    auto each = [](const json::object& data, auto&& fn) {
        if (auto* ids = data.if_contains("AlternateIds"); ids && ids->is_array())
            for (const auto& a : ids->as_array())
                if (a.is_object()) fn(str(a.as_object(), "AlternateIdType"), str(a.as_object(), "AlternateId"));
    };
    each(old_data, [&](const std::string& t, const std::string& i) {
        auto it = alt_index_.find({t, i});
        if (it == alt_index_.end()) return;
        it->second.erase(p.id);
        if (it->second.empty()) alt_index_.erase(it);
    });
    each(p.data, [&](const std::string& t, const std::string& i) { alt_index_[{t, i}].insert(p.id); });
}

void ProfileStore::set_stamp_elements(bool on) {
    stamp_elements_ = on;
}

void ProfileStore::commit(Profile& p, json::object data) {
    drop_nulls(data);
    auto now = now_iso();
    if (stamp_elements_) stamp_new_elements(data, now);
    json::object edited;
    if (auto* e = p.data.if_contains("Edited"); e && e->is_object()) edited = e->as_object();
    if (!edited.contains("CreateDate")) {
        edited["CreateDate"] = now;
        edited["CreatedBy"] = "prefsync-emulator";
    }
    edited["ModifiedDate"] = now;
    edited["ModifiedBy"] = "prefsync-emulator";
    data["Edited"] = std::move(edited);
    json::object old = std::move(p.data);
    p.data = std::move(data);
    reindex(p, old);
    p.complete_at = clock_() + processing_delay_;
    p.versions.push_back({next_seq_++, now, json::serialize(p.data)});
    // History is for audits of recent changes, not an unbounded log: a long soak or a
    // nightly re-sync must not grow memory without bound.
    if (p.versions.size() > kMaxVersions) p.versions.erase(p.versions.begin());
}

Reply ProfileStore::accepted(const Profile& p, const AltId* alt) const {
    std::string type, id;
    if (alt) {
        type = alt->type;
        id = alt->id;
    } else if (auto* ids = p.data.if_contains("AlternateIds"); ids && ids->is_array() && !ids->as_array().empty()) {
        type = str(ids->as_array()[0].as_object(), "AlternateIdType");
        id = str(ids->as_array()[0].as_object(), "AlternateId");
    }
    return {202, json::object{{"AlternateId", id},
                              {"AlternateIdType", type},
                              {"ProfileId", p.id},
                              {"UpdateStatus", "Pending Update"},
                              {"SubmittedUtcTime", now_iso()}}};
}

json::object ProfileStore::render(const Profile& p, bool match_inactive) const {
    json::value out = p.data;
    if (!match_inactive) drop_inactive(out);
    auto& o = out.as_object();
    o["ProfileId"] = p.id;
    o["UpdateStatus"] = clock_() >= p.complete_at ? "Complete" : "Pending Update";
    return std::move(o);
}

Reply ProfileStore::store_new(json::object body, const AltId* alt, bool allow_duplicates) {
    if (alt) {
        auto& ids = body["AlternateIds"];
        if (!ids.is_array()) ids = json::array();
        bool present = std::any_of(ids.as_array().begin(), ids.as_array().end(), [&](const json::value& a) {
            return a.is_object() && str(a.as_object(), "AlternateIdType") == alt->type &&
                   str(a.as_object(), "AlternateId") == alt->id;
        });
        if (!present) ids.as_array().push_back(json::object{{"AlternateIdType", alt->type}, {"AlternateId", alt->id}});
    }
    if (!allow_duplicates)
        if (auto conflict = index_conflict(body, 0)) return error(409, *conflict);
    Profile& p = profiles_[next_id_];
    p.id = next_id_++;
    commit(p, std::move(body));
    return accepted(p, alt);
}

Reply ProfileStore::create(json::object body, bool allow_duplicates) {
    std::lock_guard lock(mutex_);
    return store_new(std::move(body), nullptr, allow_duplicates);
}

Reply ProfileStore::merge(std::int64_t profile_id, json::object body) {
    std::lock_guard lock(mutex_);
    Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    json::object data = p->data;
    merge_object(data, body);
    if (auto conflict = index_conflict(data, p->id)) return error(409, *conflict);
    commit(*p, std::move(data));
    return accepted(*p, nullptr);
}

Reply ProfileStore::upsert(const AltId& alt, json::object body) {
    std::lock_guard lock(mutex_);
    auto it = alt_index_.find({alt.type, alt.id});
    if (it == alt_index_.end()) return store_new(std::move(body), &alt);
    Profile& p = profiles_.at(*it->second.begin());
    json::object data = p.data;
    merge_object(data, body);
    if (auto conflict = index_conflict(data, p.id)) return error(409, *conflict);
    commit(p, std::move(data));
    return accepted(p, &alt);
}

Reply ProfileStore::remove(std::int64_t profile_id) {
    std::lock_guard lock(mutex_);
    Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    json::object old = std::move(p->data);
    p->data = {};
    reindex(*p, old);
    profiles_.erase(profile_id);
    return {204, nullptr};
}

Reply ProfileStore::patch(std::int64_t profile_id, const json::array& operations, int test_failure_status) {
    std::lock_guard lock(mutex_);
    Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    // A patch naming a read-only path is a bad request as a whole, before any `test` in it
    // is evaluated against the profile.
    for (std::size_t i = 0; i < operations.size(); ++i) {
        if (!operations[i].is_object()) return error(400, "Operations[" + std::to_string(i) + "]: expected an object");
        if (auto e = refused_path(operations[i].as_object()))
            return error(400, "Operations[" + std::to_string(i) + "]: " + *e);
    }
    json::value doc = p->data;
    // move and copy stay refused (ApplyOptions default), as the API refuses them.
    if (auto e = patch::apply_patch(doc, operations))
        return error(e->kind == patch::PatchErrorKind::TestFailed ? test_failure_status : 400,
                     "Operations[" + std::to_string(e->op_index) + "]: " + e->message);
    // The patched document must still be a valid profile; nothing is applied otherwise.
    if (auto e = validate_body(doc.as_object(), api::profile_schema())) return error(400, "after patch: " + *e);
    if (auto conflict = index_conflict(doc.as_object(), p->id)) return error(409, *conflict);
    commit(*p, std::move(doc.as_object()));
    return {200, render(*p, true)};
}

Reply ProfileStore::replace(std::int64_t profile_id, json::object body) {
    std::lock_guard lock(mutex_);
    Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    if (auto conflict = index_conflict(body, p->id)) return error(409, *conflict);
    // Absent is blank: the body replaces everything; only the server's own fields survive.
    if (auto* e = p->data.if_contains("Edited")) body["Edited"] = *e;
    commit(*p, std::move(body));
    return {200, render(*p, true)};
}

Reply ProfileStore::replace(const AltId& alt, json::object body) {
    std::int64_t id = 0;
    {
        std::lock_guard lock(mutex_);
        auto it = alt_index_.find({alt.type, alt.id});
        if (it == alt_index_.end())
            return error(404,
                         "no profile with AlternateIdType \"" + alt.type + "\" and AlternateId \"" + alt.id + "\"");
        id = *it->second.begin();
    }
    // As the API reference says of W6: collections not sent are blank, the AlternateIds too,
    // even the one the request found the profile by (a client that leaves it out loses it).
    return replace(id, std::move(body));
}

Reply ProfileStore::archive(std::int64_t profile_id, const json::object& body) {
    std::lock_guard lock(mutex_);
    Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    json::object data = p->data;
    bool global = false;
    if (auto* g = body.if_contains("GlobalDeactivate"); g && g->is_bool()) global = g->as_bool();
    // Filters named per collection; a contact collection's filter applies to the contact
    // element that matches the request's own fields (EmailAddress, PhoneNumber, Address1).
    auto archive_in = [&](json::array& prefs, const std::set<std::string>& filters) {
        for (std::size_t i = prefs.size(); i-- > 0;) {
            if (!prefs[i].is_object()) continue;
            if (global || filters.count(str(prefs[i].as_object(), "FilterId")))
                prefs.erase(prefs.begin() + static_cast<std::ptrdiff_t>(i));
        }
    };
    auto filters_of = [&](const char* collection, const json::object* contact, const char* match_key) {
        std::set<std::string> filters;
        if (auto* arr = body.if_contains(collection); arr && arr->is_array())
            for (const auto& e : arr->as_array()) {
                if (!e.is_object()) continue;
                const auto& eo = e.as_object();
                if (contact && match_key && !str(eo, match_key).empty() &&
                    lower(str(eo, match_key)) != lower(str(*contact, match_key)))
                    continue;
                filters.insert(str(eo, "FilterId"));
            }
        return filters;
    };
    if (auto* prefs = data.if_contains("ProfilePreferences"); prefs && prefs->is_array())
        archive_in(prefs->as_array(), filters_of("ProfilePreferences", nullptr, nullptr));
    struct Contact {
        const char* collection;
        const char* prefs;
        const char* key;
    };
    for (Contact c : {Contact{"Emails", "EmailPreferences", "EmailAddress"},
                      Contact{"PhoneNumbers", "PhonePreferences", "PhoneNumber"},
                      Contact{"Addresses", "AddressPreferences", "Address1"}}) {
        if (auto* arr = data.if_contains(c.collection); arr && arr->is_array())
            for (auto& e : arr->as_array())
                if (e.is_object())
                    if (auto* prefs = e.as_object().if_contains(c.prefs); prefs && prefs->is_array())
                        archive_in(prefs->as_array(), filters_of(c.collection, &e.as_object(), c.key));
    }
    commit(*p, std::move(data));
    return {204, nullptr};
}

Reply ProfileStore::get(std::int64_t profile_id, bool match_inactive) const {
    std::lock_guard lock(mutex_);
    const Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");
    return {200, render(*p, match_inactive)};
}

std::optional<std::int64_t> ProfileStore::find(const AltId& alt) const {
    std::lock_guard lock(mutex_);
    auto it = alt_index_.find({alt.type, alt.id});
    if (it == alt_index_.end()) return std::nullopt;
    return *it->second.begin();
}

Reply ProfileStore::search(const std::function<bool(const json::object&)>& match, std::size_t cap) const {
    std::lock_guard lock(mutex_);
    json::array out;
    for (const auto& [id, p] : profiles_) {
        if (!match(p.data)) continue;
        if (out.size() == cap)
            return error(403, "more than " + std::to_string(cap) + " profiles match; narrow the search");
        out.push_back(render(p, false));
    }
    return {200, std::move(out)};
}

Reply ProfileStore::group_search(const std::function<bool(std::int64_t, const json::object&)>& primary,
                                 const std::string& group_type) const {
    std::lock_guard lock(mutex_);
    auto groups_of = [&](const json::object& data, bool primary_only) {
        std::set<std::string> names;
        if (auto* g = data.if_contains("Groups"); g && g->is_array())
            for (const auto& e : g->as_array()) {
                if (!e.is_object() || is_inactive(e) || str(e.as_object(), "GroupType") != group_type) continue;
                auto* is_primary = e.as_object().if_contains("IsPrimary");
                if (primary_only && !(is_primary && is_primary->is_bool() && is_primary->as_bool())) continue;
                names.insert(str(e.as_object(), "GroupName"));
            }
        return names;
    };
    std::set<std::string> names;
    bool found = false;
    for (const auto& [id, p] : profiles_) {
        if (!primary(id, p.data)) continue;
        found = true;
        auto n = groups_of(p.data, true);
        names.insert(n.begin(), n.end());
    }
    if (!found) return error(404, "no primary profile matches");
    json::array out;
    for (const auto& [id, p] : profiles_) {
        auto mine = groups_of(p.data, false);
        bool member = std::any_of(mine.begin(), mine.end(), [&](const std::string& g) { return names.count(g) > 0; });
        if (!member) continue;
        if (out.size() == 50) return error(403, "more than 50 profiles in the group");
        out.push_back(render(p, false));
    }
    return {200, std::move(out)};
}

Reply ProfileStore::history(std::int64_t profile_id, HistoryKind kind, const std::string& filter_id) const {
    std::lock_guard lock(mutex_);
    const Profile* p = find_locked(profile_id);
    if (!p) return error(404, "profile " + std::to_string(profile_id) + " not found");

    // Every distinct version of each element of `collection` (found by `elements_of`), in
    // write order: a version is recorded when an element first appears or changes.
    std::vector<std::pair<const Version*, json::object>> parsed;
    for (const auto& v : p->versions) parsed.emplace_back(&v, json::parse(v.profile).as_object());
    auto versions_of =
        [&](const std::function<std::vector<std::pair<std::string, json::object>>(const json::object&)>& elements_of) {
            std::vector<ElementVersion> out;
            std::map<std::string, json::object> last;
            for (const auto& [v, profile] : parsed) {
                for (auto& [key, element] : elements_of(profile)) {
                    auto it = last.find(key);
                    if (it != last.end() && it->second == element) continue;
                    last[key] = element;
                    json::object stamped = element;
                    stamp(stamped, v->time);
                    out.push_back({v->seq, v->time, std::move(stamped)});
                }
            }
            return out;
        };
    auto top = [](const char* collection) {
        return [collection](const json::object& data) {
            std::vector<std::pair<std::string, json::object>> out;
            if (auto* arr = data.if_contains(collection); arr && arr->is_array())
                for (const auto& e : arr->as_array())
                    if (e.is_object()) out.emplace_back(element_key(collection, e.as_object()), e.as_object());
            return out;
        };
    };
    auto to_array = [](std::vector<ElementVersion>& versions) {
        json::array a;
        for (auto& v : versions) a.push_back(std::move(v.element));
        return a;
    };

    json::object out = basic(p->data);
    out["ProfileId"] = p->id;
    out["UpdateStatus"] = clock_() >= p->complete_at ? "Complete" : "Pending Update";
    switch (kind) {
        case HistoryKind::Consents: {
            auto v = versions_of(top("Consents"));
            std::stable_sort(v.begin(), v.end(), [](const ElementVersion& a, const ElementVersion& b) {
                auto ka = std::make_tuple(str(a.element, "ConsentType"), str(a.element, "ConsentVersion"), a.seq);
                auto kb = std::make_tuple(str(b.element, "ConsentType"), str(b.element, "ConsentVersion"), b.seq);
                return ka < kb;
            });
            out["Consents"] = to_array(v);
            break;
        }
        case HistoryKind::CustomFields: {
            auto v = versions_of(top("CustomFields"));
            out["CustomFields"] = to_array(v);
            break;
        }
        case HistoryKind::ContactElements:
            for (const char* c : {"Emails", "PhoneNumbers", "Addresses"}) {
                auto v = versions_of(top(c));
                if (!v.empty()) out[c] = to_array(v);
            }
            break;
        case HistoryKind::Preferences: {
            auto filtered = [&](const char* collection, const char* prefs_key) {
                return [=, &filter_id](const json::object& data) {
                    std::vector<std::pair<std::string, json::object>> res;
                    auto add = [&](const std::string& owner, const json::value& prefs) {
                        if (!prefs.is_array()) return;
                        for (const auto& pr : prefs.as_array()) {
                            if (!pr.is_object()) continue;
                            if (!filter_id.empty() && str(pr.as_object(), "FilterId") != filter_id) continue;
                            res.emplace_back(owner + "#" + element_key("Preferences", pr.as_object()), pr.as_object());
                        }
                    };
                    if (!prefs_key) {
                        if (auto* arr = data.if_contains(collection)) add("", *arr);
                    } else if (auto* arr = data.if_contains(collection); arr && arr->is_array()) {
                        for (const auto& e : arr->as_array())
                            if (e.is_object())
                                if (auto* prefs = e.as_object().if_contains(prefs_key))
                                    add(element_key(collection, e.as_object()), *prefs);
                    }
                    return res;
                };
            };
            auto v = versions_of(filtered("ProfilePreferences", nullptr));
            out["ProfilePreferences"] = to_array(v);
            // Contacts carry the history of their own preferences.
            struct C {
                const char* collection;
                const char* prefs;
            };
            for (C c : {C{"Emails", "EmailPreferences"}, C{"PhoneNumbers", "PhonePreferences"},
                        C{"Addresses", "AddressPreferences"}}) {
                auto* arr = p->data.if_contains(c.collection);
                if (!arr || !arr->is_array()) continue;
                json::array contacts;
                for (const auto& e : arr->as_array()) {
                    if (!e.is_object()) continue;
                    json::object contact = e.as_object();
                    auto owner = element_key(c.collection, contact) + "#";
                    auto mine = versions_of([&](const json::object& data) {
                        auto all = filtered(c.collection, c.prefs)(data);
                        std::vector<std::pair<std::string, json::object>> res;
                        for (auto& kv : all)
                            if (kv.first.starts_with(owner)) res.push_back(std::move(kv));
                        return res;
                    });
                    contact[c.prefs] = to_array(mine);
                    contacts.push_back(std::move(contact));
                }
                out[c.collection] = std::move(contacts);
            }
            break;
        }
        case HistoryKind::StandardFields: {
            json::array entries;
            json::object previous;
            for (const auto& [v, profile] : parsed) {
                json::object standard;
                for (const auto& kv : profile)
                    if (!kv.value().is_array() && kv.key() != "Edited") standard.emplace(kv.key(), kv.value());
                if (!entries.empty() && standard == previous) continue;
                previous = standard;
                json::object entry = standard;
                entry["ProfileId"] = p->id;
                stamp(entry, v->time);
                if (auto* ids = p->data.if_contains("AlternateIds")) entry["AlternateIds"] = *ids;
                entries.push_back(std::move(entry));
            }
            return {200, json::object{{"UserProfilePreferences", std::move(entries)}}};
        }
    }
    return {200, std::move(out)};
}

std::chrono::milliseconds ProfileStore::processing_delay() const {
    std::lock_guard lock(mutex_);
    return processing_delay_;
}

void ProfileStore::set_processing_delay(std::chrono::milliseconds delay) {
    std::lock_guard lock(mutex_);
    processing_delay_ = delay;
}

json::array ProfileStore::dump() const {
    std::lock_guard lock(mutex_);
    json::array out;
    for (const auto& [id, p] : profiles_) out.push_back(render(p, true));
    return out;
}

json::array ProfileStore::alternate_ids(const std::optional<AltId>& only) const {
    std::lock_guard lock(mutex_);
    std::map<std::pair<std::string, std::string>, json::array> carriers;
    for (const auto& [id, p] : profiles_)
        if (auto* ids = p.data.if_contains("AlternateIds"); ids && ids->is_array())
            for (const auto& a : ids->as_array()) {
                if (!a.is_object()) continue;
                std::pair key{str(a.as_object(), "AlternateIdType"), str(a.as_object(), "AlternateId")};
                if (only && (key.first != only->type || key.second != only->id)) continue;
                carriers[key].push_back(id);
            }
    json::array out;
    for (auto& [key, ids] : carriers)
        out.push_back(
            json::object{{"AlternateIdType", key.first}, {"AlternateId", key.second}, {"ProfileIds", std::move(ids)}});
    return out;
}

std::size_t ProfileStore::size() const {
    std::lock_guard lock(mutex_);
    return profiles_.size();
}

void ProfileStore::reset() {
    std::lock_guard lock(mutex_);
    profiles_.clear();
    alt_index_.clear();
}

void ProfileStore::load(const json::array& profiles) {
    std::lock_guard lock(mutex_);
    for (const auto& v : profiles) {
        if (!v.is_object()) continue;
        json::object data = v.as_object();
        std::int64_t id = next_id_;
        if (auto* pid = data.if_contains("ProfileId"); pid && pid->is_int64()) id = pid->as_int64();
        data.erase("ProfileId");
        data.erase("UpdateStatus");
        Profile& p = profiles_[id];
        p.id = id;
        commit(p, std::move(data));
        p.complete_at = clock_();
        next_id_ = std::max(next_id_, id + 1);
    }
}

}  // namespace prefsync::emulator
