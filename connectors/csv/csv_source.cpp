#include "connectors/csv/csv_source.hpp"

#include <simdjson.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace prefsync::connectors {
namespace {

std::unique_ptr<std::istream> open_file(const std::string& path) {
    auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*in) throw SourceError("cannot open " + path + ": " + std::strerror(errno));
    return in;
}

bool valid_utf8(const std::string& s) {
    return simdjson::validate_utf8(s.data(), s.size());
}

}  // namespace

CsvSource::CsvSource(const CsvSourceConfig& config) : CsvSource(open_file(config.path), config.path, config) {}

CsvSource::CsvSource(std::unique_ptr<std::istream> in, std::string name, const CsvSourceConfig& config)
    : in_(std::move(in)), name_(std::move(name)), reader_(*in_, CsvOptions{config.delimiter, config.max_record_bytes}) {
    read_header(config);
}

void CsvSource::read_header(const CsvSourceConfig& config) {
    if (!config.header) {
        columns_ = config.columns;
        return;
    }
    if (!reader_.next(record_)) throw SourceError(name_ + ": the file is empty (no header row)");
    auto where = origin(record_.line);
    if (!record_.error.empty()) throw SourceError(where + ": header row: " + record_.error);
    if (!valid_utf8(record_.raw)) throw SourceError(where + ": header row is not valid UTF-8");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < record_.field_count; ++i) {
        std::string name = record_.fields[i];
        // Headers written by hand often carry stray spaces; columns are named without them.
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.erase(0, 1);
        if (name.empty()) throw SourceError(where + ": header column " + std::to_string(i + 1) + " has no name");
        if (!seen.insert(name).second) throw SourceError(where + ": header names column \"" + name + "\" twice");
        columns_.push_back(std::move(name));
    }
}

bool CsvSource::next_batch(std::vector<Row>& rows, std::size_t max_rows) {
    rows.clear();
    while (rows.size() < max_rows && reader_.next(record_)) {
        Row& row = rows.emplace_back();
        row.origin = origin(record_.line);
        row.raw = record_.raw;
        if (!record_.error.empty()) {
            row.error = record_.error;
            if (record_.error_field > 0 && record_.error_field <= columns_.size())
                row.error += " (column \"" + columns_[record_.error_field - 1] + "\")";
            continue;
        }
        if (record_.field_count != columns_.size()) {
            row.error = "wrong number of fields: expected " + std::to_string(columns_.size()) + ", got " +
                        std::to_string(record_.field_count);
            continue;
        }
        if (!valid_utf8(record_.raw)) {
            std::size_t bad = 0;
            while (bad + 1 < record_.field_count && valid_utf8(record_.fields[bad])) ++bad;
            row.error = "invalid UTF-8 in column \"" + columns_[bad] + "\"";
            // Its values all the same: the row's identity may be readable (intake.cpp).
        } else if (record_.raw.find('\0') != std::string::npos) {
            // Valid UTF-8, but no text: an export of binary data, or a broken file.
            std::size_t bad = 0;
            while (bad + 1 < record_.field_count && record_.fields[bad].find('\0') == std::string::npos) ++bad;
            row.error = "a NUL byte in column \"" + columns_[bad] + "\"";
        }
        row.values.resize(record_.field_count);
        for (std::size_t i = 0; i < record_.field_count; ++i) row.values[i] = std::move(record_.fields[i]);
    }
    return !rows.empty();
}

}  // namespace prefsync::connectors
