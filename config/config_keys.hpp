#pragma once
// The key tables of config's own sections (config/yaml/key_table.hpp): the top level, api,
// http, rate_limit, retry, journal, log, daemon, jobs and the mapping's value specs. The
// source and sink sections' tables belong to their connectors (connector_types.hpp).
//
// Adding a key: one line in its table here, then read it in config.cpp (or
// mapping_parser.cpp) with YamlReader::read, then `scripts/config-docs.py --write
// PREFSYNC_BINARY` to regenerate docs/prefsync.schema.json and the tables in config/README.md.
#include <string_view>

#include "config/yaml/key_table.hpp"

namespace prefsync::config {

// What a ValueType::Custom key holds, for the schema generator (config_schema.cpp).
namespace custom {
inline constexpr std::string_view kJob = "job";                        // a push or a pull job
inline constexpr std::string_view kSource = "source";                  // a source section, by type
inline constexpr std::string_view kSink = "sink";                      // a sink section, by type
inline constexpr std::string_view kMapping = "mapping";                // Profile (or archive) fields → value specs
inline constexpr std::string_view kFieldValue = "field_value";         // a value of the mapped field's type
inline constexpr std::string_view kFieldValueMap = "field_value_map";  // FROM: value of the field's type
inline constexpr std::string_view kDate = "date";                      // a date format, or {in, out}
inline constexpr std::string_view kSplitWith = "split_with";           // further fields of each split element
}  // namespace custom

const KeyTable& root_keys();
const KeyTable& api_keys();
const KeyTable& oauth_keys();
const KeyTable& http_keys();
const KeyTable& rate_limit_keys();
const KeyTable& retry_keys();
const KeyTable& journal_keys();
const KeyTable& log_keys();
const KeyTable& daemon_keys();
const KeyTable& push_job_keys();  // a job without `pull:`
const KeyTable& pull_job_keys();  // a job with `pull:`
const KeyTable& pull_keys();      // a pull job's `pull:` section
const KeyTable& search_keys();    // one of `pull.searches`
const KeyTable& identity_keys();
const KeyTable& value_keys();  // a mapped value written as a map: {column: c, normalize: ...}
const KeyTable& split_keys();  // a list built from one delimited column
const KeyTable& date_keys();   // date: {in: ..., out: ...}

}  // namespace prefsync::config
