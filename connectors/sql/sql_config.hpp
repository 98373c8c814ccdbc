#pragma once
// What the SQL connectors share in their config sections: the rows a SQL source reads (a
// table or a query, optionally incremental) and the table a SQL sink writes.
//
// Design constraints:
// - Names that end up inside double-quoted SQL identifiers (tables, incremental columns,
//   sink columns) are checked when the config is read: a quote or NUL could break out.
// - An IncrementalConfig carries its key path, so the errors found only when the source
//   opens (a column the table lacks, an overlap its type cannot subtract) name the key.
#include <optional>
#include <string>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/units.hpp"
#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

// Incremental reads of a SQL source: only rows whose `column` is at or past the stored
// watermark minus `overlap`, in (column, key) order, so the watermark only moves forward.
struct IncrementalConfig {
    std::string column;   // e.g. updated_at (a timestamp or a number)
    std::string key;      // a unique column, e.g. id: a total order among equal timestamps
    config::Duration overlap{0};  // re-read this far behind the watermark (late commits)
    config::SourcePos pos;
    std::string key_path;  // "jobs.<name>.source.incremental", for messages
};

// The rows a SQL source reads: a table (optionally schema.table) or a SELECT, never both.
struct SqlReadConfig {
    std::string table;
    std::string query;
    std::optional<IncrementalConfig> incremental;
};

// The table a SQL sink writes: created if missing, rows upserted by `key`.
struct TableSinkConfig {
    std::string table;
    std::vector<SinkColumn> columns;
    std::string key;  // the upsert key column (default: the column whose path is ProfileId)
};

// The section's table / query / incremental keys.
void parse_sql_read(config::YamlReader& r, const YAML::Node& section, const std::string& path,
                    SqlReadConfig& out);
// The section's table / columns / key keys.
void parse_table_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path,
                      TableSinkConfig& out);

}  // namespace prefsync::connectors
