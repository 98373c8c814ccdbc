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
// - Knows nothing of prefsync's keys: each section's KeyTable (key_table.hpp) says what is
//   allowed, required and of which type, and the reader checks the YAML against it.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/env.hpp"
#include "config/yaml/key_table.hpp"
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
    // Checks a section against its table: keys the table does not have (typo protection,
    // with a suggestion), Refused keys, duplicates, required keys that are missing, and the
    // table's rules. The values are checked as they are read (read()).
    void check_keys(const YAML::Node& map, const std::string& path, const KeyTable& table);

    // map[key] as the table's entry says: converted, range- and value-checked, a Path
    // resolved. Absent or invalid (reported): returns false and leaves `out`, the struct's
    // default. `out` must suit the key's type (an arithmetic for numbers, Duration, a
    // string, a vector of strings); a mismatch throws std::logic_error.
    template <class T>
    bool read(const YAML::Node& map, const std::string& path, const KeySpec& key, T& out);
    // The key nodes of a map, in file order, each once; reports duplicates.
    std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& map, const std::string& path);

    // Scalars, after ${ENV} interpolation.
    std::optional<std::string> string(const YAML::Node& node, const std::string& path);
    std::optional<long long> integer(const YAML::Node& node, const std::string& path, long long min, long long max);
    std::optional<double> number(const YAML::Node& node, const std::string& path, double min);
    std::optional<bool> boolean(const YAML::Node& node, const std::string& path);
    std::optional<Duration> duration(const YAML::Node& node, const std::string& path);
    std::optional<std::size_t> size(const YAML::Node& node, const std::string& path);
    std::optional<std::vector<std::string>> string_list(const YAML::Node& node, const std::string& path);

private:
    using Value = std::variant<bool, long long, double, Duration, std::size_t, std::string, std::vector<std::string>>;
    std::optional<Value> value(const YAML::Node& node, const std::string& path, const KeySpec& key);
    bool one_of(const YAML::Node& node, const std::string& path, const KeySpec& key, const std::string& text);
    void check_rule(const YAML::Node& map, const std::string& path, const KeyRule& rule);
    [[noreturn]] static void type_mismatch(const KeySpec& key);

    std::optional<std::string> interpolate(const std::string& raw, const YAML::Node& node, const std::string& path);

    std::string file_;
    std::filesystem::path base_dir_;
    const EnvLookup& env_;
    std::vector<Diagnostic> diagnostics_;
    std::vector<std::string> warnings_;
};

template <class T>
bool YamlReader::read(const YAML::Node& map, const std::string& path, const KeySpec& key, T& out) {
    YAML::Node node = map[std::string(key.name)];
    if (!node) return false;
    auto v = value(node, path.empty() ? std::string(key.name) : path + "." + std::string(key.name), key);
    if (!v) return false;
    std::visit(
        [&](auto& x) {
            using X = std::decay_t<decltype(x)>;
            // bool converts to and from every arithmetic type: keep it apart.
            if constexpr (std::is_same_v<T, bool> != std::is_same_v<X, bool>)
                type_mismatch(key);
            else if constexpr (std::is_arithmetic_v<T> && std::is_arithmetic_v<X>)
                out = static_cast<T>(x);
            else if constexpr (std::is_assignable_v<T&, X&&>)
                out = std::move(x);
            else
                type_mismatch(key);
        },
        *v);
    return true;
}

}  // namespace prefsync::config
