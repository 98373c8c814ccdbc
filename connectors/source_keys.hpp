#pragma once
// The keys every source section has, listed in each type's table: `type`, which config
// reads to choose the connector (so a connector's table names only its own type), and
// `reject_file`, which config reads too. Not in source_config.hpp, which includes every
// connector's header, so that each connector can include this.
#include <string_view>

#include "config/yaml/key_table.hpp"

namespace prefsync::connectors {

constexpr config::KeySpec source_type_key(std::string_view type, std::string_view description) {
    return {.name = "type", .type = config::ValueType::Enum, .values = type, .description = description};
}
inline constexpr config::KeySpec kRejectFileKey{
    .name = "reject_file",
    .type = config::ValueType::Path,
    .default_note = "`<journal dir>/rejects/<job>.rejects.txt`",
    .description = "where rejected rows go (created 0600; a symbolic link there is refused)"};

}  // namespace prefsync::connectors
