#include "connectors/sqlite/sqlite_config.hpp"

#include "config/yaml/yaml_reader.hpp"
#include "connectors/source_keys.hpp"

namespace prefsync::connectors {

using config::ValueType;

const config::KeyTable& sqlite_source_keys() {
    static const config::KeyTable table{
        .id = "source.sqlite",
        .description = "A table or query of a SQLite database file, opened read-only.",
        .keys =
            {
                source_type_key("sqlite", "a table or query of a SQLite database"),
                kSourceTableKey,
                kSourceQueryKey,
                kIncrementalKey,
                kRejectFileKey,
                {.name = "path",
                 .type = ValueType::Path,
                 .required = "the SQLite database file",
                 .description = "the SQLite database (opened read-only, never created)"},
            },
        .rules = {kTableOrQuery},
    };
    return table;
}

const config::KeyTable& sqlite_sink_keys() {
    static const config::KeyTable table{
        .id = "sink.sqlite",
        .description = "A table of a SQLite database file (created 0600), pulled profiles upserted by `key`.",
        .keys =
            {
                sink_type_key("sqlite", "a table of a SQLite database"),
                kSinkColumnsKey,
                kSinkKeyKey,
                {.name = "path",
                 .type = ValueType::Path,
                 .required = "the file to write",
                 .description = "the SQLite database (created 0600 if missing)"},
                kSinkTableKey,
            },
    };
    return table;
}

SqliteSourceConfig parse_sqlite_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = sqlite_source_keys();
    SqliteSourceConfig s;
    r.check_keys(n, p, keys);
    r.read(n, p, keys.key("path"), s.path);
    parse_sql_read(r, n, p, s);
    return s;
}

SqliteSinkConfig parse_sqlite_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = sqlite_sink_keys();
    SqliteSinkConfig s;
    r.check_keys(n, p, keys);
    r.read(n, p, keys.key("path"), s.path);
    parse_table_sink(r, n, p, s);
    return s;
}

}  // namespace prefsync::connectors
