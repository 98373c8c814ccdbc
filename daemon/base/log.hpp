#pragma once
// Log lines go to stderr; under systemd (journald connected: $JOURNAL_STREAM) each starts
// with "<N>" so journald files it at syslog priority N, and `journalctl -p warning` finds
// the failures among routine progress lines.
#include <cstdlib>

namespace prefsync::base {

enum class Priority { Error = 3, Warning = 4, Info = 6 };

// "<3>" etc. under journald, "" elsewhere.
inline const char* priority_prefix(Priority p) {
    static const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;  // fixed for the process's life
    if (!journald) return "";
    switch (p) {
        case Priority::Error: return "<3>";
        case Priority::Warning: return "<4>";
        case Priority::Info: return "<6>";
    }
    return "";
}

}  // namespace prefsync::base
