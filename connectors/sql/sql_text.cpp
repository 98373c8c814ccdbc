#include "connectors/sql/sql_text.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>

#include "connectors/source.hpp"
#include "daemon/base/text.hpp"

namespace prefsync::connectors::sql {

std::string real_text(double v) {
    char buf[400];  // the longest fixed form of a double (DBL_MAX, or a subnormal) fits
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    if (ec != std::errc()) end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
}

std::string quote_identifier(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + '"';
}

std::string quote_table(std::string_view dotted_name) {
    std::string out;
    std::size_t start = 0;
    while (true) {
        auto dot = dotted_name.find('.', start);
        if (!out.empty()) out += '.';
        out += quote_identifier(dotted_name.substr(start, dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return out;
}

std::string relation(const SqlReadConfig& config) {
    if (!config.table.empty()) return quote_table(config.table);
    std::string query = config.query;
    // A query copied from a console often ends with ';', which a subquery cannot have.
    while (!query.empty() && (query.back() == ';' || std::isspace(static_cast<unsigned char>(query.back()))))
        query.pop_back();
    return "(" + query + "\n) AS prefsync_source";
}

std::string select_rows(const SqlReadConfig& config, std::string_view lower_bound) {
    std::string sql = "SELECT * FROM " + relation(config);
    if (!config.incremental) return sql;
    auto column = quote_identifier(config.incremental->column);
    if (!lower_bound.empty()) sql += " WHERE " + column + " IS NULL OR " + column + " >= " + std::string(lower_bound);
    return sql + " ORDER BY " + column + ", " + quote_identifier(config.incremental->key);
}

std::optional<IncrementalColumns> find_incremental_columns(const SqlReadConfig& config,
                                                           const std::vector<std::string>& columns,
                                                           const std::string& source_name) {
    if (!config.incremental) return std::nullopt;
    auto find = [&](const std::string& name, const char* key) {
        for (std::size_t i = 0; i < columns.size(); ++i)
            if (columns[i] == name) return i;
        std::vector<std::string_view> names(columns.begin(), columns.end());
        auto hint = base::suggest(name, names);
        std::string all;
        for (const auto& c : columns) all += (all.empty() ? "" : ", ") + c;
        throw SourceError(config.incremental->key_path + "." + key + ": " + source_name + " has no column \"" + name +
                          "\"" + (hint.empty() ? " (its columns: " + all + ")" : " (did you mean \"" + hint + "\"?)"));
    };
    return IncrementalColumns{find(config.incremental->column, "column"), find(config.incremental->key, "key")};
}

std::string row_origin(const std::string& source_name, const std::optional<IncrementalColumns>& inc,
                       const std::vector<std::string>& columns, const std::optional<std::string>& key_value,
                       std::size_t row_number) {
    if (inc && key_value) return source_name + " " + columns[inc->key] + "=" + *key_value;
    return source_name + " row " + std::to_string(row_number);
}

namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<std::string> minus_overlap(std::string_view value, config::Duration overlap) {
    using namespace std::chrono;
    if (overlap.count() == 0) return std::string(value);
    // A plain number: epoch seconds (or any counter) less the overlap in seconds.
    double number = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec == std::errc() && end == value.data() + value.size()) {
        double shifted = number - static_cast<double>(overlap.count()) / 1000.0;
        char buf[64];
        auto [p, e] = std::to_chars(buf, buf + sizeof buf, shifted);
        return std::string(buf, p);
    }
    // YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][suffix]; the suffix (Z, +02:00) is kept as is.
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!digits(value, 0, 4, y) || value.size() < 10 || value[4] != '-' || !digits(value, 5, 2, mo) ||
        value[7] != '-' || !digits(value, 8, 2, d))
        return std::nullopt;
    std::size_t pos = 10;
    char sep = 'T';
    bool has_time = false, has_seconds = false;
    if (pos < value.size() && (value[pos] == 'T' || value[pos] == ' ') && digits(value, pos + 1, 2, h) &&
        pos + 3 < value.size() && value[pos + 3] == ':' && digits(value, pos + 4, 2, mi)) {
        sep = value[pos];
        has_time = true;
        pos += 6;
        if (pos < value.size() && value[pos] == ':' && digits(value, pos + 1, 2, sec)) {
            has_seconds = true;
            pos += 3;
        }
    }
    std::string_view fraction;
    if (has_seconds && pos < value.size() && value[pos] == '.') {
        auto start = pos;
        ++pos;
        while (pos < value.size() && value[pos] >= '0' && value[pos] <= '9') ++pos;
        fraction = value.substr(start, pos - start);
    }
    auto suffix = value.substr(pos);
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    auto t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec);
    // Round the overlap up to whole seconds (days for a date): re-reading more is harmless.
    t -= has_time ? ceil<seconds>(overlap) : duration_cast<seconds>(ceil<days>(overlap));
    auto day_part = floor<days>(t);
    year_month_day out{day_part};
    hh_mm_ss<seconds> clock{t - day_part};
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(out.year()),
                          static_cast<unsigned>(out.month()), static_cast<unsigned>(out.day()));
    std::string result(buf, static_cast<std::size_t>(n));
    if (!has_time) return result + std::string(suffix);
    n = std::snprintf(buf, sizeof buf, "%c%02lld:%02lld", sep, static_cast<long long>(clock.hours().count()),
                      static_cast<long long>(clock.minutes().count()));
    result.append(buf, static_cast<std::size_t>(n));
    if (has_seconds) {
        n = std::snprintf(buf, sizeof buf, ":%02lld", static_cast<long long>(clock.seconds().count()));
        result.append(buf, static_cast<std::size_t>(n));
    }
    return result + std::string(fraction) + std::string(suffix);
}

}  // namespace prefsync::connectors::sql
