#include "connectors/sink_common.hpp"

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {

std::vector<SinkColumn> read_sink_columns(config::YamlReader& r, const YAML::Node& section,
                                          const std::string& path) {
    std::vector<SinkColumn> columns;
    auto node = section["columns"];
    if (!node) {
        r.error(section, path + ".columns",
                "is required (output column: JSON path, e.g. first_name: CustomerName.FirstName)");
        return columns;
    }
    for (auto& [name, value] : r.entries(node, path + ".columns"))
        if (auto json_path = r.string(value, path + ".columns." + name))
            columns.push_back({name, *json_path, r.pos(value)});
    return columns;
}

std::string read_sink_path(config::YamlReader& r, const YAML::Node& section, const std::string& path) {
    auto file = r.required_string(section, path, "path", "the file to write");
    return file ? r.resolve_path(*file) : std::string();
}

}  // namespace prefsync::connectors
