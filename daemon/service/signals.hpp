#pragma once
// Signals, for every command: SIGINT/SIGTERM (and SIGHUP, for the daemon) are taken by a
// thread of their own (sigwait) and turned into flags the run polls: no work in a signal
// handler, no global state.
//
// With a drain bound (the daemon's shutdown_timeout), a process still running that long
// after SIGTERM exits anyway: the journal makes that safe (in-flight updates are resolved
// on restart).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace prefsync::service {

class Signals {
public:
    struct Options {
        bool reload = false;  // take SIGHUP as "reload" (the daemon)
        std::optional<std::chrono::milliseconds> drain_bound;
        bool announce = true;  // "Stopping: finishing requests in flight" on stderr
    };
    explicit Signals(Options options);
    ~Signals();
    Signals(const Signals&) = delete;
    Signals& operator=(const Signals&) = delete;

    const std::atomic<bool>& stop() const { return stop_; }
    bool take_reload() { return reload_.exchange(false); }
    // Sleeps until `deadline` or a signal.
    void sleep_until(std::chrono::steady_clock::time_point deadline);

private:
    void wait_for_signals();

    Options options_;
    sigset_t set_;
    std::atomic<bool> stop_{false}, reload_{false};
    bool exiting_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::thread thread_;
};

}  // namespace prefsync::service
