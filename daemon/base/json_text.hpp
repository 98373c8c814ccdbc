#pragma once
// Writing JSON text directly (the hot paths build bodies and reports without a DOM).
#include <string>
#include <string_view>

namespace prefsync::base {

// Appends `s` as a JSON string literal (UTF-8 as is; quotes, backslashes, controls escaped).
void append_json_string(std::string& out, std::string_view s);

// `s` as a JSON string literal.
inline std::string json_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

}  // namespace prefsync::base
