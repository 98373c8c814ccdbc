#pragma once
// What the subcommands share: loading the config and finding a job, with the messages and
// exit codes every command gives for them.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>
#include <vector>
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"
#include "daemon/base/clock.hpp"

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

// One run of a job at a time, across processes (the daemon, a timer's `sync`, a hand-run
// backfill): the lock lives in the journal. A second run is refused with who holds it.
class JobLock {
public:
    JobLock(journal::Journal& journal, const std::string& job, const std::string& owner);
    ~JobLock();
    JobLock(const JobLock&) = delete;
    JobLock& operator=(const JobLock&) = delete;
    bool held() const { return refusal_.empty(); }
    // "job crm is being run by the daemon (pid 123 on host h) since 2026-11-28T02:00:00Z"
    const std::string& refusal() const { return refusal_; }

private:
    journal::Journal& journal_;
    std::string job_, refusal_;
};

// Writes a run report (JSON) for schedulers and alerting; `fields` are already JSON values.
void write_report(const std::string& path, const std::vector<std::pair<std::string, std::string>>& fields);

using base::now_ms;

}  // namespace prefsync::cli
