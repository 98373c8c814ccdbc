#include "connectors/sink_config.hpp"

#include "connectors/member_or.hpp"

namespace prefsync::connectors {
namespace {

const std::string kNone;
const std::vector<SinkColumn> kNoColumns;

}  // namespace

std::string_view SinkConfig::type() const {
    return std::visit([](const auto& s) { return s.kType; }, settings);
}

const std::string& SinkConfig::path() const {
    return member_or(settings, kNone, [](const auto& s) -> decltype((s.path)) { return s.path; });
}

const std::string& SinkConfig::table() const {
    return member_or(settings, kNone, [](const auto& s) -> decltype((s.table)) { return s.table; });
}

const std::vector<SinkColumn>& SinkConfig::columns() const {
    return member_or(settings, kNoColumns, [](const auto& s) -> decltype((s.columns)) { return s.columns; });
}

const std::string& SinkConfig::each() const {
    return member_or(settings, kNone, [](const auto& s) -> decltype((s.each)) { return s.each; });
}

const std::string& SinkConfig::key() const {
    return member_or(settings, kNone, [](const auto& s) -> decltype((s.key)) { return s.key; });
}

}  // namespace prefsync::connectors
