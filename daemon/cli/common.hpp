#pragma once
// What the subcommands share: loading the config and finding a job, with the messages and
// exit codes every command gives for them.
#include <chrono>
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

inline journal::Millis now_millis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace prefsync::cli
