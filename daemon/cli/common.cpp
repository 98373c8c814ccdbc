#include "daemon/cli/common.hpp"

#include <ctime>

#include <cstdio>

#include "daemon/cli/cli.hpp"

namespace prefsync::cli {

LoadedJob load_for_job(const std::string& config_path, const std::string& job) {
    LoadedJob out;
    try {
        out.config = config::load_config(config_path);
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        out.exit_code = kUsage;
        return out;
    }
    for (auto& w : out.config->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (job.empty()) return out;
    out.job = out.config->find_job(job);
    if (!out.job) {
        std::string names;
        for (auto& j : out.config->jobs) names += (names.empty() ? "" : ", ") + j.name;
        std::fprintf(stderr, "error: %s: no job named \"%s\" (jobs: %s)\n", config_path.c_str(), job.c_str(),
                     names.c_str());
        out.exit_code = kUsage;
        out.config.reset();
    }
    return out;
}

JobLock::JobLock(journal::Journal& journal, const std::string& job, const std::string& owner)
    : journal_(journal), job_(job) {
    auto holder = journal.lock_job(job, owner, now_ms());
    if (!holder) return;
    std::time_t t = static_cast<std::time_t>(holder->acquired_at / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    refusal_ = "job " + job + " is being run by " + (holder->owner == "daemon" ? "the daemon" : "`" + holder->owner + "`") +
               " (pid " + std::to_string(holder->pid) + " on " + holder->host + ") since " + when +
               "; wait for that run to finish, or stop it";
}

JobLock::~JobLock() {
    if (held()) {
        try {
            journal_.unlock_job(job_);
        } catch (const std::exception&) {
            // The lock of a process that is gone is taken over by the next run anyway.
        }
    }
}

void write_report(const std::string& path, const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string json = "{";
    for (const auto& [key, value] : fields) json += (json.size() > 1 ? ",\n  \"" : "\n  \"") + key + "\": " + value;
    json += "\n}\n";
    auto tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f || std::fwrite(json.data(), 1, json.size(), f) != json.size() || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), path.c_str()) != 0)
        std::fprintf(stderr, "warning: cannot write the report %s\n", path.c_str());
}

}  // namespace prefsync::cli
