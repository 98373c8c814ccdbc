#include "connectors/sqlite/sqlite_source.hpp"

#include <simdjson.h>

#include <charconv>
#include <filesystem>

namespace prefsync::connectors {
namespace {

// The typed text a position keeps, and back to a bound parameter.
std::string encode_value(sqlite3_stmt* s, int i) {
    switch (sqlite3_column_type(s, i)) {
        case SQLITE_INTEGER: return "int:" + std::to_string(sqlite3_column_int64(s, i));
        case SQLITE_FLOAT: return "real:" + sql::real_text(sqlite3_column_double(s, i));
        default: {
            auto p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
            return "text:" + std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
        }
    }
}

}  // namespace

void SqliteSource::fail(const std::string& what) const {
    throw SourceError(describe() + ": " + what + (db_ ? std::string(": ") + sqlite3_errmsg(db_.get()) : std::string()));
}

SqliteSource::SqliteSource(const SqliteSourceConfig& config, const std::optional<Position>& since)
    : path_(config.path), name_(config.table.empty() ? "query" : config.table) {
    // Read-only, and never created: a typo'd path must not become an empty database.
    if (!std::filesystem::exists(path_)) throw SourceError("sqlite " + path_ + ": no such database file");
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) fail("cannot open");
    sqlite3_busy_timeout(db, 10000);

    // Column names first (also proves the table/query is valid) from a statement that reads nothing.
    auto probe = sqlite_prepare(db, "SELECT * FROM " + sql::relation(config) + " LIMIT 0");
    if (!probe) fail("cannot read " + name_);
    for (int i = 0; i < sqlite3_column_count(probe.get()); ++i)
        columns_.emplace_back(sqlite3_column_name(probe.get(), i));
    incremental_ = sql::find_incremental_columns(config, columns_, describe());

    std::optional<std::string> bound;
    if (incremental_ && since) {
        auto colon = since->value.find(':');
        std::string kind = since->value.substr(0, colon);
        std::string text = colon == std::string::npos ? "" : since->value.substr(colon + 1);
        auto shifted = sql::minus_overlap(text, config.incremental->overlap);
        if (!shifted)
            throw SourceError(config.incremental->key_path + ".overlap: the values of column \"" +
                              config.incremental->column + "\" are neither numbers nor timestamps (\"" + text +
                              "\"), so an overlap cannot be subtracted; remove it");
        bound = kind + ":" + *shifted;
    }
    stmt_ = sqlite_prepare(db, sql::select_rows(config, bound ? "?1" : ""));
    if (!stmt_) fail("cannot read " + name_);
    auto* stmt = stmt_.get();
    if (bound) {
        auto colon = bound->find(':');
        auto kind = bound->substr(0, colon);
        auto text = bound->substr(colon + 1);
        if (kind == "int" || kind == "real") {
            double number = 0;
            std::from_chars(text.data(), text.data() + text.size(), number);
            long long whole = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), whole);
            rc = ec == std::errc() && end == text.data() + text.size() ? sqlite3_bind_int64(stmt, 1, whole)
                                                                       : sqlite3_bind_double(stmt, 1, number);
        } else {
            rc = sqlite3_bind_text(stmt, 1, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
        }
        if (rc != SQLITE_OK) fail("cannot bind the watermark");
    }
}

bool SqliteSource::next_batch(std::vector<Row>& rows, std::size_t max_rows) {
    rows.clear();
    auto* stmt = stmt_.get();
    while (!done_ && rows.size() < max_rows) {
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_DONE) {
            done_ = true;
            break;
        }
        if (rc != SQLITE_ROW) fail("reading row " + std::to_string(row_number_ + 1));
        ++row_number_;
        Row& row = rows.emplace_back();
        row.values.resize(columns_.size());
        for (std::size_t i = 0; i < columns_.size(); ++i) {
            int c = static_cast<int>(i);
            switch (sqlite3_column_type(stmt, c)) {
                case SQLITE_NULL: break;
                case SQLITE_INTEGER: row.values[i] = std::to_string(sqlite3_column_int64(stmt, c)); break;
                case SQLITE_FLOAT: row.values[i] = sql::real_text(sqlite3_column_double(stmt, c)); break;
                default: {
                    bool blob = sqlite3_column_type(stmt, c) == SQLITE_BLOB;
                    auto p = blob ? static_cast<const char*>(sqlite3_column_blob(stmt, c))
                                  : reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
                    std::string text(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, c)));
                    if (!simdjson::validate_utf8(text.data(), text.size()) && row.error.empty())
                        row.error = "column \"" + columns_[i] +
                                    "\": " + (blob ? "a BLOB that is not UTF-8 text" : "text that is not valid UTF-8");
                    // Valid UTF-8, but not text a profile holds (a CSV source refuses it too):
                    // it would reach the API as \u0000.
                    if (text.find('\0') != std::string::npos && row.error.empty())
                        row.error = "column \"" + columns_[i] + "\": a NUL byte in its " + (blob ? "BLOB" : "text");
                    row.values[i] = std::move(text);
                }
            }
        }
        std::optional<std::string> key;
        if (incremental_) {
            key = row.values[incremental_->key];
            if (sqlite3_column_type(stmt, static_cast<int>(incremental_->column)) != SQLITE_NULL)
                position_ = Position{encode_value(stmt, static_cast<int>(incremental_->column)), key.value_or("")};
        }
        row.origin = sql::row_origin(name_, incremental_, columns_, key, row_number_);
    }
    return !rows.empty();
}

}  // namespace prefsync::connectors
