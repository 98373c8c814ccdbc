#include "daemon/sync/oauth_token.hpp"

#include <simdjson.h>

#include <boost/url.hpp>

namespace prefsync::sync {

TokenSource::TokenSource(boost::asio::io_context& ioc, const config::Config& config, std::string secret,
                         std::string user_agent)
    : oauth_(!config.api.oauth.token_url.empty()), config_(config), secret_(std::move(secret)) {
    if (!oauth_) {
        header_ = secret_;
        return;
    }
    auto url = boost::urls::parse_absolute_uri(config.api.oauth.token_url);
    if (!url) throw std::invalid_argument("api.oauth.token_url is not a URL");
    target_ = std::string(url->encoded_resource());
    if (target_.empty()) target_ = "/";
    auto base = api::parse_base_url(config.api.oauth.token_url);
    pool_ = std::make_unique<http::HttpPool>(ioc, config.http, base, std::move(user_agent));
}

bool TokenSource::ready() const {
    if (!oauth_) return true;
    return !header_.empty() && std::chrono::steady_clock::now() + config_.api.oauth.refresh_before < expires_;
}

bool TokenSource::refused(int generation) {
    if (!oauth_) return true;
    if (generation != generation_) return false;  // an older token, already replaced
    if (!worked_) return true;
    header_.clear();
    return false;
}

void TokenSource::refresh(std::function<void(const std::string&, bool)> done) {
    if (!oauth_) return done("", false);
    waiting_.push_back(std::move(done));
    if (waiting_.size() > 1) return;  // a fetch is already under way
    boost::urls::url form;
    form.params().append({"grant_type", "client_credentials"});
    form.params().append({"client_secret", secret_});
    if (!config_.api.oauth.client_id.empty()) form.params().append({"client_id", config_.api.oauth.client_id});
    api::ApiRequest request{"POST", target_, std::string(form.encoded_query()), api::Operation::Read,
                            "application/x-www-form-urlencoded"};
    pool_->send(std::move(request), "", [this](http::HttpResponse r) {
        std::string error;
        bool fatal = false;
        if (r.transport != api::Transport::Answered) {
            error = "token endpoint: " + r.error;
        } else if (r.status == 400 || r.status == 401 || r.status == 403) {
            error = "token endpoint refused the client secret (" + std::to_string(r.status) + ")";
            fatal = true;
        } else if (r.status != 200) {
            error = "token endpoint answered " + std::to_string(r.status);
        } else {
            simdjson::ondemand::parser parser;
            simdjson::padded_string body(r.body);
            simdjson::ondemand::document doc;
            std::string_view token;
            std::int64_t expires_in = 0;
            if (parser.iterate(body).get(doc) || doc["access_token"].get_string().get(token)) {
                error = "token endpoint: no access_token in the answer";
                fatal = true;
            } else {
                header_ = "Bearer " + std::string(token);
                if (doc["expires_in"].get_int64().get(expires_in)) expires_in = 3600;
                expires_ = std::chrono::steady_clock::now() + std::chrono::seconds(expires_in);
                ++generation_;
                worked_ = false;
            }
        }
        auto waiting = std::move(waiting_);
        waiting_.clear();
        for (auto& w : waiting) w(error, fatal);
    });
}

}  // namespace prefsync::sync
