#pragma once
// Runs one connector's section parser on a YAML snippet, as config would hand it the
// section, and collects what it reported as "file:line:column: key.path: message".
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::testing {

inline const std::string kSectionFile = "/etc/prefsync/section.yaml";

template <class T>
struct ParsedSection {
    T value;
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};

template <class Parse>
auto parse_section(const std::string& yaml, Parse parse, const std::string& key_path = "jobs.j.source") {
    const config::EnvLookup env = [](const std::string&) { return std::optional<std::string>(); };
    config::YamlReader reader(kSectionFile, env);
    auto value = parse(reader, YAML::Load(yaml), key_path);
    ParsedSection<decltype(value)> out{std::move(value), {}, reader.warnings()};
    for (const auto& d : reader.diagnostics()) out.errors.push_back(d.to_string());
    return out;
}

}  // namespace prefsync::testing
