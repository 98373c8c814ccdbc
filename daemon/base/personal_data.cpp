#include "daemon/base/personal_data.hpp"

#include <algorithm>

namespace prefsync::base {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Part of a word: ASCII letters and digits, and any byte of a non-ASCII character.
bool is_word(char c) {
    return is_alnum(c) || static_cast<unsigned char>(c) >= 0x80;
}
bool is_local_part(char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\'';
}
bool is_phone_separator(char c) {
    return c == '+' || c == '-' || c == '(' || c == ')' || c == '.' || c == ' ';
}

// "2026-01-31..." is a date, whatever else the run holds.
bool date_like(std::string_view s) {
    return s.size() >= 10 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) && s[4] == '-' &&
           is_digit(s[5]) && is_digit(s[6]) && s[7] == '-' && is_digit(s[8]) && is_digit(s[9]);
}

// Whatever precedes an '@' is a mailbox name, whether or not a valid domain follows: a
// malformed address ("jane@@example", "jane@localhost") names a person all the same.
std::string mask_emails(std::string_view s) {
    std::string out;
    std::size_t copied = 0;
    for (std::size_t at = s.find('@'); at != std::string_view::npos; at = s.find('@', at + 1)) {
        std::size_t start = at;
        while (start > copied && is_local_part(s[start - 1])) --start;
        if (start == at) continue;
        out.append(s.substr(copied, start - copied));
        out += s[start];
        out += "***";
        copied = at;
    }
    out.append(s.substr(copied));
    return out;
}

std::string mask_phones(std::string_view s) {
    std::string out;
    std::size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        bool may_start = is_digit(c) || c == '+' || c == '(';
        if (!may_start || (i > 0 && is_word(s[i - 1]))) {
            out += c;
            ++i;
            continue;
        }
        std::size_t end = i;
        while (end < s.size() && (is_digit(s[end]) || is_phone_separator(s[end]))) ++end;
        while (end > i && !is_digit(s[end - 1])) --end;
        auto run = s.substr(i, end - i);
        std::string digits;
        for (char d : run)
            if (is_digit(d)) digits += d;
        bool alone = end == s.size() || !is_word(s[end]);
        if (alone && digits.size() >= 7 && digits.size() <= 15 && !date_like(run)) {
            out += "***";
            out += digits.substr(digits.size() - 4);
            i = end;
            continue;
        }
        out += c;
        ++i;
    }
    return out;
}

std::string mask_span(std::string_view s) {
    return mask_phones(mask_emails(s));
}

}  // namespace

std::string mask_personal_data(std::string_view text) {
    auto first = text.find_first_not_of(" \t\r\n");
    bool json = first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
    if (!json) return mask_span(text);
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] != '"') {
            out += text[i++];
            continue;
        }
        std::size_t end = i + 1;
        while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
        end = std::min(end, text.size());
        out += '"';
        out += mask_span(text.substr(i + 1, end - i - 1));
        if (end < text.size()) out += '"';
        i = end + 1;
    }
    return out;
}

}  // namespace prefsync::base
