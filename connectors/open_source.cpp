#include "connectors/open_source.hpp"

#include "connectors/csv/csv_source.hpp"
#include "connectors/postgres/postgres_source.hpp"
#include "connectors/sqlite/sqlite_source.hpp"

namespace prefsync::connectors {

std::unique_ptr<Source> open_source(const config::SourceConfig& config, const std::optional<Position>& since) {
    if (config.type == "csv") return std::make_unique<CsvSource>(config);
    if (config.type == "sqlite") return std::make_unique<SqliteSource>(config, since);
    if (config.type == "postgres") return std::make_unique<PostgresSource>(config, since);
    throw SourceError("source type \"" + config.type + "\" is not supported");
}

std::string position_identity(const config::SourceConfig& config) {
    // Not the conninfo: a moved server or a rotated password is still the same data.
    std::string id = config.type + "\n" + config.path + "\n" + config.table + "\n" + config.query;
    if (config.incremental) id += "\n" + config.incremental->column + "\n" + config.incremental->key;
    return id;
}

}  // namespace prefsync::connectors
