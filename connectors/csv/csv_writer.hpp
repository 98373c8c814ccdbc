#pragma once
// RFC 4180 output: a field is quoted when it holds the delimiter, a quote, CR or LF, or
// starts or ends with a space (which readers would otherwise trim); quotes are doubled.
#include <string>
#include <string_view>

namespace prefsync::connectors {

inline void append_csv_field(std::string& out, std::string_view field, char delimiter = ',') {
    bool quote = !field.empty() && (field.front() == ' ' || field.back() == ' ');
    for (char c : field)
        if (c == delimiter || c == '"' || c == '\n' || c == '\r') quote = true;
    if (!quote) {
        out.append(field);
        return;
    }
    out += '"';
    for (char c : field) {
        if (c == '"') out += '"';
        out += c;
    }
    out += '"';
}

}  // namespace prefsync::connectors
