#pragma once
// What several fuzz targets share: a failed property aborts (so libFuzzer reports it with
// the input), the example files, and an environment with the variables the example uses.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "config/config.hpp"

// A property of the code under test; when it does not hold, the input is a finding.
#define FUZZ_REQUIRE(condition) \
    ((condition) ? void() : ::prefsync::fuzz::require_failed(#condition, __FILE__, __LINE__))

namespace prefsync::fuzz {

inline void require_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
    std::abort();
}

inline std::string read_source_file(const std::string& relative) {
    std::ifstream in(std::string(PREFSYNC_SOURCE_DIR) + "/" + relative, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// Set variables for ${VAR}; everything else is unset (one way to fail).
inline config::EnvLookup fake_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        if (name == "PREFSYNC_TOKEN" || name == "T") return "token";
        if (name == "PREFSYNC_RATE") return "50";
        if (name == "PREFSYNC_BASE_URL") return "http://127.0.0.1:8080/Profiles/v2";
        if (name == "EMPTY") return "";
        return std::nullopt;
    };
}

// The header of examples/profiles.csv: the columns the example mapping reads.
inline std::vector<std::string> example_columns() {
    std::string text = read_source_file("examples/profiles.csv");
    std::string header = text.substr(0, text.find_first_of("\r\n"));
    std::vector<std::string> columns;
    std::size_t start = 0;
    for (std::size_t comma; (comma = header.find(',', start)) != std::string::npos; start = comma + 1)
        columns.push_back(header.substr(start, comma - start));
    columns.push_back(header.substr(start));
    return columns;
}

}  // namespace prefsync::fuzz
