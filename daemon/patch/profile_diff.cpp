#include "daemon/patch/profile_diff.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <vector>

#include "daemon/api/profile_schema.hpp"
#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/json_pointer.hpp"
#include "daemon/patch/natural_key.hpp"

namespace prefsync::patch {
namespace {

using api::FieldSchema;
using api::FieldType;
using api::ObjectSchema;

const json::object kEmpty;

json::object op(std::string_view name, std::string path) {
    return json::object{{"op", name}, {"path", std::move(path)}};
}
json::object op(std::string_view name, std::string path, json::value value) {
    auto o = op(name, std::move(path));
    o["value"] = std::move(value);
    return o;
}

std::string child(const std::string& path, std::string_view name) {
    std::string out = path;
    append_token(out, name);
    return out;
}

// A member that counts: present and not null (the API drops nulls).
const json::value* member(const json::object* o, std::string_view name) {
    if (!o) return nullptr;
    const json::value* v = o->if_contains(name);
    return v && !v->is_null() ? v : nullptr;
}

const FieldSchema* field_of(const ObjectSchema* schema, std::string_view name) {
    return schema ? schema->find(name) : nullptr;
}

// The key table entry and element schema of a keyed collection field; nullptr otherwise.
const NaturalKey* keyed(const FieldSchema* f) {
    return f && f->type == FieldType::Array && f->element ? natural_key(f->name) : nullptr;
}

// `body` as the diff reads it: nulls and read-only fields gone, at every level the schema
// describes (fields it does not know are kept as they are).
json::object clean(const json::object& body, const ObjectSchema* schema) {
    json::object out;
    for (const auto& kv : body) {
        if (kv.value().is_null()) continue;
        const FieldSchema* f = field_of(schema, kv.key());
        if (f && f->read_only) continue;
        if (f && f->element && f->type == FieldType::Object && kv.value().is_object()) {
            out.emplace(kv.key(), clean(kv.value().get_object(), f->element));
        } else if (f && f->element && f->type == FieldType::Array && kv.value().is_array()) {
            json::array a;
            for (const auto& e : kv.value().get_array())
                if (e.is_object())
                    a.push_back(clean(e.get_object(), f->element));
                else if (!e.is_null())
                    a.push_back(e);
            out.emplace(kv.key(), std::move(a));
        } else {
            out.emplace(kv.key(), kv.value());
        }
    }
    return out;
}

// A keyed collection of a client body (owned or desired), in body order: elements that
// share a key merged into the first (later fields win, as a merge update would store
// them); elements without a key kept once per distinct content.
struct Collection {
    struct Entry {
        std::string key;  // "" for an element without a key
        json::object element;
    };
    std::vector<Entry> entries;
    std::map<std::string, std::size_t, std::less<>> by_key;

