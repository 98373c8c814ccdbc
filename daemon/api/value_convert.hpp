#pragma once
// Text → typed values, cleaning and date reformatting: the pure functions the mapping
// applies to every cell, over the API's field types.
//
// Design constraints:
// - Pure functions of their arguments (no locale, no state), so config can check a mapping's
//   constants at load time with exactly the conversion the mapping applies to every cell.
// - They live in api, below both config and mapping: the two share them without either
//   reaching into the other.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/api/profile_schema.hpp"

namespace prefsync::api {

// true/false, yes/no, y/n, t/f, 1/0, on/off (case-insensitive).
std::optional<bool> parse_bool(std::string_view text);
// Optional sign and decimal digits, within int64.
std::optional<std::int64_t> parse_int(std::string_view text);
// "" when `text` converts to `target`, else a message naming what was expected.
std::string check_convertible(std::string_view text, api::FieldType target);

// Without leading and trailing ASCII white space (space, tab, CR, LF, FF, VT). Inline: the
// mapper trims most cells it reads (twenty a row in the example), and most have none.
inline std::string_view trim(std::string_view text) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; };
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    return text;
}
void to_lower_ascii(std::string& text);
void to_upper_ascii(std::string& text);
void keep_digits(std::string& text);
void collapse_spaces(std::string& text);

// Reads `text` by `in` (directives %Y %y %m %d %H %M %S, other characters literal) and writes
// it by `out`. Checks the calendar (no 31 April, 29 February only in leap years).
std::optional<std::string> reformat_date(std::string_view text, std::string_view in, std::string_view out);

}  // namespace prefsync::api
