#pragma once
// The source and sink connectors by the name `type:` gives them: each one's section parser
// and key table. config parses a section with the parser its `type` names; the schema
// generator (config_schema.hpp) describes each type's section by its table.
#include <span>
#include <string>
#include <string_view>

#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sink_config.hpp"
#include "connectors/source_config.hpp"

namespace prefsync::config {

template <class Settings>
struct ConnectorType {
    std::string_view name;  // the settings' kType, so the two agree
    Settings (*parse)(YamlReader&, const YAML::Node&, const std::string&);
    const KeyTable& (*keys)();
};

// In the order messages list them.
std::span<const ConnectorType<connectors::SourceSettings>> source_types();
std::span<const ConnectorType<connectors::SinkSettings>> sink_types();

}  // namespace prefsync::config
