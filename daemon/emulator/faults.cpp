#include "daemon/emulator/faults.hpp"

#include <limits>

namespace prefsync::emulator {

namespace json = boost::json;

namespace {

const char* outage_mode_name(OutageMode mode) {
    return mode == OutageMode::Reset ? "reset" : "503";
}

}  // namespace

json::object FaultConfig::to_json() const {
    return {{"latency_ms", latency.count()},
            {"jitter_ms", latency_jitter.count()},
            {"rate_limit", rate_limit},
            {"retry_after", retry_after_seconds},
            {"error_429", error_429},
            {"error_429_retry_after", error_429_retry_after_seconds},
            {"error_503", error_503},
            {"error_503_retry_after", error_503_retry_after_seconds},
            {"reset", reset},
            {"ambiguous", ambiguous},
            {"ambiguous_status", ambiguous_status},
            {"slow_ms", slow.count()},
            {"outage_ms", outage.count()},
            {"outage_mode", outage_mode_name(outage_mode)},
            {"outage_retry_after", outage_retry_after_seconds},
            {"close", close},
            {"accept_duplicates", accept_duplicates},
            {"stamp_elements", stamp_elements},
            {"throttle_target", throttle_target},
            {"forbid_target", forbid_target},
            {"patch_test_status", patch_test_status},
            {"seed", seed}};
}

std::optional<std::string> FaultConfig::update(const json::object& j) {
    FaultConfig next = *this;
    for (const auto& kv : j) {
        const std::string key(kv.key());
        const auto& v = kv.value();
        // The keys that are not numbers.
        if (key == "throttle_target" || key == "forbid_target") {
            if (!v.is_string()) return key + ": expected a string";
            (key == "throttle_target" ? next.throttle_target : next.forbid_target) = std::string(v.as_string());
            continue;
        }
        if (key == "accept_duplicates" || key == "stamp_elements") {
            if (!v.is_bool()) return key + ": expected true or false";
            (key == "accept_duplicates" ? next.accept_duplicates : next.stamp_elements) = v.as_bool();
            continue;
        }
        if (key == "outage_mode") {
            auto* mode = v.if_string();
            if (mode && *mode == "reset")
                next.outage_mode = OutageMode::Reset;
            else if (mode && *mode == "503")
                next.outage_mode = OutageMode::Unavailable;
            else
                return key + R"(: expected "reset" or "503")";
            continue;
        }
        double number = 0;
        if (v.is_int64())
            number = static_cast<double>(v.as_int64());
        else if (v.is_uint64())
            number = static_cast<double>(v.as_uint64());
        else if (v.is_double())
            number = v.as_double();
        else
            return key + ": expected a number";
        if (number < 0) return key + ": must not be negative";
        auto ms = std::chrono::milliseconds(static_cast<long long>(number));
        auto probability = [&](double& out) -> std::optional<std::string> {
            if (number > 1) return key + ": a probability is between 0 and 1";
            out = number;
            return std::nullopt;
        };
        // A Retry-After is sent as given, however large; only what an int cannot hold is refused.
        auto seconds = [&](int& out) -> std::optional<std::string> {
            if (number > std::numeric_limits<int>::max()) return key + ": too large";
            out = static_cast<int>(number);
            return std::nullopt;
        };
        std::optional<std::string> problem;
        if (key == "latency_ms")
            next.latency = ms;
        else if (key == "jitter_ms")
            next.latency_jitter = ms;
        else if (key == "rate_limit")
            next.rate_limit = number;
        else if (key == "retry_after")
            problem = seconds(next.retry_after_seconds);
        else if (key == "error_429")
            problem = probability(next.error_429);
        else if (key == "error_429_retry_after")
            problem = seconds(next.error_429_retry_after_seconds);
        else if (key == "error_503")
            problem = probability(next.error_503);
        else if (key == "error_503_retry_after")
            problem = seconds(next.error_503_retry_after_seconds);
        else if (key == "reset")
            problem = probability(next.reset);
        else if (key == "ambiguous")
            problem = probability(next.ambiguous);
        else if (key == "ambiguous_status") {
            if (number != 0 && (number < 500 || number > 599 || number != static_cast<int>(number)))
                problem = key + ": expected 0 (unanswered) or a status from 500 to 599";
            else
                next.ambiguous_status = static_cast<int>(number);
        } else if (key == "slow_ms")
            next.slow = ms;
        else if (key == "close")
            problem = probability(next.close);
        else if (key == "outage_ms")
            next.outage = ms;
        else if (key == "outage_retry_after")
            problem = seconds(next.outage_retry_after_seconds);
        else if (key == "patch_test_status") {
            if (number != 400 && number != 409)
                problem = key + ": expected 409 or 400";
            else
                next.patch_test_status = static_cast<int>(number);
        } else if (key == "seed")
            next.seed = static_cast<std::uint64_t>(number);
        else
            return "unknown fault \"" + key + "\"";
        if (problem) return problem;
    }
    *this = next;
    return std::nullopt;
}

FaultInjector::FaultInjector(const FaultConfig& config) : config_(config), rng_(config.seed) {
    if (config_.outage.count() > 0) outage_until_ = Clock::now() + config_.outage;
}

bool FaultInjector::chance(double p) {
    if (p <= 0) return false;
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
}

Fault FaultInjector::decide(Clock::time_point now, std::string_view target) {
    std::lock_guard lock(mutex_);
    if (now < outage_until_) return config_.outage_mode == OutageMode::Reset ? Fault::Outage : Fault::OutageUnavailable;
    if (!config_.throttle_target.empty() && target.find(config_.throttle_target) != std::string_view::npos)
        return Fault::RowThrottled;
    if (!config_.forbid_target.empty() && target.find(config_.forbid_target) != std::string_view::npos)
        return Fault::Forbidden;
    if (config_.rate_limit > 0) {
        while (!window_.empty() && now - window_.front() >= std::chrono::seconds(1)) window_.pop_front();
        if (static_cast<double>(window_.size()) >= config_.rate_limit) return Fault::RateLimited;
        window_.push_back(now);
    }
    if (chance(config_.error_429)) return Fault::Throttled;
    if (chance(config_.reset)) return Fault::Reset;
    if (chance(config_.error_503)) return Fault::Unavailable;
    return Fault::None;
}

bool FaultInjector::ambiguous() {
    std::lock_guard lock(mutex_);
    return chance(config_.ambiguous);
}

std::chrono::milliseconds FaultInjector::latency() {
    std::lock_guard lock(mutex_);
    auto extra = config_.latency_jitter.count() > 0
                     ? std::uniform_int_distribution<long long>(0, config_.latency_jitter.count())(rng_)
                     : 0;
    return config_.latency + std::chrono::milliseconds(extra);
}

bool FaultInjector::close_after() {
    std::lock_guard lock(mutex_);
    return chance(config_.close);
}

std::chrono::milliseconds FaultInjector::slow() const {
    std::lock_guard lock(mutex_);
    return config_.slow;
}

int FaultInjector::retry_after_seconds(Fault fault) const {
    std::lock_guard lock(mutex_);
    switch (fault) {
        case Fault::RateLimited: return config_.retry_after_seconds;
        case Fault::Throttled: return config_.error_429_retry_after_seconds;
        case Fault::Unavailable: return config_.error_503_retry_after_seconds;
        case Fault::OutageUnavailable: return config_.outage_retry_after_seconds;
        default: return 0;
    }
}

FaultConfig FaultInjector::config() const {
    std::lock_guard lock(mutex_);
    return config_;
}

std::optional<std::string> FaultInjector::configure(const json::object& j, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto old_seed = config_.seed;
    if (auto problem = config_.update(j)) return problem;
    if (j.contains("seed") || config_.seed != old_seed) rng_.seed(config_.seed);
    if (j.contains("outage_ms")) outage_until_ = now + config_.outage;
    if (j.contains("rate_limit")) window_.clear();
    return std::nullopt;
}

}  // namespace prefsync::emulator
