#pragma once
// The text forms of durations and sizes that config values use ("5m", "8MiB").
//
// Design constraints:
// - Pure functions of the text: nullopt when malformed, never an exception, so the YAML
//   reader reports the key and position and goes on.
// - Here, below connectors and config, because both read such values.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string_view>

namespace prefsync::config {

using Duration = std::chrono::milliseconds;

// "10s", "500ms", "5m", "1h", "2d" → milliseconds; nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);
// "8MiB", "512KiB", "1GiB", "100" (bytes) → bytes; nullopt when malformed.
std::optional<std::size_t> parse_size(std::string_view text);

}  // namespace prefsync::config
