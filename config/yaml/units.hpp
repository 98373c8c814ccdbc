#pragma once
// The text forms of durations, sizes and ports that config values use ("5m", "8MiB", "9464").
//
// Design constraints:
// - Pure functions of the text: nullopt when malformed, never an exception, so the YAML
//   reader reports the key and position and goes on.
// - Here, below connectors and config, because both read such values.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace prefsync::config {

using Duration = std::chrono::milliseconds;

// The longest duration accepted: 100 years. Durations are added to clock readings, and
// nanosecond clocks overflow about 292 years from their epoch.
inline constexpr Duration kMaxDuration = std::chrono::hours(24 * 36'500);
// "10s", "500ms", "5m", "1h", "2d" → milliseconds; nullopt when malformed or over kMaxDuration.
std::optional<Duration> parse_duration(std::string_view text);
// "8MiB", "512KiB", "1GiB", "100" (bytes) → bytes; nullopt when malformed or over SIZE_MAX.
std::optional<std::size_t> parse_size(std::string_view text);
// A TCP port, "0" to "65535" (decimal digits only); nullopt otherwise.
std::optional<std::uint16_t> parse_port(std::string_view text);

}  // namespace prefsync::config
