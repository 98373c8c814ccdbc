#pragma once
// Reads a job's `mapping:` YAML into a MappingSpec, checked against the API's schema:
// every field name exists (with a suggestion when not), read-only fields are refused,
// constants already convert to the field's type. Column names are checked later, against
// the source's header, by daemon/mapping.
#include <yaml-cpp/yaml.h>

#include <string>

#include "config/mapping_spec.hpp"
#include "config/yaml/yaml_reader.hpp"

namespace prefsync::config {

ObjectSpec parse_mapping(YamlReader& reader, const YAML::Node& node, const std::string& path,
                         const api::ObjectSchema& schema);

// Checks a date format: %Y %m %d %H %M %S %y and literal characters. "" when valid.
std::string check_date_format(std::string_view format);

}  // namespace prefsync::config
