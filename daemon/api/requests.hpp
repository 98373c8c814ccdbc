#pragma once
// Request builders for the endpoints prefsync writes and reads with (the API reference's
// W1–W9, R1–R2, S1–S14, H1–H5; daemon/emulator/README.md lists each one's method and path).
// Targets are built with Boost.URL, so every query value is escaped.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/api/outcome.hpp"

namespace prefsync::api {

struct ApiRequest {
    std::string method;  // "GET", "POST", "PUT", "PATCH", "DELETE"
    std::string target;  // origin-form: "/Profiles/v2/12345/Profile/AlternateId?..."
    std::string body;    // JSON, or empty
    Operation operation = Operation::Read;
    std::string content_type = "application/json";
};

struct BaseUrl {
    std::string scheme;   // "https" or "http"
    std::string host;     // as in the URL: what the Host header names ("[::1]" for IPv6)
    std::string address;  // the host without an IPv6 literal's brackets: what is resolved and verified
    std::string port;     // "443" if not given for https, "80" for http
    std::string path;     // "/Profiles/v2", no trailing slash
};
// Throws std::invalid_argument for a URL that is not http(s)://host[:port]/path.
BaseUrl parse_base_url(const std::string& url);

// A query or form value percent-encoded but for RFC 3986's unreserved characters. The API's
// server (ASP.NET) and OAuth token endpoints read a query or form with '+' as a space, and
// Boost.URL's parameters leave a value's '+' as it is (RFC 3986 allows it in a query), so an
// alternate id "ann+news@example.com" named "ann news@example.com" and a client secret with
// a '+' (base64) was refused. Encoding all else is read the same by every decoder.
std::string query_value(std::string_view value);

class RequestBuilder {
public:
    RequestBuilder(BaseUrl base, const std::string& client_id);
    const BaseUrl& base() const { return base_; }

    ApiRequest create(std::string body) const;                                                   // W1
    ApiRequest update(std::int64_t profile_id, std::string body) const;                          // W2
    ApiRequest remove(std::int64_t profile_id, const std::string& reason_code = "") const;       // W3
    ApiRequest upsert(const std::string& type, const std::string& id, std::string body) const;   // W4
    ApiRequest replace(const std::string& type, const std::string& id, std::string body) const;  // W6
    ApiRequest replace(std::int64_t profile_id, std::string body) const;                         // W7
    // JSON Patch: `operations` is the RFC 6902 array; W5 wraps it as {"Operations": [...]},
    // W8 sends it bare (the reference's two shapes).
    ApiRequest patch(const std::string& type, const std::string& id, const std::string& operations) const;  // W5
    ApiRequest patch(std::int64_t profile_id, std::string operations) const;                                // W8
    ApiRequest archive(std::int64_t profile_id, std::string body) const;                                    // W9
    ApiRequest get(const std::string& type, const std::string& id, bool match_inactive = false) const;      // R1
    ApiRequest get(std::int64_t profile_id) const;                                                          // R2
    // Reads for pull: R1/R2 with implied (and matchInactive for R1).
    struct ReadFlags {
        bool implied = false;
        bool match_inactive = false;
    };
    ApiRequest read(const std::string& type, const std::string& id, ReadFlags flags) const;  // R1
    ApiRequest read(std::int64_t profile_id, ReadFlags flags) const;                         // R2
    // S1–S14: `endpoint` is the path under Profile/ ("Email", "Groups/Primary/42").
    ApiRequest search(const std::string& endpoint,
                      const std::vector<std::pair<std::string, std::string>>& params) const;
    // H1–H5: `kind` is the path segment ("Consents", ...); by profile id or alternate id.
    ApiRequest history(const std::string& kind, std::int64_t profile_id, const std::string& filter_id) const;
    ApiRequest history(const std::string& kind, const std::string& type, const std::string& id,
                       const std::string& filter_id) const;

private:
    std::string profile_path(const std::string& suffix = "") const;
    std::string alternate_id_target(const std::string& type, const std::string& id) const;

    BaseUrl base_;
    std::string profile_prefix_;     // encoded: base path, client id, "Profile"
    std::string alternate_id_path_;  // encoded: the prefix, then "AlternateId"
};

// Whether the reference lists `implied` among a search's parameters: every search but the
// custom field (S2, S3) and preference attribute (S8) ones. `endpoint` as for search().
bool search_takes_implied(std::string_view endpoint);

// ProfileId from a 200/202 answer ({"ProfileId": 123, ...}); nullopt if absent.
std::optional<std::int64_t> profile_id_of(std::string_view response_body);

// The same, for a caller that reads many answers: its parser and padded copy are allocated
// once, not per answer.
class ProfileIdReader {
public:
    ProfileIdReader();
    ~ProfileIdReader();
    ProfileIdReader(ProfileIdReader&&) noexcept;
    ProfileIdReader& operator=(ProfileIdReader&&) noexcept;
    std::optional<std::int64_t> operator()(std::string_view response_body);

private:
    struct Parser;
    std::unique_ptr<Parser> parser_;
};

}  // namespace prefsync::api
