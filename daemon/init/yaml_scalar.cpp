#include "daemon/init/yaml_scalar.hpp"

#include <array>
#include <cstdio>

namespace prefsync::init {
namespace {

bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
        if (x != b[i]) return false;
    }
    return true;
}

// Words some YAML reader resolves to something other than a string (YAML 1.1 booleans and
// null, YAML 1.2 core specials). yaml-cpp itself returns the text either way, but a file a
// user edits is read by other tools and by people too.
bool reserved_word(std::string_view t) {
    static constexpr std::array words{"true", "false", "yes", "no", "y", "n", "on", "off", "null",
                                      "nan", "inf", ".nan", ".inf", "-.inf", "+.inf", "~"};
    for (auto w : words)
        if (ascii_iequals(t, w)) return true;
    return false;
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A deliberately narrow plain-scalar alphabet: an identifier that starts with a letter or
// underscore. Everything else is quoted, which is always correct, merely less pretty.
bool plain_safe(std::string_view t) {
    if (t.empty() || reserved_word(t)) return false;
    if (!is_letter(t[0]) && t[0] != '_') return false;
    for (char c : t)
        if (!is_letter(c) && !is_digit(c) && c != '_' && c != '-' && c != '.' && c != '/') return false;
    return true;
}

}  // namespace

std::string quoted(std::string_view t) {
    std::string out = "\"";
    for (std::size_t i = 0; i < t.size(); ++i) {
        auto c = static_cast<unsigned char>(t[i]);
        switch (c) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\t': out += "\\t"; continue;
            case '\r': out += "\\r"; continue;
            default: break;
        }
        if (c < 0x20 || c == 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            out += buf;
            continue;
        }
        // U+0085, U+2028, U+2029 are line breaks to a YAML reader even inside quotes, and
        // U+FEFF is a byte order mark: escaped so the scalar stays on its line and intact.
        std::string_view rest = t.substr(i);
        const char* escape = nullptr;
        std::size_t length = 0;
        if (rest.starts_with("\xC2\x85")) escape = "\\u0085", length = 2;
        else if (rest.starts_with("\xE2\x80\xA8")) escape = "\\u2028", length = 3;
        else if (rest.starts_with("\xE2\x80\xA9")) escape = "\\u2029", length = 3;
        else if (rest.starts_with("\xEF\xBB\xBF")) escape = "\\uFEFF", length = 3;
        if (escape) {
            out += escape;
            i += length - 1;
            continue;
        }
        out += static_cast<char>(c);
    }
    return out + "\"";
}

std::string yaml_scalar(std::string_view t) { return plain_safe(t) ? std::string(t) : quoted(t); }

std::string config_value(std::string_view t) {
    std::string escaped;
    for (char c : t) {
        if (c == '$') escaped += '$';
        escaped += c;
    }
    return yaml_scalar(escaped);
}

}  // namespace prefsync::init
