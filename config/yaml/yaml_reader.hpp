#pragma once
// Typed, position-aware reading of yaml-cpp nodes: the toolkit config and every connector
// parse their sections with.
//
// Design constraints:
// - Every accessor records a Diagnostic (file:line:column, key path) on failure and returns
//   nullopt, so parsing goes on and the user sees every problem at once.
// - Scalars are read after ${VAR} / ${VAR:-default} interpolation from an injected
//   environment; relative paths resolve against the config file's directory, so a config
//   means the same whatever the working directory of the process.
// - Knows nothing of prefsync's keys: callers name what is allowed and required.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/env.hpp"
#include "config/yaml/units.hpp"

namespace prefsync::config {

class YamlReader {
public:
    YamlReader(std::string file, const EnvLookup& env);

    SourcePos pos(const YAML::Node& node) const;
    void error(const YAML::Node& node, const std::string& path, std::string message);
    void error(const SourcePos& pos, const std::string& path, std::string message);
    std::vector<Diagnostic>& diagnostics() { return diagnostics_; }
    // Things that work but deserve attention (a password in a conninfo); never fatal.
    void warn(std::string message) { warnings_.push_back(std::move(message)); }
    std::vector<std::string>& warnings() { return warnings_; }
    const std::string& file() const { return file_; }
    // `path` as written in the config, made absolute against the config file's directory.
    std::string resolve_path(const std::string& path) const;

    bool expect_map(const YAML::Node& node, const std::string& path);
    // Reports keys not in `allowed` (typo protection, with a suggestion) and duplicates.
    void check_keys(const YAML::Node& map, const std::string& path,
                    const std::vector<std::string_view>& allowed);
    // The key nodes of a map, in file order, each once; reports duplicates.
    std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& map,
                                                            const std::string& path);

    // Scalars, after ${ENV} interpolation.
    std::optional<std::string> string(const YAML::Node& node, const std::string& path);
    std::optional<long long> integer(const YAML::Node& node, const std::string& path,
                                     long long min, long long max);
    std::optional<double> number(const YAML::Node& node, const std::string& path, double min);
    std::optional<bool> boolean(const YAML::Node& node, const std::string& path);
    std::optional<Duration> duration(const YAML::Node& node, const std::string& path);
    std::optional<std::size_t> size(const YAML::Node& node, const std::string& path);
    std::optional<std::vector<std::string>> string_list(const YAML::Node& node,
                                                        const std::string& path);

    // map[key] as a string; when the key is absent, reports "is required (<why>)" on it.
    std::optional<std::string> required_string(const YAML::Node& map, const std::string& path,
                                               const char* key, std::string_view why);
    // map[key] into `out` when present.
    void optional_string(const YAML::Node& map, const std::string& path, const char* key,
                         std::string& out);

    // Convenience: read map[key] into `out` when present.
    template <class T, class Fn>
    void optional_field(const YAML::Node& map, const std::string& path, const char* key,
                        T& out, Fn&& read) {
        YAML::Node value = map[key];
        if (!value) return;
        if (auto v = read(value, path + "." + key)) out = static_cast<T>(*v);
    }

private:
    std::optional<std::string> interpolate(const std::string& raw, const YAML::Node& node,
                                           const std::string& path);

    std::string file_;
    std::filesystem::path base_dir_;
    const EnvLookup& env_;
    std::vector<Diagnostic> diagnostics_;
    std::vector<std::string> warnings_;
};

}  // namespace prefsync::config
