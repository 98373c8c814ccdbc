#pragma once
// prefsync.yaml described for other tools, generated from the key tables the parsers check
// the file against (config/config_keys.hpp, the connectors' tables, the API's Profile
// schema), so the description cannot drift from what `check-config` accepts.
//
// Design constraints:
// - JSON Schema draft-07: what editors' yaml-language-server and most validators implement
//   best (if/then/else for the job kinds, connector types and modes).
// - The schema accepts every file check-config accepts, read by a YAML 1.2 core-schema
//   loader (as yaml-language-server reads it): a value that check-config reads as text
//   may arrive as a number or a boolean, and any value may be a ${VAR} / ${VAR:-default}
//   whose text is only known at run time. Where it cannot say what check-config checks
//   (columns in the source, cross-references, cron syntax) it is looser, never stricter;
//   config/README.md ("Editors and the JSON Schema") lists where.
// - Output is deterministic (keys in table order), so the committed copy
//   (docs/prefsync.schema.json) can be compared byte for byte.
#include <string>

namespace prefsync::config {

// The JSON Schema of the config file, pretty-printed, ending in a newline.
std::string config_json_schema();

// The key reference tables of config/README.md, each between
// "<!-- BEGIN keys: NAME -->" and "<!-- END keys: NAME -->" lines.
std::string config_key_reference();

}  // namespace prefsync::config
