// Mirror mode over time, on random profiles: a seeded generator builds Profile-shaped
// bodies (names, Emails with preferences, PhoneNumbers, Addresses with preferences, custom
// fields, tags) and a profile that also holds foreign data (fields, elements, fields inside
// our elements, read-only fields). Each chain runs several syncs; between them the source
// changes and so does the profile (foreign elements inserted before ours and removed,
// foreign fields changed, foreign containers appearing).
//
// Every sync diffs against one of three views — our own last accepted body, a stale
// snapshot of the profile, or the profile as just read — and applies the patch to the
// profile as it really is. Properties:
// - A patch computed against a stale view either fails (TestFailed or Unappliable, profile
//   unchanged) or leaves the profile mirrored: never a write to the wrong element.
// - A patch against the profile as read always applies, and a failed one's retry does.
// - Mirrored: owned fields equal desired; owned elements no longer desired are gone (or
//   deactivated); foreign fields and elements are exactly as they were, in order.
// - Converged: diffing again with owned_after gives an empty patch.
// The checker restates the rules independently of the diff's code.
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <set>

#include "daemon/api/profile_schema.hpp"
#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/natural_key.hpp"
#include "daemon/patch/profile_diff.hpp"

namespace prefsync::patch {
namespace {

using api::FieldType;
using api::ObjectSchema;

// --- generator ------------------------------------------------------------------------------

class Gen {
public:
    explicit Gen(std::uint64_t seed) : rng_(seed) {}

    std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
    bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
    template <class T>
    T one_of(std::initializer_list<T> options) {
        return *(options.begin() + static_cast<std::ptrdiff_t>(below(options.size())));
    }
    int fresh_id() { return next_id_++; }  // keys never repeat unless a test means them to

    json::object preference(int id) {
        json::object p{{"ProgramId", "P" + std::to_string(id)},
                       {"ChannelId", one_of({"Email", "SMS"})},
                       {"FilterId", "F" + std::to_string(id)},
                       {"PreferenceStatus", one_of({"OptIn", "OptOut"})}};
        if (chance(30))
            p["PreferenceAttributes"] =
                json::array{json::object{{"Key", "k" + std::to_string(fresh_id())}, {"Value", one_of({"a", "b"})}}};
        return p;
    }
    json::array preferences() {
        json::array a;
        for (std::size_t n = below(3); n > 0; --n) a.push_back(preference(fresh_id()));
        return a;
    }
    json::object element(std::string_view collection, int id) {
        auto n = std::to_string(id);
        if (collection == "Emails") {
            json::object e{{"EmailAddress", one_of({"user", "User", "USER"}) + n + "@example.com"},
                           {"EmailAddressType", one_of({"Personal", "Work"})}};
            if (chance(40)) e["EmailPreferences"] = preferences();
            return e;
        }
        if (collection == "PhoneNumbers") {
            auto digits = "555" + std::string(4 - std::min<std::size_t>(4, n.size()), '0') + n;
            return {{"PhoneNumber", format_phone(digits)}, {"PhoneType", one_of({"Home", "Mobile"})}};
        }
        if (collection == "Addresses") {
            json::object e{{"Address1", n + " Main St"},
                           {"City", one_of({"Springfield", "Shelbyville"})},
                           {"PostalCode", "9" + n},
                           {"AddressType", one_of({"Home", "Work"})}};
            if (chance(30)) e["AddressPreferences"] = preferences();
            return e;
        }
        if (collection == "CustomFields") return {{"Name", "Field" + n}, {"Value", one_of({"x", "y", "z"})}};
        return {{"Name", "tag" + n}};  // ProfileTags
    }
    std::string format_phone(const std::string& digits) {
        switch (below(3)) {
            case 0: return digits;
            case 1: return digits.substr(0, 3) + "-" + digits.substr(3);
            default: return "(" + digits.substr(0, 3) + ") " + digits.substr(3);
        }
    }

    // A body the mapping could produce.
    json::object body() {
        json::object b{{"CustomerName", json::object{{"FirstName", one_of({"Ann", "Bo", "Chen"})},
                                                     {"LastName", one_of({"Lee", "Kim"})}}}};
        if (chance(30)) b["CustomerName"].as_object()["MiddleName"] = "Q";
        if (chance(50)) b["CustomerType"] = one_of({"Retail", "Commercial"});
        for (auto c : kCollections) {
            json::array a;
            for (std::size_t n = below(4); n > 0; --n) a.push_back(element(c, fresh_id()));
            if (!a.empty() || chance(20)) b[c] = std::move(a);
        }
        b["AlternateIds"] = json::array{json::object{{"AlternateIdType", "CRMID"}, {"AlternateId", "C1"}}};
        return b;
    }

