#pragma once
// A SQLite table or query as a Source, streamed one step at a time (never the whole result
// in memory), opened read-only. Values arrive as text: integers in decimal, reals in their
// shortest round-trip form, text as stored (checked to be UTF-8), blobs as text when they
// are UTF-8; NULL stays NULL (nullopt), distinct from ''. The mapping converts types.
//
// Incremental: the position's value keeps the SQLite storage class ("int:", "real:",
// "text:") because SQLite orders every integer before every text: a watermark bound with
// the wrong class would select nothing or everything.
#include <optional>
#include <string>
#include <vector>

#include "connectors/source.hpp"
#include "connectors/sqlite/sqlite_config.hpp"
#include "connectors/sqlite/sqlite_handle.hpp"
#include "connectors/sql/sql_text.hpp"

namespace prefsync::connectors {

class SqliteSource final : public Source {
public:
    SqliteSource(const SqliteSourceConfig& config, const std::optional<Position>& since);

    const std::vector<std::string>& columns() const override { return columns_; }
    bool next_batch(std::vector<Row>& rows, std::size_t max_rows) override;
    std::string describe() const override { return "sqlite " + path_ + " " + name_; }
    std::optional<Position> position() const override { return position_; }

private:
    [[noreturn]] void fail(const std::string& what) const;

    std::string path_;
    std::string name_;  // the table, or "query"
    SqliteDb db_;
    SqliteStmt stmt_;
    std::vector<std::string> columns_;
    std::optional<sql::IncrementalColumns> incremental_;
    std::optional<Position> position_;
    std::size_t row_number_ = 0;
    bool done_ = false;
};

}  // namespace prefsync::connectors
