#include "connectors/sqlite/sqlite_config.hpp"

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {

SqliteSourceConfig parse_sqlite_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    SqliteSourceConfig s;
    r.check_keys(n, p, {"type", "table", "query", "incremental", "reject_file", "path"});
    if (auto path = r.required_string(n, p, "path", "the SQLite database file")) s.path = r.resolve_path(*path);
    parse_sql_read(r, n, p, s);
    return s;
}

SqliteSinkConfig parse_sqlite_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    SqliteSinkConfig s;
    r.check_keys(n, p, {"type", "columns", "key", "path", "table"});
    s.path = read_sink_path(r, n, p);
    parse_table_sink(r, n, p, s);
    return s;
}

}  // namespace prefsync::connectors
