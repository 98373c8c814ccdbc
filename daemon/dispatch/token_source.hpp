#pragma once
// The Authorization header of a run. Without OAuth it is the configured token, as is. In
// OAuth mode (api.oauth) the configured secret is exchanged at token_url
// (client_credentials) for a bearer token, kept until `refresh_before` its expiry and
// fetched again then, or at once after a 401 answered to a token that had worked.
//
// Design constraints:
// - A token is never fetched in a loop: a refused secret (400/401/403) is fatal, an
//   answer without access_token is fatal, and a short-lived token is refreshed at half its
//   life when its lifetime is no longer than `refresh_before` (an expires_in of zero or
//   less is fatal): otherwise every request would fetch a token first.
// - One fetch at a time; callers while one runs are answered when it completes.
// - Runs on the run's event loop; the token endpoint is reached through its own Transport.
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/dispatch/transport.hpp"

namespace prefsync::dispatch {

class TokenSource {
public:
    using Clock = std::function<SteadyClock::time_point()>;
    // `token_transport`: the token endpoint's host (OAuth); null for a static token.
    TokenSource(const config::ApiConfig& api, std::string secret, Transport* token_transport, Clock clock);

    bool oauth() const { return transport_ != nullptr; }
    // Whether a usable token is held now.
    bool ready() const;
    const std::string& header() const { return header_; }
    // Fetches a token; `done(error, fatal)` with an empty error on success.
    void refresh(std::function<void(const std::string& error, bool fatal)> done);
    // Which token the header is (it changes with every fetch).
    int generation() const { return generation_; }
    // A request made with the current token succeeded.
    void accepted() {
        worked_ = true;
        unworked_ = 0;
    }
    // The API refused the token of `generation` (401). True when that means the credentials
    // are wrong (a static token, or a second fresh token in a row that never worked): the
    // run must stop. Otherwise the token expired or was revoked (or expired before its first
    // answer: a run held up for longer than the token lives): it is dropped and the next
    // request fetches a new one.
    bool refused(int generation);
    // The last fetch's answer (its status and Retry-After; no body): what a failed fetch's
    // next attempt waits for.
    const http::HttpResponse& last_answer() const { return last_answer_; }
    // No more fetches: the token endpoint's connections close (a run that must end at once).
    void shutdown() {
        if (transport_) transport_->shutdown();
    }

private:
    void answered(const http::HttpResponse& r);

    const config::ApiConfig& api_;
    std::string secret_;
    Transport* transport_;
    Clock clock_;
    std::string header_;
    std::string target_;
    SteadyClock::time_point refresh_at_{};
    std::vector<std::function<void(const std::string&, bool)>> waiting_;
    int generation_ = 0;
    bool worked_ = false;
    int unworked_ = 0;  // tokens refused in a row without a request having worked
    http::HttpResponse last_answer_;
};

}  // namespace prefsync::dispatch
