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

}  // namespace

const config::KeyTable& incremental_keys() {
    static const config::KeyTable table{
        .id = "source.incremental",
        .description = "Incremental reads: only rows whose column is at or past the stored watermark.",
        .keys =
            {
                {.name = "column",
                 .required = "the column that grows with each change, e.g. updated_at",
                 .doc_type = "column",
                 .description = "read only rows whose column is at or past the stored watermark (e.g. `updated_at`; "
                                "a timestamp, date or number)"},
                {.name = "key",
                 .required = "a unique column, e.g. id",
                 .doc_type = "column",
                 .description = "a unique column (e.g. `id`): rows are read in (column, key) order"},
                {.name = "overlap",
                 .type = config::ValueType::Duration,
                 .default_value = "0s",
                 .description = "re-read this far behind the watermark, for rows committed late with an older "
                                "timestamp"},
            },
    };
    return table;
}

void parse_sql_read(config::YamlReader& r, const YAML::Node& n, const std::string& p, SqlReadConfig& out) {
    // Whether table or query is given is the tables' rule (kTableOrQuery), checked with the keys.
    if (r.read(n, p, kSourceTableKey, out.table)) check_identifier(r, r.pos(n["table"]), p + ".table", out.table);
    r.read(n, p, kSourceQueryKey, out.query);
    auto v = n["incremental"];
    if (!v) return;
    auto ip = p + ".incremental";
    if (!r.expect_map(v, ip)) return;
    const auto& keys = incremental_keys();
    r.check_keys(v, ip, keys);
    IncrementalConfig inc;
    inc.pos = r.pos(v);
    inc.key_path = ip;
    for (auto [name, out_column] : {std::pair{"column", &inc.column}, std::pair{"key", &inc.key}})
        if (r.read(v, ip, keys.key(name), *out_column))
            check_identifier(r, r.pos(v[name]), ip + "." + name, *out_column);
    r.read(v, ip, keys.key("overlap"), inc.overlap);
    out.incremental = inc;
}

void parse_table_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p, TableSinkConfig& out) {
    if (r.read(n, p, kSinkTableKey, out.table)) check_identifier(r, r.pos(n["table"]), p + ".table", out.table);
    out.columns = read_sink_columns(r, n, p);
    for (const auto& column : out.columns) check_identifier(r, column.pos, p + ".columns." + column.name, column.name);
    r.read(n, p, kSinkKeyKey, out.key);
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
