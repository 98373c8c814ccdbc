#include "connectors/jsonl/jsonl_config.hpp"

#include "config/yaml/yaml_reader.hpp"
#include "connectors/sink_common.hpp"

namespace prefsync::connectors {

JsonlSinkConfig parse_jsonl_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    r.check_keys(n, p, {"type", "columns", "path"});
    JsonlSinkConfig s{read_sink_path(r, n, p)};
    if (n["columns"]) read_sink_columns(r, n, p);
    return s;
}

}  // namespace prefsync::connectors
