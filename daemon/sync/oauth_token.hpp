#pragma once
// Bearer tokens for OAuth mode (api.oauth): the client secret is exchanged at token_url
// (client_credentials) for an access token, kept until refresh_before its expiry, and
// fetched again then, or at once after a 401. Without OAuth the configured token is sent
// as is. Runs on the dispatcher's io_context thread.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/http/http_pool.hpp"

namespace prefsync::sync {

class TokenSource {
public:
    TokenSource(boost::asio::io_context& ioc, const config::Config& config, std::string secret,
                std::string user_agent);

    bool oauth() const { return oauth_; }
    // The Authorization header value, if a usable token is held now.
    bool ready() const;
    const std::string& header() const { return header_; }
    // Fetches a token; `done(error, fatal)` with an empty error on success. One fetch at a time:
    // callers while one runs are answered when it completes.
    void refresh(std::function<void(const std::string& error, bool fatal)> done);
    // Which token the header is (it changes with every fetch).
    int generation() const { return generation_; }
    // A request made with the current token succeeded.
    void accepted() { worked_ = true; }
    // The API refused the token of `generation` (401). True when that means the credentials
    // are wrong (a fresh token that never worked): the run must stop. Otherwise the token
    // expired or was revoked: it is dropped and the next request fetches a new one.
    bool refused(int generation);

private:
    bool oauth_;
    const config::Config& config_;
    std::string secret_;
    std::string header_;
    std::chrono::steady_clock::time_point expires_{};
    std::unique_ptr<http::HttpPool> pool_;
    std::string target_;
    std::vector<std::function<void(const std::string&, bool)>> waiting_;
    int generation_ = 0;
    bool worked_ = false;
};

}  // namespace prefsync::sync
