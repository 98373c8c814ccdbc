#include "connectors/table_sink.hpp"

#include "connectors/postgres/postgres_sink.hpp"
#include "connectors/sqlite/sqlite_sink.hpp"

namespace prefsync::connectors {

std::unique_ptr<TableSink> open_table_sink(const config::SinkConfig& config, const TableLayout& layout) {
    if (layout.columns.empty() || layout.key >= layout.columns.size())
        throw SinkError(config.key_path + ": the table needs columns and a key column");
    if (config.type == "sqlite") return std::make_unique<SqliteSink>(config, layout);
    if (config.type == "postgres") return std::make_unique<PostgresSink>(config, layout);
    throw SinkError(config.key_path + ": \"" + config.type + "\" is not a table sink");
}

}  // namespace prefsync::connectors
