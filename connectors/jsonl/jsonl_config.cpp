#include "connectors/jsonl/jsonl_config.hpp"

#include "config/yaml/yaml_reader.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

const config::KeyTable& jsonl_sink_keys() {
    static const config::KeyTable table{
        .id = "sink.jsonl",
        .description = "A JSON Lines file: each pulled profile as received, minified, one per line.",
        .keys = {sink_type_key("jsonl", "a JSON Lines file, each profile as received"), kSinkPathKey},
    };
    return table;
}

JsonlSinkConfig parse_jsonl_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    r.check_keys(n, p, jsonl_sink_keys());
    return JsonlSinkConfig{read_sink_path(r, n, p)};
}

}  // namespace prefsync::connectors
