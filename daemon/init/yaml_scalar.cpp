#include "daemon/init/yaml_scalar.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <utility>

#include "daemon/base/json_text.hpp"
#include "daemon/api/value_convert.hpp"

namespace prefsync::init {
namespace {

// Words some YAML reader resolves to something other than a string (YAML 1.1 booleans and
// null, YAML 1.2 core specials). yaml-cpp itself returns the text either way, but a file a
// user edits is read by other tools and by people too.
bool reserved_word(std::string_view t) {
    static constexpr std::array<std::string_view, 16> words{"true", "false", "yes",   "no",  "y",   "n",
                                                            "on",   "off",   "null",  "nan", "inf", ".nan",
                                                            ".inf", "-.inf", "+.inf", "~"};
    std::string lower(t);
    api::to_lower_ascii(lower);
    return std::find(words.begin(), words.end(), lower) != words.end();
}

bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

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
    // A JSON string literal is a YAML double-quoted scalar. On top of JSON's escapes: U+0085,
    // U+2028 and U+2029 are line breaks to a YAML 1.1 reader even inside quotes, U+FEFF is a
    // byte order mark, DEL is not printable; escaped, the scalar stays on its line and intact.
    static constexpr std::pair<std::string_view, std::string_view> kExtra[]{{"\xC2\x85", "\\u0085"},
                                                                            {"\xE2\x80\xA8", "\\u2028"},
                                                                            {"\xE2\x80\xA9", "\\u2029"},
                                                                            {"\xEF\xBB\xBF", "\\uFEFF"},
                                                                            {"\x7F", "\\u007F"}};
    std::string json = base::json_string(t), out;
    for (std::size_t i = 0; i < json.size(); ++i) {
        auto rest = std::string_view(json).substr(i);
        auto extra =
            std::find_if(std::begin(kExtra), std::end(kExtra), [&](auto& e) { return rest.starts_with(e.first); });
        if (extra == std::end(kExtra)) {
            out += json[i];
            continue;
        }
        out += extra->second;
        i += extra->first.size() - 1;
    }
    return out;
}

std::string yaml_scalar(std::string_view t) {
    return plain_safe(t) ? std::string(t) : quoted(t);
}

std::string config_value(std::string_view t) {
    std::string escaped;
    for (char c : t) {
        if (c == '$') escaped += '$';
        escaped += c;
    }
    return yaml_scalar(escaped);
}

}  // namespace prefsync::init
