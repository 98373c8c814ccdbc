#include "daemon/cli/common.hpp"

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

}  // namespace prefsync::cli
