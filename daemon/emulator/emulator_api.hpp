#pragma once
// HTTP semantics of the emulated API, without sockets: a request (method, target, headers,
// body) in, a response out. Routing, authentication, client id, content type, body
// validation and query parameters live here; the profile semantics live in ProfileStore.
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
    std::string body;  // JSON, or empty
    std::string endpoint;  // route name for counters: "W4 upsert", "R2 get", "auth", ...
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
    HttpResponse handle(const HttpRequest& request);

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
