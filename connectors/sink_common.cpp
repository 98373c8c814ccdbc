#include "connectors/sink_common.hpp"

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {

std::vector<SinkColumn> read_sink_columns(config::YamlReader& r, const YAML::Node& section, const std::string& path) {
    std::vector<SinkColumn> columns;
    auto node = section["columns"];
    if (!node || !r.expect_map(node, path + ".columns")) return columns;  // a missing one: check_keys
    for (auto& [name, value] : r.entries(node, path + ".columns"))
        if (auto json_path = r.string(value, path + ".columns." + name))
            columns.push_back({name, *json_path, r.pos(value)});
    return columns;
}

std::string read_sink_path(config::YamlReader& r, const YAML::Node& section, const std::string& path) {
    std::string file;
    r.read(section, path, kSinkPathKey, file);
    return file;
}

}  // namespace prefsync::connectors
