#include "daemon/api/value_convert.hpp"

#include <algorithm>
#include <charconv>

namespace prefsync::api {

namespace {
bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] + 32) : a[i];
        if (x != b[i]) return false;
    }
    return true;
}
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}
}  // namespace

std::optional<bool> parse_bool(std::string_view t) {
    for (auto yes : {"true", "yes", "y", "t", "1", "on"})
        if (iequals(t, yes)) return true;
    for (auto no : {"false", "no", "n", "f", "0", "off"})
        if (iequals(t, no)) return false;
    return std::nullopt;
}

std::optional<std::int64_t> parse_int(std::string_view t) {
    // from_chars takes a '-' but not a '+'; one sign, not "+-5".
    if (t.size() > 1 && t[0] == '+' && t[1] != '-') t.remove_prefix(1);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return std::nullopt;
    return v;
}

std::string check_convertible(std::string_view text, api::FieldType target) {
    switch (target) {
        case api::FieldType::Bool:
            if (parse_bool(text)) return {};
            return "expected a boolean (true/false, yes/no, y/n, 1/0), got \"" + std::string(text) + "\"";
        case api::FieldType::Int:
            if (parse_int(text)) return {};
            return "expected a whole number, got \"" + std::string(text) + "\"";
        default: return {};
    }
}

void to_lower_ascii(std::string& t) {
    for (auto& c : t)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
}

void to_upper_ascii(std::string& t) {
    for (auto& c : t)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
}

void keep_digits(std::string& t) {
    std::erase_if(t, [](char c) { return c < '0' || c > '9'; });
}

void collapse_spaces(std::string& t) {
    std::string out;
    out.reserve(t.size());
    bool in_space = false;
    for (char c : t) {
        if (is_space(c)) {
            in_space = true;
            continue;
        }
        if (in_space && !out.empty()) out += ' ';
        in_space = false;
        out += c;
    }
    t = std::move(out);
}

std::optional<std::string> reformat_date(std::string_view text, std::string_view in, std::string_view out) {
    int year = -1, month = 1, day = 1, hour = 0, minute = 0, second = 0;
    std::size_t pos = 0;
    auto read_number = [&](int max_digits, int& value) {
        std::size_t start = pos;
        value = 0;
        while (pos < text.size() && pos - start < static_cast<std::size_t>(max_digits) && text[pos] >= '0' &&
               text[pos] <= '9')
            value = value * 10 + (text[pos++] - '0');
        return pos > start;
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%' || i + 1 >= in.size()) {
            if (pos >= text.size() || text[pos] != in[i]) return std::nullopt;
            ++pos;
            continue;
        }
        bool ok = true;
        switch (in[++i]) {
            case 'Y': ok = read_number(4, year); break;
            case 'y':
                ok = read_number(2, year);
                if (ok) year += year < 70 ? 2000 : 1900;
                break;
            case 'm': ok = read_number(2, month); break;
            case 'd': ok = read_number(2, day); break;
            case 'H': ok = read_number(2, hour); break;
            case 'M': ok = read_number(2, minute); break;
            case 'S': ok = read_number(2, second); break;
            case '%': ok = pos < text.size() && text[pos++] == '%'; break;
            default: return std::nullopt;
        }
        if (!ok) return std::nullopt;
    }
    if (pos != text.size() || year < 0) return std::nullopt;
    static constexpr int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12) return std::nullopt;
    int max_day = days_in_month[month - 1] + (month == 2 && leap ? 1 : 0);
    if (day < 1 || day > max_day || hour > 23 || minute > 59 || second > 60) return std::nullopt;

    std::string result;
    result.reserve(out.size() + 8);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] != '%' || i + 1 >= out.size()) {
            result += out[i];
            continue;
        }
        int value = 0, width = 2;
        switch (out[++i]) {
            case 'Y': value = year, width = 4; break;
            case 'y': value = year % 100; break;
            case 'm': value = month; break;
            case 'd': value = day; break;
            case 'H': value = hour; break;
            case 'M': value = minute; break;
            case 'S': value = second; break;
            default: result += out[i]; continue;
        }
        // Zero-padded to `width` (every value here is ≥ 0): snprintf parsed its format for
        // each field, a few per row of a date column.
        char digits[12];
        auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
        result.append(static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, width - (end - digits))), '0');
        result.append(digits, end);
    }
    return result;
}

}  // namespace prefsync::api
