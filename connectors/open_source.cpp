#include "connectors/open_source.hpp"

#include "connectors/csv/csv_source.hpp"
#include "connectors/postgres/postgres_source.hpp"
#include "connectors/sqlite/sqlite_source.hpp"

namespace prefsync::connectors {
namespace {

// One overload per alternative of SourceSettings: a type without one does not compile.
std::unique_ptr<Source> open(const CsvSourceConfig& config, const std::optional<Position>&) {
    return std::make_unique<CsvSource>(config);
}
std::unique_ptr<Source> open(const SqliteSourceConfig& config, const std::optional<Position>& since) {
    return std::make_unique<SqliteSource>(config, since);
}
std::unique_ptr<Source> open(const PostgresSourceConfig& config, const std::optional<Position>& since) {
    return std::make_unique<PostgresSource>(config, since);
}

}  // namespace

std::unique_ptr<Source> open_source(const SourceConfig& config, const std::optional<Position>& since) {
    return std::visit([&](const auto& settings) { return open(settings, since); }, config.settings);
}

std::string position_identity(const SourceConfig& config) {
    // Not the conninfo: a moved server or a rotated password is still the same data. The
    // layout is stored in journals: changing it makes every incremental job start over.
    const auto* sql = config.sql();
    std::string id = std::string(config.type()) + "\n" + config.path() + "\n" + (sql ? sql->table : "") + "\n" +
                     (sql ? sql->query : "");
    if (const auto* inc = config.incremental()) id += "\n" + inc->column + "\n" + inc->key;
    return id;
}

}  // namespace prefsync::connectors
