#pragma once
// Reading a member that only some alternatives of a settings variant have, for the
// accessors of SourceConfig and SinkConfig.
#include <type_traits>
#include <variant>

namespace prefsync::connectors {

// What `get` returns for the alternative `settings` holds when `get` accepts it, else
// `none`. `get` must be SFINAE-friendly: [](const auto& s) -> decltype((s.path)) { return s.path; }.
template <class T, class Variant, class Get>
const T& member_or(const Variant& settings, const T& none, Get get) {
    return std::visit(
        [&](const auto& s) -> const T& {
            if constexpr (std::is_invocable_v<Get, decltype(s)>)
                return get(s);
            else
                return none;
        },
        settings);
}

}  // namespace prefsync::connectors
