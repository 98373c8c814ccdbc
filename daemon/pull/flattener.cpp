#include "daemon/pull/flattener.hpp"

#include <charconv>

namespace prefsync::pull {

namespace dom = simdjson::dom;

namespace {

// The boolean or number a filter value also stands for ("true", "1", "1.0", "-2e3").
void read_filter_value(Flattener::Step& step) {
    const auto& v = step.filter_value;
    if (v == "true" || v == "false") step.filter_bool = v == "true";
    const char* end = v.data() + v.size();
    std::int64_t i = 0;
    if (auto [p, ec] = std::from_chars(v.data(), end, i); ec == std::errc() && p == end) step.filter_integer = i;
    double d = 0;
    if (auto [p, ec] = std::from_chars(v.data(), end, d); !v.empty() && ec == std::errc() && p == end)
        step.filter_number = d;
}

// Whether an element's filter field holds the filter's value: the same string, the same
// boolean, or a number of the same value (integers exactly, others as doubles: 1 = 1.0).
bool filter_matches(dom::element field, const Flattener::Step& step) {
    switch (field.type()) {
        case dom::element_type::STRING: return field.get_string().value_unsafe() == step.filter_value;
        case dom::element_type::BOOL: return step.filter_bool && field.get_bool().value_unsafe() == *step.filter_bool;
        case dom::element_type::INT64:
            if (step.filter_integer) return field.get_int64().value_unsafe() == *step.filter_integer;
            return step.filter_number && field.get_double().value_unsafe() == *step.filter_number;
        case dom::element_type::UINT64:
            if (step.filter_integer)
                return *step.filter_integer >= 0 &&
                       field.get_uint64().value_unsafe() == static_cast<std::uint64_t>(*step.filter_integer);
            return step.filter_number && field.get_double().value_unsafe() == *step.filter_number;
        case dom::element_type::DOUBLE:
            return step.filter_number && field.get_double().value_unsafe() == *step.filter_number;
        default: return false;
    }
}

}  // namespace

std::optional<Flattener::Path> parse_json_path(std::string_view text, std::string& error) {
    Flattener::Path path;
    if (text.starts_with("@.")) {
        path.relative = true;
        text.remove_prefix(2);
    } else if (text == "@") {
        path.relative = true;
        return path;
    }
    std::size_t i = 0;
    while (i < text.size()) {
        Flattener::Step step;
        while (i < text.size() && text[i] != '.' && text[i] != '[') step.name += text[i++];
        if (step.name.empty()) {
            error = "empty name in path \"" + std::string(text) + "\"";
            return std::nullopt;
        }
        if (i < text.size() && text[i] == '[') {
            auto close = text.find(']', i);
            if (close == std::string_view::npos) {
                error = "unclosed [ in path \"" + std::string(text) + "\"";
                return std::nullopt;
            }
            auto inside = text.substr(i + 1, close - i - 1);
            auto eq = inside.find('=');
            if (eq != std::string_view::npos) {
                step.filter_key = std::string(inside.substr(0, eq));
                step.filter_value = std::string(inside.substr(eq + 1));
                read_filter_value(step);
            } else {
                std::size_t n = 0;
                auto [end, ec] = std::from_chars(inside.data(), inside.data() + inside.size(), n);
                if (ec != std::errc() || end != inside.data() + inside.size()) {
                    error = "expected [N] or [Key=Value] in path \"" + std::string(text) + "\"";
                    return std::nullopt;
                }
                step.index = n;
            }
            i = close + 1;
        }
        path.steps.push_back(std::move(step));
        if (i < text.size()) {
            if (text[i] != '.') {
                error = "expected . after ] in path \"" + std::string(text) + "\"";
                return std::nullopt;
            }
            ++i;
        }
    }
    return path;
}

Flattener Flattener::compile(const config::SinkConfig& sink) {
    Flattener f;
    std::vector<config::Diagnostic> problems;
    for (const auto& c : sink.columns()) {
        std::string error;
        auto path = parse_json_path(c.path, error);
        if (!path) {
            problems.push_back({c.pos, sink.key_path + ".columns." + c.name, error});
            continue;
        }
        if (path->relative && sink.each().empty())
            problems.push_back({c.pos, sink.key_path + ".columns." + c.name, "@. paths need sink.each"});
        f.names_.push_back(c.name);
        f.paths_.push_back(std::move(*path));
    }
    if (!sink.each().empty()) {
        std::string error;
        f.each_ = parse_json_path(sink.each(), error);
        if (!f.each_) problems.push_back({sink.pos, sink.key_path + ".each", error});
    }
    if (!problems.empty()) throw config::ConfigError(std::move(problems));
    return f;
}

namespace {

std::optional<dom::element> walk(dom::element at, const Flattener::Path& path) {
    for (const auto& step : path.steps) {
        dom::object obj;
        if (at.get_object().get(obj)) return std::nullopt;
        if (obj[step.name].get(at)) return std::nullopt;
        if (step.index || !step.filter_key.empty()) {
            dom::array arr;
            if (at.get_array().get(arr)) return std::nullopt;
            bool found = false;
            std::size_t i = 0;
            for (dom::element e : arr) {
                if (step.index) {
                    found = i++ == *step.index;
                } else {
                    dom::element v;
                    found = !e[step.filter_key].get(v) && filter_matches(v, step);
                }
                if (found) {
                    at = e;
                    break;
                }
            }
            if (!found) return std::nullopt;
        }
    }
    return at;
}

std::optional<std::string> text_of(const std::optional<dom::element>& e) {
    if (!e || e->is_null()) return std::nullopt;
    std::string_view s;
    if (!e->get_string().get(s)) return std::string(s);
    return simdjson::minify(*e);
}

}  // namespace

std::string Flattener::rows(std::string_view profile_json, std::vector<OutputRow>& out) {
    dom::element root;
    if (auto e = parser_.parse(profile_json).get(root)) return std::string("not JSON: ") + simdjson::error_message(e);
    auto row_for = [&](std::optional<dom::element> element) {
        OutputRow row;
        row.reserve(paths_.size());
        for (const auto& p : paths_)
            row.push_back(text_of(p.relative ? (element ? walk(*element, p) : std::nullopt) : walk(root, p)));
        out.push_back(std::move(row));
    };
    if (!each_) {
        row_for(std::nullopt);
        return "";
    }
    auto list = walk(root, *each_);
    dom::array arr;
    if (!list || list->get_array().get(arr)) return "";
    for (dom::element e : arr) row_for(e);
    return "";
}

}  // namespace prefsync::pull
