#pragma once
// A PostgreSQL table or query as a Source: one REPEATABLE READ, READ ONLY transaction per
// run (a consistent snapshot) and a server-side cursor fetched `fetch_rows` at a time, so a
// table of any size streams in flat memory. Values arrive in PostgreSQL's text form (NULL
// as nullopt); the mapping converts types.
//
// Incremental: rows at or past (watermark − overlap), the subtraction done by the server in
// the column's own type (timestamps and dates: an interval; numbers: seconds).
#include <optional>
#include <string>
#include <vector>

#include "connectors/postgres/pg_connection.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/source.hpp"
#include "connectors/sql/sql_text.hpp"

namespace prefsync::connectors {

class PostgresSource final : public Source {
public:
    PostgresSource(const PostgresSourceConfig& config, const std::optional<Position>& since);

    const std::vector<std::string>& columns() const override { return columns_; }
    bool next_batch(std::vector<Row>& rows, std::size_t max_rows) override;
    std::string describe() const override { return conn_.describe() + " " + name_; }
    std::optional<Position> position() const override { return position_; }

private:
    [[noreturn]] void fail(const std::string& what) const;

    PgConnection conn_;
    std::string name_;  // the table, or "query"
    std::size_t fetch_rows_;
    std::vector<std::string> columns_;
    std::optional<sql::IncrementalColumns> incremental_;
    std::optional<Position> position_;
    PgResult batch_;
    int batch_next_ = 0;
    std::size_t row_number_ = 0;
    bool done_ = false;
};

}  // namespace prefsync::connectors
