#include "config/connector_types.hpp"

#include <array>
#include <type_traits>

#include "connectors/csv/csv_config.hpp"
#include "connectors/jsonl/jsonl_config.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/sqlite/sqlite_config.hpp"

namespace prefsync::config {
namespace {

template <class Settings, auto parse>
Settings parse_as(YamlReader& r, const YAML::Node& n, const std::string& p) {
    return parse(r, n, p);
}

// The type's name is the one its settings report (SourceConfig::type()), so the two agree.
template <class Settings, auto parse, auto keys>
constexpr ConnectorType<Settings> connector() {
    using Parsed = std::invoke_result_t<decltype(parse), YamlReader&, const YAML::Node&, const std::string&>;
    return {Parsed::kType, parse_as<Settings, parse>, keys};
}

using connectors::SinkSettings;
using connectors::SourceSettings;

const std::array<ConnectorType<SourceSettings>, 3> kSourceTypes{
    connector<SourceSettings, connectors::parse_csv_source, connectors::csv_source_keys>(),
    connector<SourceSettings, connectors::parse_sqlite_source, connectors::sqlite_source_keys>(),
    connector<SourceSettings, connectors::parse_postgres_source, connectors::postgres_source_keys>(),
};
const std::array<ConnectorType<SinkSettings>, 4> kSinkTypes{
    connector<SinkSettings, connectors::parse_csv_sink, connectors::csv_sink_keys>(),
    connector<SinkSettings, connectors::parse_jsonl_sink, connectors::jsonl_sink_keys>(),
    connector<SinkSettings, connectors::parse_sqlite_sink, connectors::sqlite_sink_keys>(),
    connector<SinkSettings, connectors::parse_postgres_sink, connectors::postgres_sink_keys>(),
};

}  // namespace

std::span<const ConnectorType<SourceSettings>> source_types() {
    return kSourceTypes;
}
std::span<const ConnectorType<SinkSettings>> sink_types() {
    return kSinkTypes;
}

}  // namespace prefsync::config