    // The source changed: fields changed, dropped, added; elements changed in place (also
    // their key's spelling), dropped, re-keyed, added, revived; `takeover` holds foreign
    // elements the view shows, which the source may now list.
    json::object mutate(const json::object& before, const std::vector<std::pair<std::string, json::object>>& takeover,
                        const json::object& owned) {
        json::object b = before;
        auto& name = b["CustomerName"].as_object();
        if (chance(30)) name["FirstName"] = one_of({"Ann", "Bo", "Chen", "Dee"});
        if (chance(20)) name.contains("MiddleName") ? (void)name.erase("MiddleName") : (void)(name["MiddleName"] = "R");
        if (chance(25))
            b.contains("CustomerType") ? (void)b.erase("CustomerType") : (void)(b["CustomerType"] = "Retail");
        for (auto c : kCollections) {
            if (chance(10)) {
                b.erase(c);
                continue;
            }
            json::array out;
            if (auto* a = b.if_contains(c))
                for (auto& v : a->as_array()) {
                    auto e = v.as_object();
                    auto roll = below(100);
                    if (roll < 12) continue;  // dropped
                    if (roll < 22)
                        e = element(c, fresh_id());  // re-keyed
                    else if (roll < 45)
                        change_fields(c, e);  // changed in place
                    else if (roll < 55)
                        respell_key(c, e);  // same key, other text
                    out.push_back(std::move(e));
                }
            for (std::size_t n = below(3); n > 0; --n) out.push_back(element(c, fresh_id()));
            // An element we own but no longer send (deactivated, or removed) comes back.
            if (auto* o = owned.if_contains(c); o && chance(15))
                for (const auto& v : o->as_array())
                    if (!contains_key(out, c, v.as_object())) {
                        auto e = v.as_object();
                        e.erase("IsActive");
                        out.push_back(std::move(e));
                        break;
                    }
            for (const auto& [collection, e] : takeover)
                if (collection == c && chance(50) && !contains_key(out, c, e)) {
                    json::object mine = e;
                    mine.erase("IsDefault");
                    mine.erase("Foreign");
                    change_fields(c, mine);
                    out.push_back(std::move(mine));
                }
            if (!out.empty() || chance(50))
                b[c] = std::move(out);
            else
                b.erase(c);
        }
        return b;
    }

    // The profile as the API holds it once `body` was first sent: our body with foreign
    // data around and inside it.
    json::object profile_around(const json::object& body) {
        json::object p{{"ProfileId", 1000001},
                       {"UpdateStatus", "Complete"},
                       {"Edited", json::object{{"CreateDate", "2026-01-01T00:00:00Z"}}}};
        for (const auto& kv : body) p[kv.key()] = kv.value();
        if (chance(50)) p["DefaultLocale"] = "fr-FR";
        if (chance(30)) {
            auto& name = p["CustomerName"];
            if (!name.is_object()) name = json::object{};
            name.as_object()["Suffix"] = "Jr";
        }
        if (chance(40))
            p["Groups"] =
                json::array{json::object{{"GroupType", "Household"}, {"GroupName", "H" + std::to_string(fresh_id())}}};
        for (auto c : kCollections)
            if (auto* a = p.if_contains(c))
                for (auto& e : a->as_array()) foreign_inside(c, e.as_object());
        perturb(p, json::object{});
        return p;
    }

    // Someone else changed the profile: foreign elements inserted (also before ours) or
    // removed, foreign fields changed, a foreign container where we have none. What we own
    // stays: a view that is not a read cannot see our own data vanish (see the table tests).
    void perturb(json::object& p, const json::object& owned) {
        for (auto c : kCollections) {
            auto* a = p.if_contains(c);
            if (!a) {
                if (chance(15)) p[c] = json::array{foreign_element(c)};
                continue;
            }
            auto& arr = a->as_array();
            if (chance(40))
                arr.insert(arr.begin() + static_cast<std::ptrdiff_t>(below(arr.size() + 1)), foreign_element(c));
            if (chance(20))
                for (std::size_t i = 0; i < arr.size(); ++i)
                    if (arr[i].as_object().contains("Foreign") && !owns(owned, c, arr[i].as_object())) {
                        arr.erase(arr.begin() + static_cast<std::ptrdiff_t>(i));
                        break;
                    }
        }
        if (chance(30)) p["ReasonCode"] = one_of({"R1", "R2"});
    }

private:
    static constexpr std::array<std::string_view, 5> kCollections{"Emails", "PhoneNumbers", "Addresses", "CustomFields",
                                                                  "ProfileTags"};

