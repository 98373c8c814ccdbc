#pragma once
// Wall-clock time as the journal stores it: milliseconds since the Unix epoch. Code that
// must be tested on fake time takes a clock instead of calling this.
#include <chrono>
#include <cstdint>
#include <string>

namespace prefsync::base {

using Millis = std::int64_t;  // milliseconds since the Unix epoch

inline Millis now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// "2026-12-01T02:00:00Z"; "-" for 0 or less (never happened).
std::string iso_utc(Millis ms);
// "2026-12-01 03:00:00 CET": what an operator reads in a log or `status`.
std::string local_time(Millis ms);

}  // namespace prefsync::base