    const json::object* find(const std::string& key) const {
        auto it = by_key.find(key);
        return it == by_key.end() ? nullptr : &entries[it->second].element;
    }
    bool contains_keyless(const json::object& element) const {
        return std::any_of(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.key.empty() && json_equal(e.element, element); });
    }
};

Collection collect(const json::value* array, const NaturalKey& key) {
    Collection c;
    const json::array* a = array ? array->if_array() : nullptr;
    if (!a) return c;
    for (const auto& v : *a) {
        const json::object* e = v.if_object();
        if (!e) continue;
        auto k = element_key(key, *e);
        if (k.empty()) {
            if (!c.contains_keyless(*e)) c.entries.push_back({std::move(k), *e});
        } else if (auto it = c.by_key.find(k); it != c.by_key.end()) {
            for (const auto& kv : *e) c.entries[it->second].element[kv.key()] = kv.value();
        } else {
            c.by_key.emplace(k, c.entries.size());
            c.entries.push_back({std::move(k), *e});
        }
    }
    return c;
}

json::array to_array(const Collection& c) {
    json::array a;
    for (const auto& e : c.entries) a.push_back(e.element);
    return a;
}

bool covers(const json::object& server, const json::object& element);

// Whether `server` is `sent` plus what the server wrote of its own, at any depth: the
// reference's profiles show `Edited` on nested elements (an email's Consents), and fields
// such as a preference's MatchType and LastModifiedDate; arrays element by element.
bool value_covers(const json::value& server, const json::value& sent) {
    if (const auto* o = sent.if_object()) {
        const auto* s = server.if_object();
        return s && covers(*s, *o);
    }
    if (const auto* a = sent.if_array()) {
        const auto* s = server.if_array();
        if (!s || s->size() != a->size()) return false;
        for (std::size_t i = 0; i < a->size(); ++i)
            if (!value_covers((*s)[i], (*a)[i])) return false;
        return true;
    }
    return json_equal(server, sent);
}

// True when every field of `element` is in `server` with an equal value: how an element
// without a key is recognised on the server, which may have added fields of its own.
bool covers(const json::object& server, const json::object& element) {
    return std::all_of(element.begin(), element.end(), [&](const json::key_value_pair& kv) {
        const json::value* s = server.if_contains(kv.key());
        return s && value_covers(*s, kv.value());
    });
}

class Differ {
public:
    Differ(const DiffOptions& options, std::vector<std::string>* guarded_appends)
        : options_(options), guarded_appends_(guarded_appends) {}

    // Ops making the owned fields of `server` equal `desired`, for the fields `owned` or
    // `desired` name.
    void object(const std::string& path, const json::object& server, const json::object* owned,
                const json::object& desired, const ObjectSchema* schema, json::array& out) const {
        std::vector<std::string_view> names;
        for (const auto& kv : desired)
            if (!kv.value().is_null()) names.push_back(kv.key());
        if (owned)
            for (const auto& kv : *owned)
                if (!kv.value().is_null() && !member(&desired, kv.key())) names.push_back(kv.key());
        for (auto name : names) {
            const FieldSchema* f = field_of(schema, name);
            if (f && f->read_only) continue;
            auto path_of_field = child(path, name);
            const json::value* s = member(&server, name);
            const json::value* o = member(owned, name);
            const json::value* d = member(&desired, name);
            if (const NaturalKey* key = keyed(f))
                keyed_field(path_of_field, s, o, d, *key, *f->element, out);
            else if (f && f->type == FieldType::Object && f->element)
                object_field(path_of_field, s, o, d, f->element, out);
            else
                whole_field(path_of_field, s, o, d, out);
        }
    }

private:
    // Whether something we take over that the server document already shows as desired is
    // verified with a `test`: a view that is not a read may be stale, and writing nothing on
    // its word would leave the field (or element) as someone else has since made it.
    bool verify_takeover() const { return options_.server == ServerView::LastAccepted; }

    void whole_field(const std::string& path, const json::value* s, const json::value* o, const json::value* d,
                     json::array& out) const {
        if (d) {
            if (!s)
                out.push_back(op("add", path, *d));
            else if (!json_equal(*s, *d))
                out.push_back(op("replace", path, *d));
            else if (!o && verify_takeover())
                out.push_back(op("test", path, *d));
        } else if (o && s) {
            out.push_back(op("remove", path));
        }
    }

    void object_field(const std::string& path, const json::value* s, const json::value* o, const json::value* d,
                      const ObjectSchema* schema, json::array& out) const {
        const json::object* so = s ? s->if_object() : nullptr;
        const json::object* oo = o ? o->if_object() : nullptr;
        const json::object* dobj = d ? d->if_object() : nullptr;
        if ((d && !dobj) || (s && !so) || (o && !oo)) return whole_field(path, s, o, d, out);
        if (!d && !so) return;  // nothing of ours left to take away
        if (so) return object(path, *so, oo, dobj ? *dobj : kEmpty, schema, out);
        if (options_.server == ServerView::Read) return whole_field(path, s, o, d, out);
        object(path, kEmpty, oo, *dobj, schema, out);
    }

