#include <cstdio>

#include "config/schema/config_schema.hpp"
#include "daemon/cli/cli.hpp"

namespace prefsync::cli {

// Needs no config file: the schema describes every config, and an editor or CI job asks for
// it before there is one.
int cmd_config_schema(bool markdown) {
    auto text = markdown ? config::config_key_reference() : config::config_json_schema();
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? kOk : kFatal;
}

}  // namespace prefsync::cli