    json::object foreign_element(std::string_view c) {
        auto e = element(c, 50000 + fresh_id());
        e["Foreign"] = true;  // marks it for perturb(); an unknown field is kept like any other
        return e;
    }
    void foreign_inside(std::string_view c, json::object& e) {
        if (c == "Emails" && chance(40)) e["IsDefault"] = true;
        if ((c == "Emails" || c == "PhoneNumbers") && chance(30))
            e["Consents"] = json::array{json::object{{"ConsentType", "Marketing"}, {"ConsentVersion", "v1"}}};
        if (c == "Addresses" && chance(30)) e["StateProvince"] = "IL";
    }
    void change_fields(std::string_view c, json::object& e) {
        if (c == "Emails") {
            e["EmailAddressType"] = one_of({"Personal", "Work", "Other"});
            if (chance(50))
                e["EmailPreferences"] = preferences();
            else if (auto* p = e.if_contains("EmailPreferences"); p && !p->as_array().empty() && chance(50))
                p->as_array()[0].as_object()["PreferenceStatus"] = one_of({"OptIn", "OptOut"});
        } else if (c == "PhoneNumbers") {
            e["PhoneType"] = one_of({"Home", "Mobile", "Work"});
        } else if (c == "Addresses") {
            e["AddressType"] = one_of({"Home", "Work", "Other"});
            if (chance(50)) e.erase("AddressPreferences");
        } else if (c == "CustomFields") {
            e["Value"] = one_of({"x", "y", "z", "w"});
        }
    }
    void respell_key(std::string_view c, json::object& e) {
        if (c == "Emails") {
            std::string a(e["EmailAddress"].as_string());
            a[0] = a[0] == 'u' ? 'U' : 'u';
            e["EmailAddress"] = a;
        } else if (c == "PhoneNumbers") {
            std::string digits;
            for (char ch : e["PhoneNumber"].as_string())
                if (ch >= '0' && ch <= '9') digits += ch;
            e["PhoneNumber"] = format_phone(digits);
        } else if (c == "Addresses") {
            std::string city(e["City"].as_string());
            for (auto& ch : city) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            e["City"] = city;
        }
    }
    static bool owns(const json::object& owned, std::string_view c, const json::object& e) {
        const auto* a = owned.if_contains(c);
        return a && contains_key(a->as_array(), c, e);
    }
    static bool contains_key(const json::array& a, std::string_view c, const json::object& e) {
        const auto& key = *natural_key(c);
        return std::any_of(a.begin(), a.end(), [&](const json::value& v) {
            return element_key(key, v.as_object()) == element_key(key, e);
        });
    }

    std::mt19937_64 rng_;
    int next_id_ = 1;
};

// --- checker --------------------------------------------------------------------------------

const json::value* member(const json::object* o, std::string_view name) {
    if (!o) return nullptr;
    const json::value* v = o->if_contains(name);
    return v && !v->is_null() ? v : nullptr;
}
const json::object* as_object(const json::value* v) {
    return v ? v->if_object() : nullptr;
}
bool same(const json::value* a, const json::value* b) {
    return (!a && !b) || (a && b && json_equal(*a, *b));
}

struct Checker {
    RemovedElements removed;
    std::vector<std::string> errors;

    void fail(const std::string& path, const std::string& what) { errors.push_back(path + ": " + what); }

    // `r` (the profile after the patch) against `s` (before), `o` (owned) and `d` (desired).
    void object(const std::string& path, const json::object* r, const json::object* s, const json::object* o,
                const json::object* d, const ObjectSchema* schema) {
        std::set<std::string> names;
        for (const auto* x : {r, s, o, d})
            if (x)
                for (const auto& kv : *x) names.insert(std::string(kv.key()));
        for (const auto& name : names) {
            const auto* f = schema ? schema->find(name) : nullptr;
            auto p = path + "/" + name;
            const json::value *rv = member(r, name), *sv = member(s, name), *ov = member(o, name),
                              *dv = member(d, name);
            if ((f && f->read_only) || (!ov && !dv)) {
                if (!same(rv, sv)) fail(p, "foreign or read-only field changed");
            } else if (f && f->type == FieldType::Array && natural_key(name)) {
                keyed(p, rv, sv, ov, dv, *natural_key(name), *f->element);
            } else if (f && f->type == FieldType::Object) {
                static const json::object empty;
                object(p, as_object(rv), as_object(sv), as_object(ov), dv ? as_object(dv) : &empty, f->element);
            } else if (dv ? !same(rv, dv) : rv != nullptr) {
                fail(p, dv ? "owned field differs from desired" : "field no longer desired is still there");
            }
        }
    }

