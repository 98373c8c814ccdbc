#pragma once
// What several sink types share in their config sections: the output columns (csv, sqlite,
// postgres) and the output file (csv, jsonl, sqlite).
#include <string>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/key_table.hpp"
#include "config/yaml/yaml_fwd.hpp"

namespace prefsync::connectors {

// One output column of a pull sink: a name and where its value is in the pulled JSON.
// Paths: `CustomerName.FirstName`, `Emails[0].EmailAddress`,
// `AlternateIds[AlternateIdType=CRMID].AlternateId`; with `each`, `@.Field` is a field of
// the element. Objects and arrays come out as compact JSON text. The paths are compiled
// (and checked) by the pull engine, which reads the JSON.
struct SinkColumn {
    std::string name;
    std::string path;
    config::SourcePos pos;
};

// The keys several sink types share, listed in each type's table (`type` is read by config,
// which chooses the connector by it).
constexpr config::KeySpec sink_type_key(std::string_view type, std::string_view description) {
    return {.name = "type", .type = config::ValueType::Enum, .values = type, .description = description};
}
inline constexpr config::KeySpec kSinkColumnsKey{
    .name = "columns",
    .type = config::ValueType::StringMap,
    .required = "output column: JSON path, e.g. first_name: CustomerName.FirstName",
    .doc_type = "map",
    .description =
        "output column: JSON path (`CustomerName.FirstName`, `Emails[0].EmailAddress`, "
        "`AlternateIds[AlternateIdType=CRMID].AlternateId`; objects and arrays as compact JSON)"};
inline constexpr config::KeySpec kSinkPathKey{.name = "path",
                                              .type = config::ValueType::Path,
                                              .required = "the file to write",
                                              .description =
                                                  "the output file (written as `PATH.partial`, 0600, and "
                                                  "renamed when the run completes)"};

// The section's `columns` (output column: JSON path), in file order; required.
std::vector<SinkColumn> read_sink_columns(config::YamlReader& r, const YAML::Node& section, const std::string& path);
// The section's `path`, the file to write; required, resolved against the config's directory.
std::string read_sink_path(config::YamlReader& r, const YAML::Node& section, const std::string& path);

}  // namespace prefsync::connectors
