#pragma once
// Where pulled rows land in a database: a table created if missing, rows upserted by a key
// column (the profile id), grouped into transactions.
//
// Design constraints:
// - Upserts make a re-run idempotent: a pull resumed after a crash rewrites the same rows,
//   never duplicates them.
// - An existing table is used as it is, but every column the layout names must exist
//   (a clear error naming the missing ones, before anything is written).
// - A problem with the database throws SinkError; the caller stops the run resumably. A
//   row the database cannot hold (PostgreSQL text with a NUL) is a value: that row is not
//   written, the run goes on.
// - The key column is NOT NULL in the tables created: a row without a key would never
//   conflict (or, in SQLite, become an invented rowid), so every run would add it again.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectors/sink_config.hpp"

namespace prefsync::connectors {

class SinkError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ColumnType { Text, Integer, Real, Boolean };

struct TableColumn {
    std::string name;
    ColumnType type = ColumnType::Text;
};

struct TableLayout {
    std::vector<TableColumn> columns;
    std::size_t key = 0;  // index of the upsert key among columns
};

class TableSink {
public:
    virtual ~TableSink() = default;
    // Inserts or replaces the row with this key; values in layout order, nullopt = NULL.
    // Opens a transaction if none is open. "" or why this row cannot be stored (nothing of
    // it is written, the caller goes on); a problem with the database throws SinkError.
    virtual std::string upsert(const std::vector<std::optional<std::string>>& values) = 0;
    // Commits the open transaction: durable when this returns.
    virtual void commit() = 0;
    virtual std::string describe() const = 0;
};

// Opens the table sink `config` names (sqlite, postgres).
// Throws SinkError (or config::ConfigError for an unreadable password).
std::unique_ptr<TableSink> open_table_sink(const SinkConfig& config, const TableLayout& layout);

}  // namespace prefsync::connectors
