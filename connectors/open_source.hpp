#pragma once
// The one place that turns a job's `source:` into a Source; new connectors register here.
#include <memory>

#include "config/config.hpp"
#include "connectors/source.hpp"

namespace prefsync::connectors {

// Opens the source (reads a CSV header, connects to a database...). Throws SourceError.
std::unique_ptr<Source> open_source(const config::SourceConfig& config);

}  // namespace prefsync::connectors
