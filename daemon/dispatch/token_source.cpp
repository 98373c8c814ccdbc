#include "daemon/dispatch/token_source.hpp"

#include <algorithm>

#include <simdjson.h>

#include <boost/url.hpp>

namespace prefsync::dispatch {

TokenSource::TokenSource(const config::ApiConfig& api, std::string secret, Transport* token_transport, Clock clock)
    : api_(api), secret_(std::move(secret)), transport_(token_transport), clock_(std::move(clock)) {
    if (!transport_) {
        header_ = secret_;
        return;
    }
    auto url = boost::urls::parse_absolute_uri(api.oauth.token_url);
    if (!url) throw std::invalid_argument("api.oauth.token_url is not a URL");
    target_ = std::string(url->encoded_resource());
    if (target_.empty()) target_ = "/";
}

bool TokenSource::ready() const {
    if (!transport_) return true;
    return !header_.empty() && clock_() < refresh_at_;
}

bool TokenSource::refused(int generation) {
    if (!transport_) return true;
    if (generation != generation_) return false;  // an older token, already replaced
    if (!worked_ && ++unworked_ >= 2) return true;
    header_.clear();
    return false;
}

void TokenSource::refresh(std::function<void(const std::string&, bool)> done) {
    if (!transport_) return done("", false);
    waiting_.push_back(std::move(done));
    if (waiting_.size() > 1) return;  // a fetch is already under way
    std::string form = "grant_type=client_credentials&client_secret=" + api::query_value(secret_);
    if (!api_.oauth.client_id.empty()) form += "&client_id=" + api::query_value(api_.oauth.client_id);
    api::ApiRequest request{"POST", target_, std::move(form), api::Operation::Read,
                            "application/x-www-form-urlencoded"};
    transport_->send(std::move(request), "", [this](http::HttpResponse r) { answered(r); });
}

void TokenSource::answered(const http::HttpResponse& r) {
    last_answer_.transport = r.transport;
    last_answer_.status = r.status;
    last_answer_.retry_after = r.retry_after;
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
        if (parser.iterate(body).get(doc) || doc["access_token"].get_string().get(token) || token.empty()) {
            error = "token endpoint: no access_token in the answer";
            fatal = true;
        } else if (std::any_of(token.begin(), token.end(),
                               [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
            // It becomes a header value: a line break would end the header.
            error = "token endpoint: the access_token contains a control character";
            fatal = true;
        } else {
            if (doc["expires_in"].get_int64().get(expires_in)) expires_in = 3600;
            if (expires_in <= 0) {
                error =
                    "token endpoint: expires_in " + std::to_string(expires_in) + " (a token that is already expired)";
                fatal = true;
            } else {
                auto life = std::chrono::seconds(std::min<std::int64_t>(expires_in, 365LL * 86400));
                // Refreshing `refresh_before` ahead of expiry is impossible for a token that
                // does not live that long: use such a token for half its life.
                auto margin = std::min<std::chrono::milliseconds>(api_.oauth.refresh_before, life / 2);
                header_ = "Bearer " + std::string(token);
                refresh_at_ = clock_() + life - margin;
                ++generation_;
                worked_ = false;
            }
        }
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) w(error, fatal);
}

}  // namespace prefsync::dispatch
