#pragma once
// RFC 6901 JSON Pointers: parsing a pointer into reference tokens, escaping a token to build
// one, and reading an array index token.
//
// Design constraints:
// - Syntax only: parse_pointer never looks at a document, so a malformed pointer is told
//   apart from one that does not resolve in a given document.
// - "" is the whole document (no tokens); "/" is the member named "" (one empty token).
// - Array indices follow RFC 6901 §4 strictly: decimal digits, no leading zero, no sign or
//   exponent ("01", "-1" and "1e0" are not indices); "-" names the element after the last,
//   valid only where an element is being added.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::patch {

// The reference tokens of `pointer`, unescaped (~1 → '/', ~0 → '~'); nullopt when it is not
// a pointer (does not start with '/', or has a '~' not followed by '0' or '1').
std::optional<std::vector<std::string>> parse_pointer(std::string_view pointer);

// Appends "/" and `token` escaped (~ → ~0, / → ~1) to `pointer`.
void append_token(std::string& pointer, std::string_view token);
// `pointer` extended by an array index.
std::string append_index(std::string pointer, std::size_t index);

enum class IndexUse {
    Existing,  // remove, replace, test: an element that exists
    Insert,    // add: an existing position, or the end ("-" or the size)
};

// The array position `token` names in an array of `size` elements; nullopt when it is not an
// index or out of bounds for `use`.
std::optional<std::size_t> array_index(std::string_view token, std::size_t size, IndexUse use);

}  // namespace prefsync::patch
