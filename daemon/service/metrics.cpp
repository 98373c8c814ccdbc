#include "daemon/service/metrics.hpp"

#include <cstdio>
#include <filesystem>

namespace prefsync::service {

void Metrics::on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) {
    std::lock_guard lock(mutex_);
    ++requests_[{std::string(endpoint), status}];
    if (status == 429) ++throttled_;
    latency_.observe(static_cast<double>(elapsed.count()) / 1e6);
}

void Metrics::on_retry(int) {
    std::lock_guard lock(mutex_);
    ++retries_;
}

void Metrics::on_breaker(bool open) {
    std::lock_guard lock(mutex_);
    breaker_open_ = open;
    if (open) ++breaker_trips_;
}

void Metrics::on_tick(const dispatch::RunProgress& progress) {
    std::lock_guard lock(mutex_);
    // The heartbeat of a source being read knows no rate (0): the last run's stands.
    if (progress.rate_limit > 0) rate_limit_ = progress.rate_limit;
}

void Metrics::on_complete(std::chrono::milliseconds waited) {
    std::lock_guard lock(mutex_);
    complete_.observe(static_cast<double>(waited.count()) / 1000.0);
}

void Metrics::run_finished(const std::string& job, const std::string& kind, int exit_code, std::int64_t ended_at_ms) {
    std::lock_guard lock(mutex_);
    ++runs_[{job, kind, exit_code}];
    last_run_ms_[job] = ended_at_ms;
}

namespace {
std::string escape(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}
std::string label(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}
std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}
}  // namespace

template <std::size_t N>
void Histogram<N>::render(std::string& out, const std::string& name) const {
    std::int64_t cumulative = 0;
    for (std::size_t i = 0; i < N; ++i) {
        cumulative += counts[i];
        out += name + "_bucket{le=\"" + label(bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += counts[N];
    out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out += name + "_sum " + num(sum) + "\n";
    out += name + "_count " + std::to_string(count) + "\n";
}

std::string Metrics::render(journal::Journal& journal, const std::vector<std::string>& jobs) {
    std::string out;
    auto help = [&](const char* name, const char* type, const char* text) {
        out += std::string("# HELP ") + name + " " + text + "\n# TYPE " + name + " " + type + "\n";
    };
    {
        std::lock_guard lock(mutex_);
        help("prefsync_requests_total", "counter", "API requests by endpoint and HTTP status (0: no answer).");
        for (const auto& [key, n] : requests_)
            out += "prefsync_requests_total{endpoint=\"" + escape(key.first) + "\",status=\"" +
                   std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
        help("prefsync_request_duration_seconds", "histogram", "API request latency.");
        latency_.render(out, "prefsync_request_duration_seconds");
        help("prefsync_accepted_to_complete_seconds", "histogram",
             "From a 202 to UpdateStatus \"Complete\" read back (daemon.verify; bounded by the verify interval).");
        complete_.render(out, "prefsync_accepted_to_complete_seconds");
        help("prefsync_retries_total", "counter", "Requests scheduled for another attempt.");
        out += "prefsync_retries_total " + std::to_string(retries_) + "\n";
        help("prefsync_throttled_total", "counter", "429 answers.");
        out += "prefsync_throttled_total " + std::to_string(throttled_) + "\n";
        help("prefsync_rate_limit_requests_per_second", "gauge", "The adaptive rate limit of the last run.");
        out += "prefsync_rate_limit_requests_per_second " + num(rate_limit_) + "\n";
        help("prefsync_api_breaker_open", "gauge",
             "1 while the API fails as a whole and runs pause (circuit breaker open), else 0.");
        out += std::string("prefsync_api_breaker_open ") + (breaker_open_ ? "1" : "0") + "\n";
        help("prefsync_api_breaker_trips_total", "counter", "Times the circuit breaker opened.");
        out += "prefsync_api_breaker_trips_total " + std::to_string(breaker_trips_) + "\n";
        help("prefsync_runs_total", "counter", "Finished runs by job, kind and exit code.");
        for (const auto& [key, n] : runs_)
            out += "prefsync_runs_total{job=\"" + escape(std::get<0>(key)) + "\",kind=\"" + std::get<1>(key) +
                   "\",exit_code=\"" + std::to_string(std::get<2>(key)) + "\"} " + std::to_string(n) + "\n";
        help("prefsync_last_run_end_timestamp_seconds", "gauge", "When each job's last run ended.");
        for (const auto& [job, ms] : last_run_ms_)
            out += "prefsync_last_run_end_timestamp_seconds{job=\"" + escape(job) + "\"} " +
                   num(static_cast<double>(ms) / 1000.0) + "\n";
    }
    help("prefsync_rows", "gauge",
         "Updates in the journal's queue by job and state (queued, inflight, retry, waiting, failed), and "
         "identities by the outcome of their last write (done, accepted: a 202 not yet verified, verified).");
    for (const auto& job : jobs) {
        auto c = journal.updates.counts(job);
        for (auto [state, n] :
             {std::pair{"queued", c.queued}, std::pair{"inflight", c.inflight}, std::pair{"retry", c.retry},
              std::pair{"waiting", c.waiting}, std::pair{"accepted", c.accepted}, std::pair{"done", c.done},
              std::pair{"verified", c.verified}, std::pair{"failed", c.failed}})
            out += "prefsync_rows{job=\"" + escape(job) + "\",state=\"" + state + "\"} " + std::to_string(n) + "\n";
    }
    // A family's samples stand together (the text format wants each family as one group).
    auto parked = journal.schedule.all_parked();
    help("prefsync_job_parked", "gauge",
         "1 while the daemon has parked a job after a fatal run (until its next slot after a backoff, or a reload).");
    for (const auto& job : jobs)
        out += "prefsync_job_parked{job=\"" + escape(job) + "\"} " + (parked.count(job) ? "1" : "0") + "\n";
    help("prefsync_job_consecutive_fatal_runs", "gauge", "Fatal runs in a row of a parked job.");
    for (const auto& job : jobs) {
        auto it = parked.find(job);
        out += "prefsync_job_consecutive_fatal_runs{job=\"" + escape(job) + "\"} " +
               std::to_string(it == parked.end() ? 0 : it->second.failures) + "\n";
    }
    help("prefsync_journal_bytes", "gauge", "Size of the journal database.");
    out += "prefsync_journal_bytes " + std::to_string(journal.db.size_bytes()) + "\n";
    return out;
}

}  // namespace prefsync::service
