#include "connectors/open_source.hpp"

#include "connectors/csv/csv_source.hpp"

namespace prefsync::connectors {

std::unique_ptr<Source> open_source(const config::SourceConfig& config) {
    if (config.type == "csv") return std::make_unique<CsvSource>(config);
    throw SourceError("source type \"" + config.type + "\" is not supported");
}

}  // namespace prefsync::connectors
