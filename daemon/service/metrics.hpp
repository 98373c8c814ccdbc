#pragma once
// The daemon's counters, rendered in the Prometheus text format (version 0.0.4). Runs
// report into it (RunObserver); the journal is read at scrape time for what it knows
// better (rows by state, its size).
#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/journal/journal.hpp"
#include "daemon/sync/run_observer.hpp"

namespace prefsync::service {

class Metrics final : public sync::RunObserver {
public:
    void on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) override;
    void on_retry(int status) override;
    void on_tick(const sync::RunProgress& progress) override;
    void run_finished(const std::string& job, const std::string& kind, int exit_code, std::int64_t ended_at_ms);

    // The text of /metrics; `journal` gives rows by state and the journal's size.
    std::string render(journal::Journal& journal, const std::vector<std::string>& jobs);

private:
    static constexpr std::array<double, 11> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    std::mutex mutex_;
    std::map<std::pair<std::string, int>, std::int64_t> requests_;  // (endpoint, status) → count
    std::array<std::int64_t, kBuckets.size() + 1> latency_buckets_{};
    double latency_sum_ = 0;
    std::int64_t latency_count_ = 0, retries_ = 0, throttled_ = 0;
    double rate_limit_ = 0;
    std::map<std::tuple<std::string, std::string, int>, std::int64_t> runs_;  // (job, kind, exit) → count
    std::map<std::string, std::int64_t> last_run_ms_;
};

}  // namespace prefsync::service
