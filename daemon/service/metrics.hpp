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
#include "daemon/dispatch/run_observer.hpp"

namespace prefsync::service {

// A Prometheus histogram: cumulative buckets at fixed upper bounds, a sum and a count.
template <std::size_t N>
struct Histogram {
    std::array<double, N> bounds;
    std::array<std::int64_t, N + 1> counts{};
    double sum = 0;
    std::int64_t count = 0;

    void observe(double value) {
        std::size_t i = 0;
        while (i < N && value > bounds[i]) ++i;
        ++counts[i];
        sum += value;
        ++count;
    }
    void render(std::string& out, const std::string& name) const;
};

class Metrics final : public dispatch::RunObserver {
public:
    void on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) override;
    void on_retry(int status) override;
    void on_tick(const dispatch::RunProgress& progress) override;
    void on_breaker(bool open) override;
    void on_complete(std::chrono::milliseconds waited) override;
    void run_finished(const std::string& job, const std::string& kind, int exit_code, std::int64_t ended_at_ms);

    // The text of /metrics; `journal` gives rows by state and the journal's size.
    std::string render(journal::Journal& journal, const std::vector<std::string>& jobs);

private:
    std::mutex mutex_;
    std::map<std::pair<std::string, int>, std::int64_t> requests_;  // (endpoint, status) → count
    Histogram<11> latency_{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
    Histogram<10> complete_{{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}};
    std::int64_t retries_ = 0, throttled_ = 0;
    double rate_limit_ = 0;
    bool breaker_open_ = false;
    std::int64_t breaker_trips_ = 0;
    std::map<std::tuple<std::string, std::string, int>, std::int64_t> runs_;  // (job, kind, exit) → count
    std::map<std::string, std::int64_t> last_run_ms_;
};

}  // namespace prefsync::service
