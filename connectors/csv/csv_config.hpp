#pragma once
// The csv connector's config: a `source:` section that reads a CSV file, and a `sink:`
// section that writes pulled profiles as CSV rows.
//
// Design constraints:
// - Each type's keys are a table (csv_source_keys(), ...; config/yaml/key_table.hpp), which
//   the parser checks the whole section against, so an option of another type (`table` on
//   a csv source) is an error naming the key, and which `prefsync config-schema` documents.
//   The keys every section has (`type`; `reject_file` on sources) are listed in each table
//   and read by config, which chose the type.
// - Problems are recorded in the YamlReader (all at once); the result is what could be read.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml/units.hpp"
#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

struct CsvSourceConfig {
    static constexpr std::string_view kType = "csv";
    std::string path;
    char delimiter = ',';
    bool header = true;
    std::vector<std::string> columns;         // names when header: false
    std::size_t max_record_bytes = 1u << 20;  // longer records are rejected: memory stays bounded
    // A run reads the file only once it was last modified at least this long before: an
    // export still being written (paused) is not read to a premature end. 0: read at once.
    config::Duration settle = std::chrono::seconds(2);
};

struct CsvSinkConfig {
    static constexpr std::string_view kType = "csv";
    std::string path;
    std::vector<SinkColumn> columns;
    std::string each;  // one row per element of this array (e.g. a history collection)
};

// The keys of each section (config/yaml/key_table.hpp): what the parsers check and what
// `prefsync config-schema` documents.
const config::KeyTable& csv_source_keys();
const config::KeyTable& csv_sink_keys();

CsvSourceConfig parse_csv_source(config::YamlReader& r, const YAML::Node& section, const std::string& path);
CsvSinkConfig parse_csv_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path);

}  // namespace prefsync::connectors