    void keyed(const std::string& p, const json::value* rv, const json::value* sv, const json::value* ov,
               const json::value* dv, const NaturalKey& key, const ObjectSchema& element) {
        auto elements = [](const json::value* v) {
            std::vector<const json::object*> out;
            if (v && v->is_array())
                for (const auto& e : v->get_array()) out.push_back(&e.get_object());
            return out;
        };
        auto R = elements(rv), S = elements(sv), O = elements(ov), D = elements(dv);
        std::map<std::string, const json::object*> desired, owned;
        for (auto* e : D) desired.emplace(element_key(key, *e), e);
        for (auto* e : O) owned.emplace(element_key(key, *e), e);
        auto with_key = [&](const std::vector<const json::object*>& of, const std::string& k) {
            std::vector<const json::object*> out;
            for (auto* e : of)
                if (element_key(key, *e) == k) out.push_back(e);
            return out;
        };
        auto foreign = [&](const std::vector<const json::object*>& of) {
            std::vector<const json::object*> out;
            for (auto* e : of) {
                auto k = element_key(key, *e);
                if (!desired.contains(k) && !owned.contains(k)) out.push_back(e);
            }
            return out;
        };
        auto fr = foreign(R), fs = foreign(S);
        bool same_foreign = fr.size() == fs.size();
        for (std::size_t i = 0; same_foreign && i < fr.size(); ++i) same_foreign = json_equal(*fr[i], *fs[i]);
        if (!same_foreign) fail(p, "foreign elements changed");
        for (const auto& [k, d] : desired) {
            auto r = with_key(R, k), s = with_key(S, k);
            if (r.size() != 1) {
                fail(p + "[" + k + "]", "desired element appears " + std::to_string(r.size()) + " times");
                continue;
            }
            auto o = owned.find(k);
            object(p + "[" + k + "]", r[0], s.empty() ? nullptr : s[0], o == owned.end() ? nullptr : o->second, d,
                   &element);
        }
        for (const auto& [k, o] : owned) {
            if (desired.contains(k)) continue;
            auto r = with_key(R, k), s = with_key(S, k);
            bool deactivates = removed == RemovedElements::Deactivate && element.find("IsActive");
            if (!deactivates || s.empty()) {
                if (!r.empty()) fail(p + "[" + k + "]", "element no longer desired is still there");
                continue;
            }
            if (r.size() != 1) {
                fail(p + "[" + k + "]", "deactivated element appears " + std::to_string(r.size()) + " times");
                continue;
            }
            json::object rest_r = *r[0], rest_s = *s[0];
            auto* active = rest_r.if_contains("IsActive");
            if (!active || *active != false) fail(p + "[" + k + "]", "not deactivated");
            rest_r.erase("IsActive");
            rest_s.erase("IsActive");
            if (!json_equal(rest_r, rest_s)) fail(p + "[" + k + "]", "deactivation changed more than IsActive");
        }
    }
};

std::vector<std::string> mirrored(const json::object& result, const json::object& before, const json::object& owned,
                                  const json::object& desired, RemovedElements removed) {
    Checker c{removed, {}};
    c.object("", &result, &before, &owned, &desired, &api::profile_schema());
    return c.errors;
}

// --- the chains -----------------------------------------------------------------------------

enum class View { OwnedBody, StaleSnapshot, Fresh };

struct Tally {
    int syncs = 0, first_try = 0, guard_failures = 0, unappliable = 0, empty_patches = 0;
};

// Foreign elements of `view` the source may take over: the diff can see them.
std::vector<std::pair<std::string, json::object>> foreign_in(const json::object& view, const json::object& owned) {
    std::vector<std::pair<std::string, json::object>> out;
    for (auto c : {"Emails", "PhoneNumbers", "Addresses", "CustomFields", "ProfileTags"}) {
        auto* a = view.if_contains(c);
        if (!a) continue;
        const auto& key = *natural_key(c);
        std::set<std::string> mine;
        if (auto* o = owned.if_contains(c))
            for (const auto& e : o->as_array()) mine.insert(element_key(key, e.as_object()));
        for (const auto& e : a->as_array())
            if (!mine.contains(element_key(key, e.as_object()))) out.emplace_back(c, e.as_object());
    }
    return out;
}

void run_chain(std::uint64_t seed, RemovedElements removed, std::map<View, Tally>& tallies) {
    Gen g(seed);
    json::object owned;  // nothing sent yet
    json::object desired = g.body();
    json::object real = g.profile_around(json::object{});  // a profile that existed before us
    json::object snapshot = real;                          // what a previous read showed
    for (int step = 0; step < 6; ++step) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
        auto view_kind = static_cast<View>(g.below(3));
        const json::object& view = view_kind == View::OwnedBody       ? owned
                                   : view_kind == View::StaleSnapshot ? snapshot
                                                                      : real;
        std::vector<std::pair<std::string, json::object>> takeover;
        if (view_kind != View::OwnedBody) takeover = foreign_in(view, owned);
        // Now and then the source has not changed: the patch must then be empty, whatever
        // else happened to the profile.
        bool unchanged = step > 0 && g.chance(15);
        if (step > 0 && !unchanged) desired = g.mutate(desired, takeover, owned);
        DiffOptions options{.removed = removed,
                            .server = view_kind == View::Fresh ? ServerView::Read : ServerView::LastAccepted};
        auto& tally = tallies[view_kind];
        ++tally.syncs;

        auto patch = diff_profile(view, owned, desired, options);
        if (unchanged) {
            ASSERT_TRUE(patch.empty()) << json::serialize(patch);
        }
        json::value result = real;
        if (auto error = apply_patch(result, patch)) {
            ASSERT_NE(view_kind, View::Fresh) << error->message << "\n" << json::serialize(patch);
            ASSERT_NE(error->kind, PatchErrorKind::Invalid) << error->message;
            ASSERT_EQ(result, json::value(real)) << "a failed patch changed the profile";
            ++(error->kind == PatchErrorKind::TestFailed ? tally.guard_failures : tally.unappliable);
            // The engine reads the profile and sends again, once.
            patch = diff_profile(real, owned, desired, {.removed = removed, .server = ServerView::Read});
            auto retry = apply_patch(result, patch);
            ASSERT_FALSE(retry) << retry->message << "\n" << json::serialize(patch);
        } else {
            ++tally.first_try;
        }
        if (patch.empty()) ++tally.empty_patches;
        auto errors = mirrored(result.as_object(), real, owned, desired, removed);
        ASSERT_TRUE(errors.empty()) << errors.front() << "\nview: " << json::serialize(view)
                                    << "\nowned: " << json::serialize(owned)
                                    << "\ndesired: " << json::serialize(desired)
                                    << "\nbefore: " << json::serialize(real) << "\npatch: " << json::serialize(patch)
                                    << "\nafter: " << json::serialize(result);

        owned = owned_after(owned, desired, options);
        for (auto server_view : {ServerView::Read, ServerView::LastAccepted}) {
            auto again = diff_profile(result.as_object(), owned, desired, {.removed = removed, .server = server_view});
            ASSERT_TRUE(again.empty()) << "not converged: " << json::serialize(again);
        }
        snapshot = result.as_object();
        real = snapshot;
        g.perturb(real, owned);
    }
}

TEST(ProfileDiffProperty, MirrorChainsOnRandomProfilesNeverCorruptAndConverge) {
    constexpr int kChains = 400;
    for (auto removed : {RemovedElements::Remove, RemovedElements::Deactivate}) {
        std::map<View, Tally> tallies;
        for (int chain = 0; chain < kChains; ++chain) {
            run_chain(0x5eed0000u + static_cast<std::uint64_t>(chain), removed, tallies);
            if (HasFatalFailure()) return;
        }
        const char* names[] = {"own last body", "stale snapshot", "fresh read"};
        int syncs = 0;
        for (auto& [view, t] : tallies) {
            std::cout << (removed == RemovedElements::Remove ? "remove" : "deactivate") << ", view "
                      << names[static_cast<int>(view)] << ": " << t.syncs << " syncs, " << t.first_try
                      << " applied first time, " << t.guard_failures << " failed a guard, " << t.unappliable
                      << " unappliable (retried after a read), " << t.empty_patches << " empty\n";
            syncs += t.syncs;
        }
        EXPECT_EQ(syncs, kChains * 6);
        // Both outcomes must occur under stale views, or the test proves nothing about guards.
        for (auto view : {View::OwnedBody, View::StaleSnapshot}) {
            EXPECT_GT(tallies[view].first_try, 0);
            EXPECT_GT(tallies[view].guard_failures, 0);
        }
        EXPECT_EQ(tallies[View::Fresh].first_try, tallies[View::Fresh].syncs);
    }
}

}  // namespace
}  // namespace prefsync::patch
