#pragma once
// The jsonl connector's config: a `sink:` section that writes each pulled profile as
// received, minified, one per line. Only a path: the JSON is not reshaped, so a csv or
// table sink's `columns` / `each` are errors here (see csv/csv_config.hpp for the rules).
#include <string>
#include <string_view>

#include "config/yaml/yaml_fwd.hpp"

namespace prefsync::connectors {

struct JsonlSinkConfig {
    static constexpr std::string_view kType = "jsonl";
    std::string path;
};

const config::KeyTable& jsonl_sink_keys();  // what the parser checks; see csv/csv_config.hpp
JsonlSinkConfig parse_jsonl_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path);

}  // namespace prefsync::connectors
