#pragma once
// The one place that turns a job's `source:` into a Source; new connectors register here
// (and in SourceSettings, connectors/source_config.hpp).
#include <memory>
#include <optional>
#include <string>

#include "connectors/source.hpp"
#include "connectors/source_config.hpp"

namespace prefsync::connectors {

// Opens the source (reads a CSV header, connects to a database...). An incremental source
// given `since` reads only rows at or past it (minus the configured overlap).
// Throws SourceError, or config::ConfigError when a configured password cannot be read.
std::unique_ptr<Source> open_source(const SourceConfig& config, const std::optional<Position>& since = std::nullopt);

// What a stored position belongs to: the source's type, database file, table or query and
// incremental columns. A position stored under another identity is not used (the job's
// source changed, so it starts over; change detection keeps that from re-sending).
std::string position_identity(const SourceConfig& config);

}  // namespace prefsync::connectors
