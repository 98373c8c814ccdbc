#include "connectors/table_sink.hpp"

#include "connectors/postgres/postgres_sink.hpp"
#include "connectors/sqlite/sqlite_sink.hpp"

namespace prefsync::connectors {

std::unique_ptr<TableSink> open_table_sink(const SinkConfig& config, const TableLayout& layout) {
    if (layout.columns.empty() || layout.key >= layout.columns.size())
        throw SinkError(config.key_path + ": the table needs columns and a key column");
    if (const auto* sqlite = std::get_if<SqliteSinkConfig>(&config.settings))
        return std::make_unique<SqliteSink>(*sqlite, layout);
    if (const auto* postgres = std::get_if<PostgresSinkConfig>(&config.settings))
        return std::make_unique<PostgresSink>(*postgres, layout);
    throw SinkError(config.key_path + ": \"" + std::string(config.type()) + "\" is not a table sink");
}

}  // namespace prefsync::connectors
