#include "daemon/pull/response_reader.hpp"

#include <charconv>

namespace prefsync::pull {

namespace od = simdjson::ondemand;

namespace {

// raw_json() runs to the next token, so it ends with whatever space came before it.
std::string_view without_trailing_space(std::string_view raw) {
    return raw.substr(0, raw.find_last_not_of(" \t\r\n") + 1);
}

}  // namespace

std::optional<std::int64_t> ResponseReader::profile_id(std::string_view object_json) {
    // raw_json() views point into body_, which keeps its SIMDJSON_PADDING.
    od::document doc;
    if (inner_.iterate(object_json.data(), object_json.size(), object_json.size() + simdjson::SIMDJSON_PADDING)
            .get(doc))
        return std::nullopt;
    od::object obj;
    if (doc.get_object().get(obj)) return std::nullopt;
    od::value v;
    if (obj.find_field_unordered("ProfileId").get(v)) return std::nullopt;
    std::int64_t id = 0;
    if (!v.get_int64().get(id)) return id;
    std::string_view text;
    if (!v.get_string().get(text)) {
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        if (ec == std::errc() && end == text.data() + text.size()) return id;
    }
    return std::nullopt;
}

std::string ResponseReader::read(std::string_view body, std::vector<PulledProfile>& out) {
    out.clear();
    body_ = simdjson::padded_string(body);
    // On-Demand checks only what it visits: skipping a profile it counts brackets, whatever
    // their kind, and a document's raw_json() runs to the end of the body, so '{"A": [1}]'
    // and '{"A": 1} garbage' passed as profiles (found by fuzzing). One validating pass
    // first (simdjson's DOM, at GB/s) keeps malformed JSON out of the sinks.
    if (auto e = validator_.parse(body_).error()) return std::string("not JSON: ") + simdjson::error_message(e);
    od::document doc;
    if (auto e = parser_.iterate(body_).get(doc)) return std::string("not JSON: ") + simdjson::error_message(e);
    od::json_type type;
    if (auto e = doc.type().get(type)) return std::string("not JSON: ") + simdjson::error_message(e);
    if (type == od::json_type::object) {
        std::string_view raw;
        if (auto e = doc.raw_json().get(raw)) return std::string("malformed profile: ") + simdjson::error_message(e);
        raw = without_trailing_space(raw);
        out.push_back({profile_id(raw), raw});
        return "";
    }
    if (type != od::json_type::array) return "expected a profile or an array of profiles";
    od::array array;
    if (auto e = doc.get_array().get(array)) return std::string("malformed array: ") + simdjson::error_message(e);
    for (auto element : array) {
        od::value v;
        if (auto e = element.get(v)) return std::string("malformed array: ") + simdjson::error_message(e);
        od::object obj;
        if (v.get_object().get(obj)) return "an array element is not a profile object";
        std::string_view raw;
        if (auto e = obj.raw_json().get(raw)) return std::string("malformed profile: ") + simdjson::error_message(e);
        out.push_back({std::nullopt, without_trailing_space(raw)});
    }
    // Ids after the walk: the inner parser must not run while the outer one is iterating.
    for (auto& p : out) p.profile_id = profile_id(p.json);
    return "";
}

}  // namespace prefsync::pull
