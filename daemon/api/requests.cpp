#include "daemon/api/requests.hpp"

#include <simdjson.h>

#include <algorithm>
#include <boost/url.hpp>
#include <stdexcept>

namespace prefsync::api {

namespace urls = boost::urls;

std::string query_value(std::string_view value) {
    return urls::encode(value, urls::unreserved_chars);
}

BaseUrl parse_base_url(const std::string& url) {
    auto parsed = urls::parse_absolute_uri(url);
    if (!parsed) throw std::invalid_argument("not a URL: " + url);
    BaseUrl b;
    b.scheme = std::string(parsed->scheme());
    if (b.scheme != "https" && b.scheme != "http") throw std::invalid_argument("not http(s): " + url);
    b.host = std::string(parsed->encoded_host());
    if (b.host.empty()) throw std::invalid_argument("no host in " + url);
    b.address = std::string(parsed->encoded_host_address());
    b.port = parsed->has_port() ? std::string(parsed->port()) : (b.scheme == "https" ? "443" : "80");
    b.path = std::string(parsed->encoded_path());
    while (!b.path.empty() && b.path.back() == '/') b.path.pop_back();
    return b;
}

namespace {
// RFC 3986's unreserved characters: what a path segment or query value keeps as it is.
bool unreserved(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

// A path segment Boost.URL would write as it is (RFC 3986 unreserved characters only):
// profile ids and the API's own words, which then need no URL object.
bool plain_segment(const std::string& s) {
    return std::all_of(s.begin(), s.end(), unreserved);
}

// "&key=value" with the value encoded (query_value); the first parameter's '&' becomes '?'.
// A value of unreserved characters only (an alternate id type, most ids: two per request)
// is appended as it is, which is what encoding it writes, without an encoded copy of it.
void append_param(std::string& target, std::string_view key, std::string_view value) {
    target += target.find('?') == std::string::npos ? '?' : '&';
    target.append(key).append(1, '=');
    if (std::all_of(value.begin(), value.end(), unreserved))
        target.append(value);
    else
        target.append(query_value(value));
}
}  // namespace

RequestBuilder::RequestBuilder(BaseUrl base, const std::string& client_id) : base_(std::move(base)) {
    // The encoded ".../CLIENT/Profile" every target starts with, built once: building it with
    // Boost.URL for every request was a URL object and three segment insertions per row.
    // Rooted whatever the base URL's path: with none ("https://host") the targets were
    // "12345/Profile", not a valid request target.
    urls::url u;
    u.set_encoded_path(base_.path);
    u.set_path_absolute(true);
    u.segments().push_back(client_id);
    u.segments().push_back("Profile");
    profile_prefix_ = std::string(u.encoded_path());
    alternate_id_path_ = profile_prefix_ + "/AlternateId";
}

std::string RequestBuilder::profile_path(const std::string& suffix) const {
    if (suffix.empty()) return profile_prefix_;
    if (plain_segment(suffix)) return profile_prefix_ + "/" + suffix;
    urls::url u;
    u.set_encoded_path(profile_prefix_);
    u.segments().push_back(suffix);
    return std::string(u.encoded_path());
}

std::string RequestBuilder::alternate_id_target(const std::string& type, const std::string& id) const {
    std::string target;
    // Room for both ids percent-encoded and the read flags: one allocation per target.
    target.reserve(alternate_id_path_.size() + 64 + 3 * (type.size() + id.size()));
    target.append(alternate_id_path_);
    append_param(target, "alternateIdType", type);
    append_param(target, "alternateId", id);
    return target;
}

ApiRequest RequestBuilder::create(std::string body) const {
    return {"POST", profile_path(), std::move(body), Operation::Create};
}
ApiRequest RequestBuilder::update(std::int64_t profile_id, std::string body) const {
    return {"POST", profile_path(std::to_string(profile_id)), std::move(body), Operation::Update};
}
ApiRequest RequestBuilder::remove(std::int64_t profile_id, const std::string& reason_code) const {
    auto target = profile_path(std::to_string(profile_id));
    if (!reason_code.empty()) append_param(target, "reasonCode", reason_code);
    return {"DELETE", std::move(target), "", Operation::Delete};
}
ApiRequest RequestBuilder::upsert(const std::string& type, const std::string& id, std::string body) const {
    return {"POST", alternate_id_target(type, id), std::move(body), Operation::Upsert};
}
ApiRequest RequestBuilder::replace(const std::string& type, const std::string& id, std::string body) const {
    return {"PUT", alternate_id_target(type, id), std::move(body), Operation::Replace};
}
ApiRequest RequestBuilder::replace(std::int64_t profile_id, std::string body) const {
    return {"PUT", profile_path(std::to_string(profile_id)), std::move(body), Operation::Replace};
}
ApiRequest RequestBuilder::patch(const std::string& type, const std::string& id, const std::string& operations) const {
    return {"PATCH", alternate_id_target(type, id), "{\"Operations\":" + operations + "}", Operation::Patch};
}
ApiRequest RequestBuilder::patch(std::int64_t profile_id, std::string operations) const {
    return {"PATCH", profile_path(std::to_string(profile_id)), std::move(operations), Operation::Patch};
}
ApiRequest RequestBuilder::archive(std::int64_t profile_id, std::string body) const {
    return {"PUT", profile_prefix_ + "/Preferences/" + std::to_string(profile_id) + "/Archive", std::move(body),
            Operation::Archive};
}
ApiRequest RequestBuilder::get(const std::string& type, const std::string& id, bool match_inactive) const {
    return read(type, id, {false, match_inactive});
}
ApiRequest RequestBuilder::get(std::int64_t profile_id) const {
    return {"GET", profile_path(std::to_string(profile_id)), "", Operation::Read};
}

ApiRequest RequestBuilder::read(const std::string& type, const std::string& id, ReadFlags flags) const {
    auto target = alternate_id_target(type, id);
    if (flags.implied) target += "&implied=true";
    if (flags.match_inactive) target += "&matchInactive=true";
    return {"GET", std::move(target), "", Operation::Read};
}

ApiRequest RequestBuilder::read(std::int64_t profile_id, ReadFlags flags) const {
    auto target = profile_path(std::to_string(profile_id));
    if (flags.implied) target += "?implied=true";
    return {"GET", std::move(target), "", Operation::Read};
}

bool search_takes_implied(std::string_view endpoint) {
    return endpoint != "CustomFields" && endpoint != "CustomFields/SelectList" && endpoint != "Attributes";
}

ApiRequest RequestBuilder::search(const std::string& endpoint,
                                  const std::vector<std::pair<std::string, std::string>>& params) const {
    urls::url u;
    u.set_encoded_path(profile_path());
    std::size_t start = 0;
    while (start <= endpoint.size()) {
        auto slash = endpoint.find('/', start);
        u.segments().push_back(endpoint.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    std::string target(u.encoded_path());
    for (const auto& [key, value] : params) append_param(target, query_value(key), value);
    return {"GET", std::move(target), "", Operation::Read};
}

ApiRequest RequestBuilder::history(const std::string& kind, std::int64_t profile_id,
                                   const std::string& filter_id) const {
    urls::url u;
    u.set_encoded_path(profile_path("History"));
    u.segments().push_back(kind);
    u.segments().push_back(std::to_string(profile_id));
    std::string target(u.encoded_path());
    if (!filter_id.empty()) append_param(target, "filterId", filter_id);
    return {"GET", std::move(target), "", Operation::Read};
}

ApiRequest RequestBuilder::history(const std::string& kind, const std::string& type, const std::string& id,
                                   const std::string& filter_id) const {
    urls::url u;
    u.set_encoded_path(profile_path("History"));
    u.segments().push_back(kind);
    u.segments().push_back("AlternateId");
    std::string target(u.encoded_path());
    append_param(target, "alternateIdType", type);
    append_param(target, "alternateId", id);
    if (!filter_id.empty()) append_param(target, "filterId", filter_id);
    return {"GET", std::move(target), "", Operation::Read};
}

namespace {

// `json` holds `length` bytes of the answer and at least SIMDJSON_PADDING more after them.
std::optional<std::int64_t> read_profile_id(simdjson::ondemand::parser& parser, const char* json, std::size_t length) {
    simdjson::ondemand::document doc;
    if (parser.iterate(json, length, length + simdjson::SIMDJSON_PADDING).get(doc)) return std::nullopt;
    simdjson::ondemand::object obj;
    if (doc.get_object().get(obj)) return std::nullopt;
    std::int64_t id = 0;
    if (obj["ProfileId"].get_int64().get(id)) return std::nullopt;
    return id;
}

}  // namespace

std::optional<std::int64_t> profile_id_of(std::string_view response_body) {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(response_body);
    return read_profile_id(parser, padded.data(), padded.size());
}

struct ProfileIdReader::Parser {
    simdjson::ondemand::parser parser;
    std::string padded;  // the answer, then simdjson's padding
};

ProfileIdReader::ProfileIdReader() = default;
ProfileIdReader::~ProfileIdReader() = default;
ProfileIdReader::ProfileIdReader(ProfileIdReader&&) noexcept = default;
ProfileIdReader& ProfileIdReader::operator=(ProfileIdReader&&) noexcept = default;

std::optional<std::int64_t> ProfileIdReader::operator()(std::string_view response_body) {
    // A large answer (a whole profile read back) is read with buffers of its own, so the
    // reader does not keep several times its size for the rest of the run.
    constexpr std::size_t kKept = 64 * 1024;
    if (response_body.size() > kKept) return profile_id_of(response_body);
    if (!parser_) parser_ = std::make_unique<Parser>();
    auto& p = *parser_;
    p.padded.assign(response_body);
    p.padded.append(simdjson::SIMDJSON_PADDING, ' ');
    return read_profile_id(p.parser, p.padded.data(), response_body.size());
}

}  // namespace prefsync::api
