#include "daemon/pull/response_reader.hpp"

#include <charconv>
#include <cstring>

namespace prefsync::pull {

namespace od = simdjson::ondemand;

namespace {

constexpr std::string_view kSpace = " \t\r\n";

// raw_json() runs to the next token, so it ends with whatever space came before it.
std::string_view without_trailing_space(std::string_view raw) {
    return raw.substr(0, raw.find_last_not_of(kSpace) + 1);
}

std::optional<std::int64_t> profile_id_of(simdjson::dom::element profile) {
    simdjson::dom::element v;
    if (profile.at_key("ProfileId").get(v)) return std::nullopt;
    std::int64_t id = 0;
    if (!v.get_int64().get(id)) return id;
    std::string_view text;
    if (!v.get_string().get(text)) {
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        if (ec == std::errc() && end == text.data() + text.size()) return id;
    }
    return std::nullopt;
}

// A buffer this large is not kept for the next answer (search answers are usually small).
constexpr std::size_t kKeptBuffer = 1 << 20;

}  // namespace

std::string ResponseReader::read(std::string_view body, std::vector<PulledProfile>& out) {
    out.clear();
    if (buffer_.size() > kKeptBuffer && body.size() + simdjson::SIMDJSON_PADDING <= kKeptBuffer)
        std::string().swap(buffer_);
    if (buffer_.size() < body.size() + simdjson::SIMDJSON_PADDING)
        buffer_.resize(body.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer_.data(), body.data(), body.size());
    std::memset(buffer_.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    std::string_view text(buffer_.data(), body.size());

    // On-Demand checks only what it visits: skipping a profile it counts brackets, whatever
    // their kind, and a document's raw_json() runs to the end of the body, so '{"A": [1}]'
    // and '{"A": 1} garbage' passed as profiles (found by fuzzing). So one validating pass
    // (simdjson's DOM, at GB/s) keeps malformed JSON out of the sinks, and answers the
    // ProfileIds too; On-Demand runs only to find where each element of an array starts
    // and ends, which the DOM does not keep.
    simdjson::dom::element root;
    if (auto e = validator_.parse(buffer_.data(), text.size(), false).get(root))
        return std::string("not JSON: ") + simdjson::error_message(e);
    if (root.is_object()) {
        // Validated as one object, the whole body is the profile: no second pass is needed.
        auto first = text.find_first_not_of(kSpace);
        out.push_back({profile_id_of(root), without_trailing_space(text.substr(first))});
        return "";
    }
    simdjson::dom::array profiles;
    if (root.get_array().get(profiles)) return "expected a profile or an array of profiles";
    ids_.clear();
    for (auto element : profiles) {
        if (!element.is_object()) return "an array element is not a profile object";
        ids_.push_back(profile_id_of(element));
    }
    // Both passes read the same validated text, so they agree on the elements; if they ever
    // did not (a parser's bug), no profile is returned rather than the wrong ones.
    auto failed = [&out](std::string why) {
        out.clear();
        return why;
    };
    od::document doc;
    if (auto e = parser_.iterate(buffer_.data(), text.size(), buffer_.size()).get(doc))
        return failed(std::string("not JSON: ") + simdjson::error_message(e));
    od::array array;
    if (auto e = doc.get_array().get(array))
        return failed(std::string("malformed array: ") + simdjson::error_message(e));
    for (auto element : array) {
        if (out.size() == ids_.size()) return failed("malformed array: the profiles could not be delimited");
        od::object obj;
        if (auto e = element.get_object().get(obj))
            return failed(std::string("malformed array: ") + simdjson::error_message(e));
        std::string_view raw;
        if (auto e = obj.raw_json().get(raw))
            return failed(std::string("malformed profile: ") + simdjson::error_message(e));
        out.push_back({ids_[out.size()], without_trailing_space(raw)});
    }
    if (out.size() != ids_.size()) return failed("malformed array: the profiles could not be delimited");
    return "";
}

}  // namespace prefsync::pull
