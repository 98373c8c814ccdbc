#pragma once
// What a push or pull run tells whoever watches it (the daemon's metrics and systemd
// status): every answered request, every retry, and a tick from the run's own event loop
// every 100 ms (so a watchdog fed from it proves that loop is alive). Called on the run's
// thread; implementations synchronise themselves.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace prefsync::sync {

struct RunProgress {
    std::string job;
    std::int64_t sent = 0, finished = 0, retries = 0, failed = 0;
    double rate_limit = 0;  // the limiter's current requests/s
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
};

}  // namespace prefsync::sync