    void keyed_field(const std::string& path, const json::value* s, const json::value* o, const json::value* d,
                     const NaturalKey& key, const ObjectSchema& element, json::array& out) const {
        const json::array* sa = s ? s->if_array() : nullptr;
        if ((d && !d->is_array()) || (s && !sa)) return whole_field(path, s, o, d, out);
        if (sa) return keyed_array(path, *sa, collect(o, key), collect(d, key), key, element, out);
        auto want = collect(d, key);
        if (want.entries.empty()) return;
        if (options_.server == ServerView::Read) {
            out.push_back(op("add", path, to_array(want)));
            return;
        }
        // An array we never saw that another client made may hold these elements already:
        // appended on our word they would be there twice (see keyed_array).
        out.push_back(op("test", path, json::array()));
        for (const auto& e : want.entries) out.push_back(op("add", path + "/-", e.element));
    }

    void keyed_array(const std::string& path, const json::array& server, const Collection& had, const Collection& want,
                     const NaturalKey& key, const ObjectSchema& element, json::array& out) const {
        const std::size_t first_op = out.size();
        // The server element each key names: its first, as a merge update would find it.
        std::map<std::string, std::size_t, std::less<>> at;
        std::vector<std::string> keys(server.size());
        for (std::size_t i = 0; i < server.size(); ++i)
            if (const auto* e = server[i].if_object()) {
                keys[i] = element_key(key, *e);
                if (!keys[i].empty()) at.emplace(keys[i], i);
            }
        bool deactivate = options_.removed == RemovedElements::Deactivate && element.find("IsActive");
        std::vector<std::pair<std::size_t, json::array>> removals;  // index, guard
        auto retire = [&](std::size_t i, json::array guard) {
            if (!deactivate) {
                removals.emplace_back(i, std::move(guard));
                return;
            }
            const auto& e = server[i].get_object();
            const json::value* active = e.if_contains("IsActive");
            if (active && active->is_bool() && !active->get_bool()) return;
            out.insert(out.end(), guard.begin(), guard.end());
            out.push_back(op(active ? "replace" : "add", child(append_index(path, i), "IsActive"), false));
        };

        // In place, in index order: changes to elements we keep, deactivations.
        for (std::size_t i = 0; i < server.size(); ++i) {
            if (keys[i].empty() || at.at(keys[i]) != i) continue;
            const auto& e = server[i].get_object();
            if (const json::object* d = want.find(keys[i])) {
                json::array ops;
                object(append_index(path, i), e, had.find(keys[i]), *d, &element, ops);
                if (ops.empty() && (had.find(keys[i]) || !verify_takeover())) continue;
                key_guard(path, i, e, key, out);
                out.insert(out.end(), ops.begin(), ops.end());
            } else if (had.find(keys[i])) {
                json::array guard;
                key_guard(path, i, e, key, guard);
                retire(i, std::move(guard));
            }
        }
        // Elements without a key: the same content is the same element.
        std::vector<bool> matched(server.size(), false);
        auto match = [&](const json::object& wanted) -> std::optional<std::size_t> {
            for (std::size_t i = 0; i < server.size(); ++i)
                if (!matched[i] && keys[i].empty() && server[i].is_object() && covers(server[i].get_object(), wanted)) {
                    matched[i] = true;
                    return i;
                }
            return std::nullopt;
        };
        // What we sent and no longer want first: the server element showing it is retired
        // even where it also covers a wanted element (one the source cleared a field of, at
        // any depth: matched to it, the clearing would be taken as done and never sent).
        for (const auto& h : had.entries) {
            if (!h.key.empty() || want.contains_keyless(h.element)) continue;
            if (auto i = match(h.element)) {
                json::array guard;
                content_guard(path, *i, server[*i].get_object(), h.element, guard);
                retire(*i, std::move(guard));
            }
        }
        std::vector<const json::object*> appends;
        for (const auto& w : want.entries) {
            if (!w.key.empty()) {
                if (!at.contains(w.key)) appends.push_back(&w.element);
            } else if (auto i = match(w.element)) {
                if (verify_takeover() && !had.contains_keyless(w.element))
                    content_guard(path, *i, server[*i].get_object(), w.element, out);
            } else {
                appends.push_back(&w.element);
            }
        }
        // Removals, highest index first, each with its guard.
        std::sort(removals.begin(), removals.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (auto& [i, guard] : removals) {
            out.insert(out.end(), guard.begin(), guard.end());
            out.push_back(op("remove", append_index(path, i)));
        }
        // An append is the one write no index guard covers: another client may have added an
        // element with the same key since our last accepted body, and "/-" would add it a
        // second time (the reference does not say the API refuses duplicates). A view that is
        // not a read tests the whole array first: anything it does not know fails the patch
        // and the engine reads the profile and diffs again, matching by key.
        if (!appends.empty() && verify_takeover()) {
            out.insert(out.begin() + static_cast<std::ptrdiff_t>(first_op), op("test", path, server));
            if (guarded_appends_) guarded_appends_->push_back(path);
        }
        for (const auto* a : appends) out.push_back(op("add", path + "/-", *a));
    }

    // The guard of an element without a key: `test` of every field we sent, with the value
    // the server document shows (it covers what we sent: after a read, with the server's own
    // fields in nested elements, which a test of what we sent would fail).
    static void content_guard(const std::string& path, std::size_t i, const json::object& server,
                              const json::object& sent, json::array& out) {
        for (const auto& kv : sent)
            out.push_back(op("test", child(append_index(path, i), kv.key()), server.at(kv.key())));
    }

    // `test` of each key field the server element has, with its exact text.
    static void key_guard(const std::string& path, std::size_t i, const json::object& e, const NaturalKey& key,
                          json::array& out) {
        for (const auto& f : key.fields)
            if (const json::value* v = e.if_contains(f.name); v && v->is_string())
                out.push_back(op("test", child(append_index(path, i), f.name), *v));
    }

    const DiffOptions& options_;
    std::vector<std::string>* guarded_appends_;
};

// Sorts `a` (stable) by where each element is in `server`: by key, or for an element without
// one by content; elements the server does not have go last, in their order.
void order_like(json::array& a, const json::array& server, const NaturalKey& key) {
    std::vector<bool> used(server.size(), false);
    std::vector<std::pair<std::size_t, json::value>> placed;
    for (auto& v : a) {
        std::size_t at = server.size();
        if (const auto* e = v.if_object()) {
            auto k = element_key(key, *e);
            for (std::size_t i = 0; i < server.size() && at == server.size(); ++i) {
                const auto* s = server[i].if_object();
                if (!s || used[i]) continue;
                if (k.empty() ? covers(*s, *e) : element_key(key, *s) == k) at = i;
            }
            if (at < server.size()) used[at] = true;
        }
        placed.emplace_back(at, std::move(v));
    }
    std::stable_sort(placed.begin(), placed.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    a.clear();
    for (auto& p : placed) a.push_back(std::move(p.second));
}

// owned_after for one object: `desired` with each keyed collection normalised and, when
// deactivating, the owned elements we deactivated kept with IsActive false.
json::object owned_object(const json::object* owned, const json::object& desired, const ObjectSchema* schema,
                          const DiffOptions& options, const json::object* server = nullptr) {
    json::object out = desired;
    if (!schema) return out;
    for (const auto& f : schema->fields) {
        const NaturalKey* key = keyed(&f);
        const json::value* d = member(&desired, f.name);
        const json::value* o = member(owned, f.name);
        if (key && (d || o) && (!d || d->is_array())) {
            auto want = collect(d, *key), had = collect(o, *key);
            // In the order the server holds them after the patch: what we had where it was
            // (changed, or deactivated, in place; removed elements gone), then what is new,
            // appended. The next patch's index guards are computed against this order.
            bool deactivate = options.removed == RemovedElements::Deactivate && f.element->find("IsActive");
            json::array a;
            for (const auto& h : had.entries) {
                const json::object* w = nullptr;
                if (!h.key.empty())
                    w = want.find(h.key);
                else if (want.contains_keyless(h.element))
                    w = &h.element;
                if (w) {
                    a.push_back(owned_object(h.key.empty() ? nullptr : &h.element, *w, f.element, options));
                } else if (deactivate) {
                    json::object stub = h.element;
                    stub["IsActive"] = false;
                    a.push_back(std::move(stub));
                }
            }
            for (const auto& w : want.entries) {
                bool had_it = w.key.empty() ? had.contains_keyless(w.element) : had.find(w.key) != nullptr;
                if (!had_it) a.push_back(owned_object(nullptr, w.element, f.element, options));
            }
            // Planned from a read: the order the server showed (a journal written before the
            // order was kept, or others' elements among ours), what is new still last.
            if (const json::value* sv = member(server, f.name); sv && sv->is_array() && a.size() > 1)
                order_like(a, sv->get_array(), *key);
            if (d || !a.empty()) out[f.name] = std::move(a);
        } else if (f.type == FieldType::Object && f.element && d && d->is_object()) {
            const json::value* oo = o && o->is_object() ? o : nullptr;
            out[f.name] = owned_object(oo ? &oo->get_object() : nullptr, d->get_object(), f.element, options);
        }
    }
    return out;
}

void generic(const std::string& path, const json::value& from, const json::value& to, json::array& out) {
    const auto* fo = from.if_object();
    const auto* to_o = to.if_object();
    if (fo && to_o) {
        for (const auto& kv : *fo)
            if (!to_o->contains(kv.key())) out.push_back(op("remove", child(path, kv.key())));
        for (const auto& kv : *to_o) {
            if (const json::value* f = fo->if_contains(kv.key()))
                generic(child(path, kv.key()), *f, kv.value(), out);
            else
                out.push_back(op("add", child(path, kv.key()), kv.value()));
        }
        return;
    }
    const auto* fa = from.if_array();
    const auto* ta = to.if_array();
    if (fa && ta) {
        std::size_t common = std::min(fa->size(), ta->size());
        for (std::size_t i = 0; i < common; ++i) generic(append_index(path, i), (*fa)[i], (*ta)[i], out);
        for (std::size_t i = fa->size(); i-- > common;) out.push_back(op("remove", append_index(path, i)));
        for (std::size_t i = common; i < ta->size(); ++i) out.push_back(op("add", path + "/-", (*ta)[i]));
        return;
    }
    if (!json_equal(from, to)) out.push_back(op("replace", path, to));
}

}  // namespace

json::array diff_profile(const json::object& server, const json::object& owned_before, const json::object& desired,
                         const DiffOptions& options, std::vector<std::string>* guarded_appends) {
    const auto& schema = api::profile_schema();
    auto owned = clean(owned_before, &schema);
    auto wanted = clean(desired, &schema);
    json::array out;
    Differ(options, guarded_appends).object("", server, &owned, wanted, &schema, out);
    return out;
}

json::object owned_after(const json::object& owned_before, const json::object& desired, const DiffOptions& options,
                         const json::object* server) {
    const auto& schema = api::profile_schema();
    auto owned = clean(owned_before, &schema);
    return owned_object(&owned, clean(desired, &schema), &schema, options, server);
}

std::string compact_body(const json::object& body) {
    return json::serialize(owned_after(json::object{}, body));
}

json::array diff_values(const json::value& from, const json::value& to) {
    json::array out;
    generic("", from, to, out);
    return out;
}

}  // namespace prefsync::patch
