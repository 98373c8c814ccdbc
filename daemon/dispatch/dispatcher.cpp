#include "daemon/dispatch/dispatcher.hpp"

#include <unistd.h>

#include <algorithm>

#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"

namespace prefsync::dispatch {
namespace {

std::unique_ptr<PoolTransport> token_host(AsioRuntime& runtime, const RunContext& c) {
    if (c.config.api.oauth.token_url.empty()) return nullptr;
    return std::make_unique<PoolTransport>(runtime, c.config.http, api::parse_base_url(c.config.api.oauth.token_url),
                                           c.user_agent);
}

}  // namespace

void end_of_run_retention(const RunContext& c) {
    // After the run's end is recorded: housekeeping that fails does not make it a failed run.
    try {
        if (!c.journal.apply_retention(base::now_ms(), c.config.journal.retain_days).reclaimed)
            base::logger().info(
                "The journal's free space was not given back: another connection (a reader, or another prefsync) "
                "was using it; the next run's end tries again",
                {{"journal", c.config.journal.path}});
    } catch (const std::exception& e) {
        base::logger().warn("Cannot apply the journal's retention; the next run's end tries again",
                            {{"journal", c.config.journal.path}, {"error", e.what()}});
    }
}

LoopSettings loop_settings(const config::Config& config, const std::string& job) {
    LoopSettings s;
    s.job = job;
    s.max_in_flight = config.rate_limit.max_in_flight > 0 ? config.rate_limit.max_in_flight : config.http.connections;
    s.retry = {config.retry.max_attempts, config.retry.base_delay, config.retry.max_delay};
    s.max_throttled = config.retry.max_throttled;
    // The breaker's first probe waits a little longer than a first retry would, and its
    // step doubles up to the longest retry delay.
    s.breaker.max_probe = std::max(config.retry.max_delay, std::chrono::milliseconds(1));
    s.breaker.first_probe =
        std::min(std::max(config.retry.base_delay * 2, std::chrono::milliseconds(1000)), s.breaker.max_probe);
    // An outage is given up on once it has outlasted a row's retries: the probes up to the
    // longest step, then max_attempts more at it (with the defaults, 17 probes over ~44 min).
    int doublings = 0;
    for (auto step = s.breaker.first_probe; step < s.breaker.max_probe; step *= 2) ++doublings;
    s.breaker.give_up_probes = std::max(1, config.retry.max_attempts) + doublings;
    s.seed =
        static_cast<std::uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ULL ^ static_cast<std::uint64_t>(base::now_ms());
    return s;
}

Dispatcher::Dispatcher(const RunContext& c, const std::string& job)
    : builder_(api::parse_base_url(c.config.api.base_url), c.config.api.client_id),
      api_(runtime_, c.config.http, builder_.base(), c.user_agent),
      token_host_(token_host(runtime_, c)),
      limiter_(c.config.rate_limit.requests_per_second, c.config.rate_limit.burst, c.config.rate_limit.adaptive,
               [this] { return runtime_.now(); }),
      tokens_(c.config.api, c.secret, token_host_.get(), [this] { return runtime_.now(); }),
      shared_(c.journal.rate, c.config.rate_limit),
      loop_(runtime_, api_, tokens_, limiter_, &shared_, c.observer, c.stop, loop_settings(c.config, job)) {}

Dispatcher::~Dispatcher() {
    api_.shutdown();
    if (token_host_) token_host_->shutdown();
}

}  // namespace prefsync::dispatch
