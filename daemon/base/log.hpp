#pragma once
// Superseded by logger.hpp (events with fields, text or JSON, journald priorities from the
// actual connection): kept only so code written against it on other branches still builds
// when merged. New log lines use base::logger().
//
// Log lines go to stderr; under systemd (journald connected: $JOURNAL_STREAM) each starts
// with "<N>" so journald files it at syslog priority N, and `journalctl -p warning` finds
// the failures among routine progress lines.
#include "daemon/base/logger.hpp"

namespace prefsync::base {

enum class Priority { Error = 3, Warning = 4, Info = 6 };

// "<3>" etc. under journald, "" elsewhere.
inline const char* priority_prefix(Priority p) {
    static const bool journald = journald_connected();  // fixed for the process's life
    if (!journald) return "";
    switch (p) {
        case Priority::Error: return "<3>";
        case Priority::Warning: return "<4>";
        case Priority::Info: return "<6>";
    }
    return "";
}

}  // namespace prefsync::base
