#pragma once
// A pull job's `sink:` as the connectors read it: where it is in the config, and the
// settings of its type, parsed by that type's connector (csv/csv_config.hpp,
// jsonl/jsonl_config.hpp, sqlite/sqlite_config.hpp, postgres/postgres_config.hpp).
//
// Design constraints:
// - The settings are a variant: a sink has the options of its own type only;
//   open_table_sink (table_sink.hpp) opens the table sinks by their settings.
// - The accessors give what the pull engine reads whatever the type: a key the type does
//   not have reads as empty.
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "connectors/csv/csv_config.hpp"
#include "connectors/jsonl/jsonl_config.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/sink_common.hpp"
#include "connectors/sqlite/sqlite_config.hpp"

namespace prefsync::connectors {

using SinkSettings = std::variant<CsvSinkConfig, JsonlSinkConfig, SqliteSinkConfig, PostgresSinkConfig>;

struct SinkConfig {
    config::SourcePos pos;
    std::string key_path;  // "jobs.<name>.sink"
    SinkSettings settings;

    std::string_view type() const;                   // csv | jsonl | sqlite | postgres
    const std::string& path() const;                 // csv, jsonl, sqlite: the file written
    const std::string& table() const;                // sqlite, postgres: created if missing
    const std::vector<SinkColumn>& columns() const;  // csv, sqlite, postgres (jsonl writes the JSON as received)
    const std::string& each() const;                 // csv: one row per element of this array
    const std::string& key() const;                  // sqlite, postgres: the upsert key column
};

}  // namespace prefsync::connectors
