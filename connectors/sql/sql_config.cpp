#include "connectors/sql/sql_config.hpp"

#include <algorithm>

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {
namespace {

void check_identifier(config::YamlReader& r, const config::SourcePos& pos, const std::string& path,
                      const std::string& name) {
    if (name.empty() || name.find('"') != std::string::npos || name.find('\0') != std::string::npos)
        r.error(pos, path, "must be a non-empty name without double quotes");
}

// Reads `key` of the incremental map, a column name; `what` says what it is for when missing.
void incremental_column(config::YamlReader& r, const YAML::Node& map, const std::string& path,
                        const char* key, std::string_view what, std::string& out) {
    if (auto v = r.required_string(map, path, key, what)) {
        out = *v;
        check_identifier(r, r.pos(map[key]), path + "." + key, out);
    }
}

}  // namespace

void parse_sql_read(config::YamlReader& r, const YAML::Node& n, const std::string& p, SqlReadConfig& out) {
    r.optional_string(n, p, "table", out.table);
    r.optional_string(n, p, "query", out.query);
    if (n["table"]) check_identifier(r, r.pos(n["table"]), p + ".table", out.table);
    if (n["table"] && n["query"])
        r.error(n, p, "give either table or query, not both");
    else if (!n["table"] && !n["query"])
        r.error(n, p + ".table", "is required (or a query: SELECT ...)");
    auto v = n["incremental"];
    if (!v) return;
    auto ip = p + ".incremental";
    if (!r.expect_map(v, ip)) return;
    r.check_keys(v, ip, {"column", "key", "overlap"});
    IncrementalConfig inc;
    inc.pos = r.pos(v);
    inc.key_path = ip;
    incremental_column(r, v, ip, "column", "the column that grows with each change, e.g. updated_at", inc.column);
    incremental_column(r, v, ip, "key", "a unique column, e.g. id", inc.key);
    r.optional_field(v, ip, "overlap", inc.overlap, [&](auto& node, auto path) { return r.duration(node, path); });
    out.incremental = inc;
}

void parse_table_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p, TableSinkConfig& out) {
    if (auto table = r.required_string(n, p, "table", "created if missing")) {
        out.table = *table;
        check_identifier(r, r.pos(n["table"]), p + ".table", out.table);
    }
    out.columns = read_sink_columns(r, n, p);
    for (const auto& column : out.columns) check_identifier(r, column.pos, p + ".columns." + column.name, column.name);
    r.optional_string(n, p, "key", out.key);
    if (!n["columns"]) return;
    if (out.key.empty()) {
        for (const auto& column : out.columns)
            if (column.path == "ProfileId") out.key = column.name;
        if (out.key.empty())
            r.error(n, p + ".key", "is required: a column with path ProfileId, or name the upsert key column");
    } else if (std::none_of(out.columns.begin(), out.columns.end(), [&](auto& c) { return c.name == out.key; })) {
        r.error(n["key"], p + ".key", "must name one of the columns");
    }
}

}  // namespace prefsync::connectors
