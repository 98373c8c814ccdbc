#pragma once
// The sqlite connector's config: a `source:` section that reads a table or query of a
// database file (opened read-only, never created), and a `sink:` section that upserts
// pulled profiles into a table of a database file (created 0600).
// The rules of every connector section are in csv/csv_config.hpp.
#include <string>
#include <string_view>

#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sql/sql_config.hpp"

namespace prefsync::connectors {

struct SqliteSourceConfig : SqlReadConfig {
    static constexpr std::string_view kType = "sqlite";
    std::string path;  // the database file
};

struct SqliteSinkConfig : TableSinkConfig {
    static constexpr std::string_view kType = "sqlite";
    std::string path;  // the database file
};

const config::KeyTable& sqlite_source_keys();
const config::KeyTable& sqlite_sink_keys();

SqliteSourceConfig parse_sqlite_source(config::YamlReader& r, const YAML::Node& section, const std::string& path);
SqliteSinkConfig parse_sqlite_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path);

}  // namespace prefsync::connectors
