#pragma once
// HTTP semantics of the emulated API, without sockets: a request (method, target, headers,
// body) in, a response out. Routing, authentication, client id, content type, body
// validation and query parameters live here; the profile semantics live in ProfileStore.
// Routing is one table (emulator_api.cpp): method + path pattern → endpoint name + handler,
// so an endpoint is one row.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/emulator/profile_store.hpp"

namespace prefsync::emulator {

struct HttpRequest {
    std::string method;  // "GET", "POST", ...
    std::string target;  // "/Profiles/v2/12345/Profile/AlternateId?alternateId=1&..."
    std::string authorization;
    std::string content_type;
    std::string body;
};

struct HttpResponse {
    int status = 200;
    std::string body;      // JSON, or empty
    std::string endpoint;  // route name for counters: "W4 upsert", "R2 get", "auth", ...
};

// Where the reference allows a server more than one behaviour, the one a request meets. The
// server takes it from the fault configuration, so a test can switch at run time.
struct Semantics {
    bool accept_duplicates = false;  // W1 with a known alternate id: another profile, not 409
    int patch_test_status = 409;     // a failed PATCH `test`: 409 or 400
    bool stamp_elements = false;     // stored elements carry the server's `Edited`
};

// What a request is, for the request log, whether or not it is ever handled (a fault may
// refuse it first): its endpoint and the alternate id it names (query, else the body's first
// AlternateIds entry), empty when it names none.
struct RequestInfo {
    std::string endpoint;
    AltId alternate_id;
};

struct ApiOptions {
    std::string client_id = "12345";
    std::string token = "emulator-token";
    // OAuth mode: POST /oauth/token exchanges the token (as client_secret) for bearer tokens
    // that expire after token_ttl; API calls must then carry "Bearer <access token>".
    bool oauth = false;
    std::chrono::seconds token_ttl{3600};
};

class EmulatorApi {
public:
    EmulatorApi(ProfileStore& store, ApiOptions options, Clock clock);
    HttpResponse handle(const HttpRequest& request, const Semantics& semantics = {});
    RequestInfo describe(const HttpRequest& request) const;

private:
    HttpResponse token_endpoint(const HttpRequest& request);
    bool authorized(const std::string& header);

    ProfileStore& store_;
    ApiOptions options_;
    Clock clock_;
    std::mutex tokens_mutex_;
    std::map<std::string, std::chrono::system_clock::time_point> tokens_;  // access token → expiry
    std::uint64_t token_counter_ = 0;
};

}  // namespace prefsync::emulator
