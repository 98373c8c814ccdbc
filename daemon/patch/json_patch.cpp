#include "daemon/patch/json_patch.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "daemon/patch/json_pointer.hpp"

namespace prefsync::patch {
namespace {

using Tokens = std::vector<std::string>;

struct Failure {
    PatchErrorKind kind;
    std::string message;
};
using Step = std::optional<Failure>;

Step invalid(std::string message) {
    return Failure{PatchErrorKind::Invalid, std::move(message)};
}
Step unappliable(std::string message) {
    return Failure{PatchErrorKind::Unappliable, std::move(message)};
}

std::string quoted(std::string_view s) {
    return "\"" + std::string(s) + "\"";
}

// The value `tokens` name in `doc`; nullptr when any step does not exist.
json::value* locate(json::value& doc, std::span<const std::string> tokens) {
    json::value* at = &doc;
    for (const auto& token : tokens) {
        if (auto* o = at->if_object()) {
            at = o->if_contains(token);
        } else if (auto* a = at->if_array()) {
            auto index = array_index(token, a->size(), IndexUse::Existing);
            at = index ? &(*a)[*index] : nullptr;
        } else {
            at = nullptr;
        }
        if (!at) return nullptr;
    }
    return at;
}

// The container holding the target of `tokens` (which must not be empty).
json::value* parent_of(json::value& doc, const Tokens& tokens) {
    return locate(doc, std::span(tokens).first(tokens.size() - 1));
}

Step add(json::value& doc, const Tokens& tokens, const json::value& value, std::string_view path) {
    if (tokens.empty()) {
        doc = value;
        return std::nullopt;
    }
    json::value* parent = parent_of(doc, tokens);
    if (!parent) return unappliable("path " + quoted(path) + ": the parent does not exist");
    if (auto* o = parent->if_object()) {
        (*o)[tokens.back()] = value;
        return std::nullopt;
    }
    if (auto* a = parent->if_array()) {
        auto index = array_index(tokens.back(), a->size(), IndexUse::Insert);
        if (!index) return unappliable("path " + quoted(path) + ": not an index within the array's bounds");
        a->insert(a->begin() + static_cast<std::ptrdiff_t>(*index), value);
        return std::nullopt;
    }
    return unappliable("path " + quoted(path) + ": the parent is neither an object nor an array");
}

Step remove(json::value& doc, const Tokens& tokens, std::string_view path) {
    if (tokens.empty()) return unappliable("the whole document cannot be removed");
    json::value* parent = parent_of(doc, tokens);
    if (auto* o = parent ? parent->if_object() : nullptr; o && o->erase(tokens.back()) == 1) return std::nullopt;
    if (auto* a = parent ? parent->if_array() : nullptr) {
        if (auto index = array_index(tokens.back(), a->size(), IndexUse::Existing)) {
            a->erase(a->begin() + static_cast<std::ptrdiff_t>(*index));
            return std::nullopt;
        }
    }
    return unappliable("path " + quoted(path) + " does not exist");
}

Step replace(json::value& doc, const Tokens& tokens, const json::value& value, std::string_view path) {
    json::value* target = locate(doc, tokens);
    if (!target) return unappliable("path " + quoted(path) + " does not exist");
    *target = value;
    return std::nullopt;
}

Step test(json::value& doc, const Tokens& tokens, const json::value& value, std::string_view path) {
    json::value* target = locate(doc, tokens);
    if (!target) return Failure{PatchErrorKind::TestFailed, "test failed at " + quoted(path) + ": no such location"};
    if (!json_equal(*target, value))
        return Failure{PatchErrorKind::TestFailed, "test failed at " + quoted(path) + ": the value differs"};
    return std::nullopt;
}

bool is_prefix(const Tokens& prefix, const Tokens& of) {
    return prefix.size() <= of.size() && std::equal(prefix.begin(), prefix.end(), of.begin());
}

// A member that must be a string, as a pointer; the failure names the member.
Step read_pointer(const json::object& op, std::string_view member, Tokens& tokens, std::string_view& text) {
    const json::value* v = op.if_contains(member);
    if (!v) return invalid("missing " + quoted(member));
    if (!v->is_string()) return invalid(quoted(member) + " must be a string");
    text = v->get_string();
    auto parsed = parse_pointer(text);
    if (!parsed) return invalid(quoted(member) + " is not a JSON Pointer: " + quoted(text));
    tokens = std::move(*parsed);
    return std::nullopt;
}

Step apply_one(json::value& doc, const json::value& operation, const ApplyOptions& options) {
    const json::object* op = operation.if_object();
    if (!op) return invalid("an operation must be an object");
    const json::value* name_v = op->if_contains("op");
    if (!name_v) return invalid("missing \"op\"");
    if (!name_v->is_string()) return invalid("\"op\" must be a string");
    std::string_view name = name_v->get_string();
    bool move = name == "move", copy = name == "copy";
    if (name != "add" && name != "remove" && name != "replace" && name != "test" && !move && !copy)
        return invalid("unknown op " + quoted(name));
    if ((move || copy) && !options.allow_move_copy)
        return invalid("op " + quoted(name) + " is not supported (add, remove, replace, test)");

    Tokens path;
    std::string_view path_text;
    if (auto e = read_pointer(*op, "path", path, path_text)) return e;
    if (move || copy) {
        Tokens from;
        std::string_view from_text;
        if (auto e = read_pointer(*op, "from", from, from_text)) return e;
        if (move && from != path && is_prefix(from, path))
            return invalid("cannot move " + quoted(from_text) + " into its own child " + quoted(path_text));
        json::value* source = locate(doc, from);
        if (!source) return unappliable("\"from\" location " + quoted(from_text) + " does not exist");
        if (move && from == path) return std::nullopt;
        json::value value = *source;
        if (move)
            if (auto e = remove(doc, from, from_text)) return e;
        return add(doc, path, value, path_text);
    }
    if (name == "remove") return remove(doc, path, path_text);
    const json::value* value = op->if_contains("value");
    if (!value) return invalid("op " + quoted(name) + " needs a \"value\"");
    if (name == "add") return add(doc, path, *value, path_text);
    if (name == "replace") return replace(doc, path, *value, path_text);
    return test(doc, path, *value, path_text);
}

// Integers compare exactly; a double equals an integer only when it holds that integer
// exactly (converting the integer to double would equate 2^53 + 1 with 2^53).
bool number_equal(const json::value& a, const json::value& b) {
    if (a.is_double() && b.is_double()) return a.get_double() == b.get_double();
    if (a.is_double() || b.is_double()) {
        double d = a.is_double() ? a.get_double() : b.get_double();
        const json::value& i = a.is_double() ? b : a;
        if (!std::isfinite(d) || std::trunc(d) != d) return false;
        if (i.is_int64())
            return d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
                   static_cast<std::int64_t>(d) == i.get_int64();
        return d >= 0 && d < 18446744073709551616.0 && static_cast<std::uint64_t>(d) == i.get_uint64();
    }
    if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
    if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
    std::int64_t s = a.is_int64() ? a.get_int64() : b.get_int64();
    std::uint64_t u = a.is_uint64() ? a.get_uint64() : b.get_uint64();
    return s >= 0 && static_cast<std::uint64_t>(s) == u;
}

}  // namespace

std::optional<PatchError> apply_patch(json::value& doc, const json::array& patch, const ApplyOptions& options) {
    // Atomicity by working on a copy: profiles are a few KB, and an undo log for six
    // operations would be more code to get wrong than the copy costs.
    json::value work = doc;
    for (std::size_t i = 0; i < patch.size(); ++i)
        if (auto failure = apply_one(work, patch[i], options))
            return PatchError{failure->kind, i, std::move(failure->message)};
    doc = std::move(work);
    return std::nullopt;
}

bool json_equal(const json::value& a, const json::value& b) {
    if (a.is_number() && b.is_number()) return number_equal(a, b);
    if (a.kind() != b.kind()) return false;
    if (const auto* aa = a.if_array()) {
        const auto& ba = b.get_array();
        if (aa->size() != ba.size()) return false;
        for (std::size_t i = 0; i < aa->size(); ++i)
            if (!json_equal((*aa)[i], ba[i])) return false;
        return true;
    }
    if (const auto* ao = a.if_object()) {
        const auto& bo = b.get_object();
        if (ao->size() != bo.size()) return false;
        for (const auto& kv : *ao) {
            const json::value* other = bo.if_contains(kv.key());
            if (!other || !json_equal(kv.value(), *other)) return false;
        }
        return true;
    }
    return a == b;
}

}  // namespace prefsync::patch
