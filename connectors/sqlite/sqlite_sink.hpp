#pragma once
// A SQLite table as a TableSink: the database file is created 0600 (it holds personal
// data) in WAL mode; integer/real/boolean columns are bound as numbers, the rest as text.
#include <string>

#include "connectors/sqlite/sqlite_config.hpp"
#include "connectors/sqlite/sqlite_handle.hpp"
#include "connectors/table_sink.hpp"

namespace prefsync::connectors {

class SqliteSink final : public TableSink {
public:
    SqliteSink(const SqliteSinkConfig& config, TableLayout layout);
    ~SqliteSink() override;
    SqliteSink(const SqliteSink&) = delete;
    SqliteSink& operator=(const SqliteSink&) = delete;

    std::string upsert(const std::vector<std::optional<std::string>>& values) override;
    void commit() override;
    std::string describe() const override { return "sqlite " + path_ + " " + table_; }

private:
    [[noreturn]] void fail(const std::string& what) const;
    void exec(const std::string& sql, const char* what);

    std::string path_, table_;
    TableLayout layout_;
    SqliteDb db_;
    SqliteStmt upsert_;
    bool in_transaction_ = false;
};

}  // namespace prefsync::connectors
