#include "config/yaml/yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include "daemon/base/text.hpp"

namespace prefsync::config {

YamlReader::YamlReader(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {
    auto dir = std::filesystem::path(file_).parent_path();
    base_dir_ = dir.empty() ? std::filesystem::path(".") : dir;
}

std::string YamlReader::resolve_path(const std::string& path) const {
    if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (base_dir_ / path).lexically_normal().string();
}

SourcePos YamlReader::pos(const YAML::Node& node) const {
    SourcePos p{file_, 0, 0};
    if (node.IsDefined()) {
        auto mark = node.Mark();
        if (mark.line >= 0) p.line = mark.line + 1;
        if (mark.column >= 0) p.column = mark.column + 1;
    }
    return p;
}

void YamlReader::error(const YAML::Node& node, const std::string& path, std::string message) {
    error(pos(node), path, std::move(message));
}

void YamlReader::error(const SourcePos& p, const std::string& path, std::string message) {
    diagnostics_.push_back({p, path, std::move(message)});
}

bool YamlReader::expect_map(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) return true;
    error(node, path, node.IsNull() ? "is empty; expected a mapping of keys"
                                    : "expected a mapping of keys");
    return false;
}

std::vector<std::pair<std::string, YAML::Node>> YamlReader::entries(const YAML::Node& map,
                                                                    const std::string& path) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) {
            error(it->first, path, "keys must be plain strings");
            continue;
        }
        auto key = it->first.Scalar();
        std::string key_path = path.empty() ? key : path + "." + key;
        if (!seen.insert(key).second) {
            error(it->first, key_path, "duplicate key");
            continue;
        }
        out.emplace_back(key, it->second);
    }
    return out;
}

void YamlReader::check_keys(const YAML::Node& map, const std::string& path,
                            const std::vector<std::string_view>& allowed) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) continue;
        auto key = it->first.Scalar();
        std::string key_path = path.empty() ? key : path + "." + key;
        if (!seen.insert(key).second) {
            error(it->first, key_path, "duplicate key");
            continue;
        }
        if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
        std::string message = "unknown key";
        auto hint = base::suggest(key, std::vector<std::string_view>(allowed));
        if (!hint.empty()) message += " (did you mean \"" + hint + "\"?)";
        std::string valid;
        for (auto a : allowed) valid += (valid.empty() ? "" : ", ") + std::string(a);
        message += "; valid keys here: " + valid;
        error(it->first, key_path, message);
    }
}

std::optional<std::string> YamlReader::interpolate(const std::string& raw, const YAML::Node& node,
                                                   const std::string& path) {
    if (raw.find('$') == std::string::npos) return raw;
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '$') {
            out += raw[i];
            continue;
        }
        if (i + 1 < raw.size() && raw[i + 1] == '$') {  // "$$" is a literal "$"
            out += '$';
            ++i;
            continue;
        }
        if (i + 1 >= raw.size() || raw[i + 1] != '{') {
            out += '$';
            continue;
        }
        auto close = raw.find('}', i + 2);
        if (close == std::string::npos) {
            error(node, path, "unterminated ${...} (write $$ for a literal $)");
            return std::nullopt;
        }
        std::string expr = raw.substr(i + 2, close - i - 2);
        std::optional<std::string> fallback;
        if (auto dash = expr.find(":-"); dash != std::string::npos) {
            fallback = expr.substr(dash + 2);
            expr.resize(dash);
        }
        auto valid_name = !expr.empty() && std::all_of(expr.begin(), expr.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        });
        if (!valid_name) {
            error(node, path, "invalid environment variable name in ${" + expr + "}");
            return std::nullopt;
        }
        auto value = env_(expr);
        if (!value || (value->empty() && fallback)) value = fallback;
        if (!value) {
            error(node, path, "environment variable " + expr +
                                  " is not set (use ${" + expr + ":-default} for a default)");
            return std::nullopt;
        }
        out += *value;
        i = close;
    }
    return out;
}

std::optional<std::string> YamlReader::string(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
        error(node, path, node.IsNull() ? "is empty; expected a value" : "expected a single value");
        return std::nullopt;
    }
    return interpolate(node.Scalar(), node, path);
}

std::optional<std::string> YamlReader::required_string(const YAML::Node& map, const std::string& path,
                                                       const char* key, std::string_view why) {
    if (auto v = map[key]) return string(v, path + "." + key);
    error(map, path + "." + key, "is required (" + std::string(why) + ")");
    return std::nullopt;
}

void YamlReader::optional_string(const YAML::Node& map, const std::string& path, const char* key,
                                 std::string& out) {
    if (auto v = map[key])
        if (auto s = string(v, path + "." + key)) out = *s;
}

std::optional<long long> YamlReader::integer(const YAML::Node& node, const std::string& path,
                                             long long min, long long max) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    long long value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size()) {
        error(node, path, "expected a whole number, got \"" + *text + "\"");
        return std::nullopt;
    }
    if (value < min || value > max) {
        error(node, path, "must be between " + std::to_string(min) + " and " +
                              std::to_string(max) + ", got " + *text);
        return std::nullopt;
    }
    return value;
}

std::optional<double> YamlReader::number(const YAML::Node& node, const std::string& path,
                                         double min) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    double value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size()) {
        error(node, path, "expected a number, got \"" + *text + "\"");
        return std::nullopt;
    }
    if (value < min) {
        error(node, path, "must be at least " + std::to_string(min) + ", got " + *text);
        return std::nullopt;
    }
    return value;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& node, const std::string& path) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    if (*text == "true" || *text == "yes" || *text == "on") return true;
    if (*text == "false" || *text == "no" || *text == "off") return false;
    error(node, path, "expected true or false, got \"" + *text + "\"");
    return std::nullopt;
}

std::optional<Duration> YamlReader::duration(const YAML::Node& node, const std::string& path) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d) error(node, path, "expected a duration such as 500ms, 10s, 5m, 1h or 1d, got \"" +
                                  *text + "\"");
    return d;
}

std::optional<std::size_t> YamlReader::size(const YAML::Node& node, const std::string& path) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    auto s = parse_size(*text);
    if (!s) error(node, path, "expected a size such as 512KiB, 8MiB or 1GiB, got \"" + *text + "\"");
    return s;
}

std::optional<std::vector<std::string>> YamlReader::string_list(const YAML::Node& node,
                                                                const std::string& path) {
    if (!node.IsSequence()) {
        error(node, path, "expected a list");
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < node.size(); ++i) {
        auto s = string(node[i], path + "[" + std::to_string(i) + "]");
        if (!s) return std::nullopt;
        out.push_back(*s);
    }
    return out;
}

}  // namespace prefsync::config
