#include "config/yaml/yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>
#include <set>
#include <stdexcept>

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
    error(node, path, node.IsNull() ? "is empty; expected a mapping of keys" : "expected a mapping of keys");
    return false;
}

std::vector<std::pair<std::string, YAML::Node>> YamlReader::entries(const YAML::Node& map, const std::string& path) {
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

void YamlReader::check_keys(const YAML::Node& map, const std::string& path, const KeyTable& table) {
    auto join = [&](std::string_view key) { return path.empty() ? std::string(key) : path + "." + std::string(key); };
    const auto allowed = table.names();
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
        if (!it->first.IsScalar()) continue;
        auto key = it->first.Scalar();
        if (!seen.insert(key).second) {
            error(it->first, join(key), "duplicate key");
            continue;
        }
        const KeySpec* spec = table.find(key);
        if (spec && spec->type == ValueType::Refused) {
            error(it->first, join(key), std::string(spec->description));
            continue;
        }
        if (spec) continue;
        std::string message = "unknown key";
        auto hint = base::suggest(key, allowed);
        if (!hint.empty()) message += " (did you mean \"" + hint + "\"?)";
        message += "; valid keys here: " + join_alternatives(allowed, ", ");
        error(it->first, join(key), message);
    }
    for (const auto& spec : table.keys)
        if (!spec.required.empty() && !map[std::string(spec.name)])
            error(map, join(spec.name), "is required (" + std::string(spec.required) + ")");
    for (const auto& rule : table.rules) check_rule(map, path, rule);
}

void YamlReader::check_rule(const YAML::Node& map, const std::string& path, const KeyRule& rule) {
    std::vector<std::string> names;  // each alternative as written in messages: "a + b"
    std::vector<std::string_view> given;
    for (const auto& alternative : rule.alternatives()) {
        std::string name;
        std::vector<std::string_view> present;
        for (auto key : alternative) {
            name += (name.empty() ? "" : " + ") + std::string(key);
            if (map[std::string(key)]) present.push_back(key);
        }
        if (!present.empty() && present.size() < alternative.size())
            error(map, path, join_alternatives(alternative, " and ") + " go together");
        names.push_back(name);
        if (!present.empty()) given.push_back(names.back());
    }
    std::vector<std::string_view> all(names.begin(), names.end());
    switch (rule.kind) {
        case KeyRule::Kind::Together: break;
        case KeyRule::Kind::AtMostOne:
            if (given.size() > 1) error(map, path, "give at most one of " + join_alternatives(all, ", "));
            break;
        case KeyRule::Kind::ExactlyOne:
            if (given.size() > 1)
                error(map, path, "give exactly one of " + join_alternatives(all, ", "));
            else if (given.empty() && !rule.none_checked_later)
                error(map, path, "give " + join_alternatives(all));
            break;
    }
}

void YamlReader::type_mismatch(const KeySpec& key) {
    throw std::logic_error("config key " + std::string(key.name) + " is read into a variable of another type");
}

bool YamlReader::one_of(const YAML::Node& node, const std::string& path, const KeySpec& key, const std::string& text) {
    auto values = key.value_list();
    if (std::find(values.begin(), values.end(), text) != values.end()) return true;
    if (!key.pattern.empty() && std::regex_match(text, std::regex(std::string(key.pattern)))) return true;
    std::string message = "expected " + join_alternatives(values);
    if (!key.pattern.empty()) message += ", or a value matching " + std::string(key.pattern);
    message += ", got \"" + text + "\"";
    auto hint = base::suggest(text, values);
    if (!hint.empty()) message += " (did you mean \"" + hint + "\"?)";
    error(node, path, message);
    return false;
}

std::optional<YamlReader::Value> YamlReader::value(const YAML::Node& node, const std::string& path,
                                                   const KeySpec& key) {
    auto wrap = [](auto v) -> std::optional<Value> {
        if (!v) return std::nullopt;
        return Value(std::move(*v));
    };
    switch (key.type) {
        case ValueType::String: return wrap(string(node, path));
        case ValueType::Path: {
            auto s = string(node, path);
            if (s) *s = resolve_path(*s);
            return wrap(std::move(s));
        }
        case ValueType::Integer:
            return wrap(integer(node, path, static_cast<long long>(key.min), static_cast<long long>(key.max)));
        case ValueType::Number: return wrap(number(node, path, key.min));
        case ValueType::Boolean: return wrap(boolean(node, path));
        case ValueType::Duration: return wrap(duration(node, path));
        case ValueType::Size: return wrap(size(node, path));
        case ValueType::Enum: {
            auto s = string(node, path);
            if (s && !one_of(node, path, key, *s)) return std::nullopt;
            return wrap(std::move(s));
        }
        case ValueType::EnumList: {
            std::vector<std::string> out;
            bool ok = true;
            auto add = [&](const YAML::Node& item) {
                auto s = string(item, path);
                if (s && one_of(item, path, key, *s))
                    out.push_back(*s);
                else
                    ok = false;
            };
            if (node.IsSequence()) {
                for (std::size_t i = 0; i < node.size(); ++i) add(node[i]);
            } else {
                add(node);
            }
            return ok ? std::optional<Value>(std::move(out)) : std::nullopt;
        }
        case ValueType::StringList: return wrap(string_list(node, path));
        default: break;
    }
    throw std::logic_error("config key " + std::string(key.name) + " is not a value read() can read");
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
            error(node, path,
                  "environment variable " + expr + " is not set (use ${" + expr + ":-default} for a default)");
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

std::optional<long long> YamlReader::integer(const YAML::Node& node, const std::string& path, long long min,
                                             long long max) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    long long value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size()) {
        error(node, path, "expected a whole number, got \"" + *text + "\"");
        return std::nullopt;
    }
    if (value < min || value > max) {
        error(node, path, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + *text);
        return std::nullopt;
    }
    return value;
}

std::optional<double> YamlReader::number(const YAML::Node& node, const std::string& path, double min) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    double value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    // from_chars also reads "inf" and "nan", which no setting means (and nan passes `min`).
    if (ec != std::errc() || end != text->data() + text->size() || !std::isfinite(value)) {
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
    if (!d) error(node, path, "expected a duration such as 500ms, 10s, 5m, 1h or 1d, got \"" + *text + "\"");
    return d;
}

std::optional<std::size_t> YamlReader::size(const YAML::Node& node, const std::string& path) {
    auto text = string(node, path);
    if (!text) return std::nullopt;
    auto s = parse_size(*text);
    if (!s) error(node, path, "expected a size such as 512KiB, 8MiB or 1GiB, got \"" + *text + "\"");
    return s;
}

std::optional<std::vector<std::string>> YamlReader::string_list(const YAML::Node& node, const std::string& path) {
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
