#include "connectors/sqlite/sqlite_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "connectors/sql/sink_sql.hpp"
#include "connectors/sql/sql_text.hpp"

namespace prefsync::connectors {

void SqliteSink::fail(const std::string& what) const {
    throw SinkError(describe() + ": " + what + (db_ ? std::string(": ") + sqlite3_errmsg(db_.get()) : std::string()));
}

void SqliteSink::exec(const std::string& sql, const char* what) {
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail(what);
}

SqliteSink::SqliteSink(const SqliteSinkConfig& config, TableLayout layout)
    : path_(config.path), table_(config.table), layout_(std::move(layout)) {
    std::error_code ec;
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw SinkError(describe() + ": cannot open: " + std::strerror(errno));
    ::close(fd);
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
    db_.reset(db);
    if (rc != SQLITE_OK) fail("cannot open");
    sqlite3_busy_timeout(db, 10000);
    exec("PRAGMA journal_mode=WAL", "cannot enable WAL");
    exec(sql::create_table(table_, layout_, sql::Dialect::Sqlite), "cannot create the table");
    auto probe = sqlite_prepare(db, "SELECT * FROM " + sql::quote_table(table_) + " LIMIT 0");
    if (!probe) fail("cannot read the table");
    std::vector<std::string> existing;
    existing.reserve(layout_.columns.size());
    for (int i = 0; i < sqlite3_column_count(probe.get()); ++i)
        existing.emplace_back(sqlite3_column_name(probe.get(), i));
    if (auto missing = sql::missing_columns(layout_, existing); !missing.empty())
        throw SinkError(describe() + ": the table exists without column(s) " + missing +
                        "; add them (ALTER TABLE) or write to a new table");
    upsert_ = sqlite_prepare(db, sql::upsert(table_, layout_, sql::Dialect::Sqlite));
    if (!upsert_)
        fail("cannot prepare the upsert (does the table have a unique key on \"" + layout_.columns[layout_.key].name +
             "\"?)");
}

SqliteSink::~SqliteSink() {
    upsert_.reset();
    // Uncommitted rows are dropped: the caller records as pulled only what was committed.
    if (in_transaction_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

std::string SqliteSink::upsert(const std::vector<std::optional<std::string>>& values) {
    if (!in_transaction_) {
        exec("BEGIN IMMEDIATE", "cannot begin a transaction");
        in_transaction_ = true;
    }
    auto* stmt = upsert_.get();
    for (std::size_t i = 0; i < layout_.columns.size(); ++i) {
        int p = static_cast<int>(i + 1);
        const auto& v = i < values.size() ? values[i] : std::nullopt;
        if (!v) {
            sqlite3_bind_null(stmt, p);
            continue;
        }
        const char* b = v->data();
        const char* e = b + v->size();
        long long whole = 0;
        double real = 0;
        switch (layout_.columns[i].type) {
            case ColumnType::Boolean:
                if (*v == "true" || *v == "false") {
                    sqlite3_bind_int(stmt, p, *v == "true");
                    continue;
                }
                break;
            case ColumnType::Integer:
                if (auto [end, ec] = std::from_chars(b, e, whole); ec == std::errc() && end == e) {
                    sqlite3_bind_int64(stmt, p, whole);
                    continue;
                }
                break;
            case ColumnType::Real:
                if (auto [end, ec] = std::from_chars(b, e, real); ec == std::errc() && end == e) {
                    sqlite3_bind_double(stmt, p, real);
                    continue;
                }
                break;
            case ColumnType::Text: break;
        }
        // Text, or a value that is not of the column's type: kept as written, not lost.
        sqlite3_bind_text(stmt, p, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
    }
    int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) fail("cannot write a row");
    return "";
}

void SqliteSink::commit() {
    if (!in_transaction_) return;
    exec("COMMIT", "cannot commit");
    in_transaction_ = false;
}

}  // namespace prefsync::connectors
