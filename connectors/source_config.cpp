#include "connectors/source_config.hpp"

#include <type_traits>

#include "connectors/member_or.hpp"

namespace prefsync::connectors {

std::string_view SourceConfig::type() const {
    return std::visit([](const auto& s) { return s.kType; }, settings);
}

const std::string& SourceConfig::path() const {
    static const std::string none;
    return member_or(settings, none, [](const auto& s) -> decltype((s.path)) { return s.path; });
}

const SqlReadConfig* SourceConfig::sql() const {
    return std::visit(
        [](const auto& s) -> const SqlReadConfig* {
            if constexpr (std::is_base_of_v<SqlReadConfig, std::decay_t<decltype(s)>>)
                return &s;
            else
                return nullptr;
        },
        settings);
}

const IncrementalConfig* SourceConfig::incremental() const {
    const auto* read = sql();
    return read && read->incremental ? &*read->incremental : nullptr;
}

}  // namespace prefsync::connectors
