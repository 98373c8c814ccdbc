#include "config/yaml/units.hpp"

#include <charconv>

namespace prefsync::config {

std::optional<Duration> parse_duration(std::string_view text) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data() || value < 0) return std::nullopt;
    std::string_view unit(end, text.data() + text.size() - end);
    if (unit == "ms") return Duration(value);
    if (unit == "s") return std::chrono::seconds(value);
    if (unit == "m") return std::chrono::minutes(value);
    if (unit == "h") return std::chrono::hours(value);
    if (unit == "d") return std::chrono::hours(24 * value);
    return std::nullopt;
}

std::optional<std::size_t> parse_size(std::string_view text) {
    unsigned long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    std::string_view unit(end, text.data() + text.size() - end);
    if (unit.empty() || unit == "B") return value;
    if (unit == "KiB") return value << 10;
    if (unit == "MiB") return value << 20;
    if (unit == "GiB") return value << 30;
    return std::nullopt;
}

}  // namespace prefsync::config
