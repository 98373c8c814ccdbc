#include "daemon/sync/verify_run.hpp"

#include <simdjson.h>

#include <boost/asio.hpp>
#include <cstdio>

#include "daemon/api/requests.hpp"
#include "daemon/http/http_pool.hpp"
#include "daemon/sync/oauth_token.hpp"
#include "daemon/sync/rate_limiter.hpp"

namespace prefsync::sync {

namespace {

// UpdateStatus of a profile read back; empty if the body has none.
std::string update_status(const std::string& body) {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(body);
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) return {};
    std::string_view status;
    if (doc["UpdateStatus"].get_string().get(status)) return {};
    return std::string(status);
}

}  // namespace

VerifyReport run_verify(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                        const std::string& token, std::chrono::milliseconds wait, const std::string& user_agent,
                        RunObserver* observer) {
    namespace net = boost::asio;
    VerifyReport report;
    net::io_context ioc;
    api::RequestBuilder builder(api::parse_base_url(config.api.base_url), config.api.client_id);
    http::HttpPool pool(ioc, config.http, builder.base(), user_agent);
    RateLimiter limiter(config.rate_limit.requests_per_second, config.rate_limit.burst, config.rate_limit.adaptive,
                        [] { return SteadyClock::now(); });
    TokenSource tokens(ioc, config, token, user_agent);
    if (!tokens.ready()) {
        std::string error;
        tokens.refresh([&](const std::string& e, bool) { error = e; });
        ioc.run();
        ioc.restart();
        if (!error.empty()) {
            report.fatal = error;
            return report;
        }
    }
    auto deadline = SteadyClock::now() + wait;
    auto accepted = journal.accepted(job.name, 1'000'000);
    report.checked = static_cast<std::int64_t>(accepted.size());
    std::vector<journal::ClaimedUpdate> todo(accepted.begin(), accepted.end());

    // Rounds: read every unverified profile; those still pending wait for the next round.
    for (int round = 0; !todo.empty() && report.fatal.empty(); ++round) {
        if (round > 0) {
            if (SteadyClock::now() >= deadline) break;
            net::steady_timer pause(ioc, std::min(deadline - SteadyClock::now(), SteadyClock::duration(std::chrono::seconds(1))));
            pause.wait();
        }
        std::vector<journal::ClaimedUpdate> still;
        std::vector<std::int64_t> verified;
        std::size_t next = 0;
        int in_flight = 0;
        net::steady_timer pace(ioc);
        std::function<void()> pump = [&] {
            while (next < todo.size() && in_flight < config.rate_limit.max_in_flight && report.fatal.empty()) {
                if (auto w = limiter.try_acquire()) {
                    pace.expires_after(*w);
                    pace.async_wait([&](boost::system::error_code ec) { if (!ec) pump(); });
                    return;
                }
                auto& u = todo[next++];
                auto request = u.alt_type.empty() ? builder.get(*u.profile_id) : builder.get(u.alt_type, u.alt_id, true);
                ++in_flight;
                pool.send(std::move(request), tokens.header(), [&, &u = u](const http::HttpResponse& r) {
                    --in_flight;
                    if (observer) observer->on_request("read", r.status, r.elapsed);
                    auto k = api::classify(api::Operation::Read, r.transport, r.status, r.body);
                    if (r.status == 200) {
                        if (update_status(r.body) == "Complete") verified.push_back(u.id);
                        else still.push_back(u);
                    } else if (r.status == 404) {
                        ++report.missing;
                        std::fprintf(stderr, "not found: %s (%s) was accepted but is not there\n", u.identity.c_str(),
                                     u.origin.c_str());
                    } else if (k.outcome == api::Outcome::Fatal) {
                        report.fatal = k.reason;
                    } else {
                        still.push_back(u);  // transient: look again next round
                        ++report.errors;
                    }
                    pump();
                });
            }
            // Idle keep-alive connections keep timers armed: end the round explicitly.
            if (in_flight == 0 && (next >= todo.size() || !report.fatal.empty())) ioc.stop();
        };
        ioc.restart();
        net::post(ioc, pump);
        ioc.run();
        auto waited = journal.mark_verified(verified, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                          std::chrono::system_clock::now().time_since_epoch()).count());
        if (observer)
            for (auto ms : waited) observer->on_complete(std::chrono::milliseconds(ms));
        report.verified += static_cast<std::int64_t>(verified.size());
        todo = std::move(still);
    }
    report.pending = static_cast<std::int64_t>(todo.size());
    for (std::size_t i = 0; i < todo.size() && i < 20; ++i)
        std::fprintf(stderr, "still pending: %s (%s)\n", todo[i].identity.c_str(), todo[i].origin.c_str());
    pool.shutdown();
    return report;
}

}  // namespace prefsync::sync
