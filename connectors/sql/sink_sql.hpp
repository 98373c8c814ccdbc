#pragma once
// The DDL and upsert both table sinks send; identifiers quoted, values as parameters.
#include <string>

#include "connectors/table_sink.hpp"

namespace prefsync::connectors::sql {

enum class Dialect { Sqlite, Postgres };

std::string create_table(const std::string& table, const TableLayout& layout, Dialect dialect);
// INSERT … ON CONFLICT(key) DO UPDATE SET every other column; parameters ?N / $N in layout order.
std::string upsert(const std::string& table, const TableLayout& layout, Dialect dialect);
// The layout's columns that `existing` lacks, as "a", "b"; empty when none.
std::string missing_columns(const TableLayout& layout, const std::vector<std::string>& existing);

}  // namespace prefsync::connectors::sql
