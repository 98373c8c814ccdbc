#pragma once
// The natural keys of the Profile's collections: which fields identify an element of
// Emails, PhoneNumbers, ... so that two bodies can be compared element by element rather
// than by position. The diff of mirror mode matches elements by them; the table is the one
// the emulator's merge update documents (daemon/emulator/README.md, "Interpretations"), and
// a test holds the two to the same equivalence.
//
// Design constraints:
// - One table, keyed by the collection's field name, because a collection keeps its key
//   wherever it is nested (Consents on the profile and inside an Email; the four
//   *Preferences collections share one key).
// - Keys compare normalised (email addresses and names case-insensitively, phone numbers by
//   their digits), but guards send the element's exact stored text: the API's `test`
//   compares exactly.
// - An element whose key fields are all missing or empty has no key (""): it cannot be
//   identified by key, and callers decide what that means.
#include <boost/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace prefsync::patch {

enum class KeyMatch {
    Exact,            // byte for byte
    CaseInsensitive,  // ASCII letters folded, as the API's searches do
    Digits,           // only the digits count: "(555) 010-2000" is "5550102000"
};

struct KeyField {
    std::string_view name;
    KeyMatch match;
};

struct NaturalKey {
    std::string_view collection;       // the array field's name, e.g. "Emails"
    std::span<const KeyField> fields;  // in the order they are tested
};

// The key of `collection`'s elements; nullptr for a collection without one (compared by
// position, or as a whole).
const NaturalKey* natural_key(std::string_view collection);

// Every entry of the table, for documentation and tests.
std::span<const NaturalKey> natural_keys();

// `element`'s key, normalised: equal strings mean the same element. "" when every key field
// is missing or empty after normalisation. Non-string key fields count as missing.
std::string element_key(const NaturalKey& key, const boost::json::object& element);

}  // namespace prefsync::patch
