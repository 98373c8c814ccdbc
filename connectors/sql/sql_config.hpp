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
#include "config/yaml/key_table.hpp"
#include "config/yaml/units.hpp"
#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

// Incremental reads of a SQL source: only rows whose `column` is at or past the stored
// watermark minus `overlap`, in (column, key) order, so the watermark only moves forward.
struct IncrementalConfig {
    std::string column;           // e.g. updated_at (a timestamp or a number)
    std::string key;              // a unique column, e.g. id: a total order among equal timestamps
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

// The keys of a SQL source's table / query / incremental, for the source types' tables,
// with the rule that goes with them; the keys of the incremental section.
const config::KeyTable& incremental_keys();
inline constexpr config::KeySpec kSourceTableKey{
    .name = "table", .doc_type = "name or `schema.name`", .description = "the table to read (quoted as an identifier)"};
inline constexpr config::KeySpec kSourceQueryKey{
    .name = "query",
    .doc_type = "SQL",
    .description = "a SELECT to read instead of a table (run as a subquery; values are never spliced into it)"};
inline constexpr config::KeySpec kIncrementalKey{
    .name = "incremental",
    .type = config::ValueType::Section,
    .nested = incremental_keys,
    .description = "read only rows changed since the last run (see Incremental runs)"};
inline constexpr config::KeyRule kTableOrQuery{config::KeyRule::Kind::ExactlyOne, "table|query"};
// The keys of a SQL sink's table.
inline constexpr config::KeySpec kSinkTableKey{
    .name = "table",
    .required = "created if missing",
    .doc_type = "name",
    .description = "the table written: created if missing; rows upserted by `key`"};
inline constexpr config::KeySpec kSinkKeyKey{.name = "key",
                                             .default_note = "the column whose path is `ProfileId`",
                                             .doc_type = "column",
                                             .description = "the upsert key: one of `columns`"};

// The section's table / query / incremental keys.
void parse_sql_read(config::YamlReader& r, const YAML::Node& section, const std::string& path, SqlReadConfig& out);
// The section's table / columns / key keys.
void parse_table_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path, TableSinkConfig& out);

}  // namespace prefsync::connectors
