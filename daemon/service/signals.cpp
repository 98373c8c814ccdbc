#include "daemon/service/signals.hpp"

#include <unistd.h>

#include <cstdio>

#include "daemon/base/logger.hpp"

namespace prefsync::service {

Signals::Signals(Options options) : options_(options) {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGUSR2}) sigaddset(&set_, s);  // SIGUSR2 wakes the thread at exit
    if (options_.reload) sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { wait_for_signals(); });
}

Signals::~Signals() {
    {
        std::lock_guard lock(mutex_);
        exiting_ = true;
    }
    changed_.notify_all();
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
}

void Signals::sleep_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline, [this] { return stop_ || reload_ || exiting_; });
}

void Signals::wait_for_signals() {
    while (true) {
        int sig = 0;
        sigwait(&set_, &sig);
        if (sig == SIGUSR2) return;
        if (sig == SIGHUP) {
            {
                // Under the lock: set between sleep_until's check and its wait, the wake-up
                // would be lost until the next idle wake.
                std::lock_guard lock(mutex_);
                reload_ = true;
            }
            changed_.notify_all();
            continue;
        }
        if (options_.announce) {
            if (isatty(STDERR_FILENO)) std::fputc('\n', stderr);  // past the live progress line
            base::logger().info("Stopping: finishing requests in flight", {{"signal", sig}});
        }
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        if (!options_.drain_bound) return;
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, *options_.drain_bound, [this] { return exiting_; })) {
            base::logger().warn(
                "shutdown_timeout reached: exiting with requests still in flight "
                "(they are resolved on restart)");
            _exit(0);
        }
        return;
    }
}

}  // namespace prefsync::service
