#pragma once
// What the subcommands share: loading the config and finding a job, with the messages and
// exit codes every command gives for them.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"

#ifndef PREFSYNC_VERSION
#define PREFSYNC_VERSION "dev"
#endif

namespace prefsync::cli {

struct LoadedJob {
    std::optional<config::Config> config;
    const config::JobConfig* job = nullptr;
    int exit_code = 0;
    bool ok() const { return config && (job || exit_code == 0); }
};

// Loads the config (warnings to stderr) and, if `job` is not empty, finds the job.
LoadedJob load_for_job(const std::string& config_path, const std::string& job);

// SIGINT/SIGTERM are taken by a thread of their own (sigwait) and turned into a stop flag
// the run polls: no work in a signal handler, no global state.
class StopOnSignal {
public:
    StopOnSignal() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        sigaddset(&set_, SIGUSR2);  // used only to wake the thread at exit
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);
        thread_ = std::thread([this] {
            int sig = 0;
            sigwait(&set_, &sig);
            if (sig != SIGUSR2) {
                std::fprintf(stderr, "\nStopping: finishing requests in flight (signal %d)\n", sig);
                stop_ = true;
            }
        });
    }
    ~StopOnSignal() {
        pthread_kill(thread_.native_handle(), SIGUSR2);
        thread_.join();
    }
    const std::atomic<bool>& flag() const { return stop_; }

private:
    sigset_t set_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

inline journal::Millis now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace prefsync::cli
