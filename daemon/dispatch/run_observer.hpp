#pragma once
// What a run tells whoever watches it (the daemon's metrics, systemd's status line and
// watchdog): every answered request, every retry, the circuit breaker opening and closing,
// and a tick at least every 100 ms while the run makes progress, from whatever it is doing
// (reading a source, journaling, sending), so a watchdog fed from ticks proves the run is
// alive. Called on the run's thread; implementations synchronise themselves.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace prefsync::dispatch {

struct RunProgress {
    std::string job;
    std::int64_t read = 0;  // source rows read so far
    std::int64_t sent = 0, finished = 0, retries = 0, failed = 0;
    double rate_limit = 0;  // the limiter's current requests/s
    // A heartbeat while the source is read or journaled: only `read` is known (the request
    // loop, which counts the rest, is waiting for the batch).
    bool reading = false;
};

class RunObserver {
public:
    virtual ~RunObserver() = default;
    // `endpoint`: "upsert", "read", "search", ...; status 0 when there was no answer.
    virtual void on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) = 0;
    virtual void on_retry(int status) = 0;
    virtual void on_tick(const RunProgress& progress) = 0;
    // verify: an accepted update reached "Complete" after `waited` (from its 202).
    virtual void on_complete(std::chrono::milliseconds waited) { (void)waited; }
    // The API failed alike often enough that the run paused (open) or answers again (closed).
    virtual void on_breaker(bool open) { (void)open; }
};

// Calls on_tick at most every `period` from loops that do not run on the event loop
// (reading a source, enumerating a pull): call beat() once per row.
class Heartbeat {
public:
    Heartbeat(RunObserver* observer, RunProgress& progress,
              std::chrono::milliseconds period = std::chrono::milliseconds(100))
        : observer_(observer), progress_(progress), period_(period) {}
    void beat() {
        if (!observer_ || ++count_ % 64 != 0) return;
        auto now = std::chrono::steady_clock::now();
        if (now - last_ < period_) return;
        last_ = now;
        observer_->on_tick(progress_);
    }

private:
    RunObserver* observer_;
    RunProgress& progress_;
    std::chrono::milliseconds period_;
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t count_ = 0;
};

}  // namespace prefsync::dispatch
