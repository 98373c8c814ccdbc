#pragma once
// A PostgreSQL table as a TableSink: parameters sent as text and cast by the server to the
// column types; one prepared upsert, rows grouped in transactions by the caller's commits.
#include <string>

#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/table_sink.hpp"

namespace prefsync::connectors {

class PostgresSink final : public TableSink {
public:
    PostgresSink(const PostgresSinkConfig& config, TableLayout layout);
    ~PostgresSink() override;
    PostgresSink(const PostgresSink&) = delete;
    PostgresSink& operator=(const PostgresSink&) = delete;

    std::string upsert(const std::vector<std::optional<std::string>>& values) override;
    void commit() override;
    std::string describe() const override { return conn_.describe() + " " + table_; }

private:
    [[noreturn]] void fail(const std::string& what) const;

    PgConnection conn_;
    std::string table_;
    TableLayout layout_;
    std::string upsert_sql_;
    bool in_transaction_ = false;
};

}  // namespace prefsync::connectors
