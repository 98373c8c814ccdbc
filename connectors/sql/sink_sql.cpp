#include "connectors/sql/sink_sql.hpp"

#include <algorithm>

#include "connectors/sql/sql_text.hpp"

namespace prefsync::connectors::sql {
namespace {

const char* type_name(ColumnType type, Dialect dialect) {
    bool pg = dialect == Dialect::Postgres;
    switch (type) {
        case ColumnType::Text: return "TEXT";
        case ColumnType::Integer: return pg ? "BIGINT" : "INTEGER";
        case ColumnType::Real: return pg ? "DOUBLE PRECISION" : "REAL";
        case ColumnType::Boolean: return pg ? "BOOLEAN" : "INTEGER";
    }
    return "TEXT";
}

}  // namespace

std::string create_table(const std::string& table, const TableLayout& layout, Dialect dialect) {
    std::string sql = "CREATE TABLE IF NOT EXISTS " + quote_table(table) + " (";
    for (std::size_t i = 0; i < layout.columns.size(); ++i) {
        const auto& c = layout.columns[i];
        sql += (i ? ", " : "") + quote_identifier(c.name) + " " + type_name(c.type, dialect);
        if (i == layout.key) sql += " NOT NULL PRIMARY KEY";
    }
    return sql + ")";
}

std::string upsert(const std::string& table, const TableLayout& layout, Dialect dialect) {
    std::string names, params, updates;
    for (std::size_t i = 0; i < layout.columns.size(); ++i) {
        const auto& c = layout.columns[i];
        names += (i ? ", " : "") + quote_identifier(c.name);
        auto n = std::to_string(i + 1);
        params += (i ? ", " : "");
        if (dialect == Dialect::Postgres)
            params += "$" + n + "::" + type_name(c.type, dialect);
        else
            params += "?" + n;
        if (i != layout.key)
            updates +=
                (updates.empty() ? "" : ", ") + quote_identifier(c.name) + " = excluded." + quote_identifier(c.name);
    }
    std::string sql = "INSERT INTO " + quote_table(table) + " (" + names + ") VALUES (" + params + ") ON CONFLICT (" +
                      quote_identifier(layout.columns[layout.key].name) + ") DO ";
    return sql + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
}

std::string missing_columns(const TableLayout& layout, const std::vector<std::string>& existing) {
    std::string missing;
    for (const auto& c : layout.columns)
        if (std::find(existing.begin(), existing.end(), c.name) == existing.end())
            missing += (missing.empty() ? "\"" : ", \"") + c.name + "\"";
    return missing;
}

}  // namespace prefsync::connectors::sql
