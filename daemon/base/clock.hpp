#pragma once
// Wall-clock time as the journal stores it: milliseconds since the Unix epoch. Code that
// must be tested on fake time takes a clock instead of calling this.
#include <chrono>
#include <cstdint>

namespace prefsync::base {

using Millis = std::int64_t;  // milliseconds since the Unix epoch

inline Millis now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace prefsync::base
