#include "connectors/jsonl/jsonl_config.hpp"

#include "config/yaml/yaml_reader.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

JsonlSinkConfig parse_jsonl_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    r.check_keys(n, p, {"type", "path"});
    return JsonlSinkConfig{read_sink_path(r, n, p)};
}

}  // namespace prefsync::connectors
