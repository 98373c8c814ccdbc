#include "daemon/cli/daemon_reload.hpp"

namespace prefsync::cli {
namespace {

std::string duration_text(config::Duration d) {
    auto ms = d.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

std::string log_text(const config::LogConfig& log) {
    return "level " + std::string(base::to_string(log.level)) + ", format " + std::string(base::to_string(log.format)) +
           ", bodies " + (log.bodies ? "true" : "false");
}

// Keeps `running` in `fresh` when they differ, and notes it under `key`.
template <class T, class Text>
void keep(std::vector<KeptSetting>& kept, const char* key, const T& running, T& fresh, Text text) {
    if (fresh == running) return;
    kept.push_back({key, text(running), text(fresh)});
    fresh = running;
}

}  // namespace

std::vector<KeptSetting> keep_start_only_settings(const config::Config& running, config::Config& fresh) {
    std::vector<KeptSetting> kept;
    auto as_is = [](const std::string& s) { return s; };
    keep(kept, "daemon.metrics_listen", running.daemon.metrics_listen, fresh.daemon.metrics_listen, as_is);
    keep(kept, "daemon.shutdown_timeout", running.daemon.shutdown_timeout, fresh.daemon.shutdown_timeout,
         duration_text);
    keep(kept, "daemon.timezone", running.daemon.timezone, fresh.daemon.timezone, as_is);
    // A reject file left to its default lives beside the journal: it stays with the journal
    // the daemon keeps, not the one the file names.
    if (running.journal.path != fresh.journal.path)
        for (auto& job : fresh.jobs)
            if (job.source.reject_file == config::default_reject_file(fresh.journal.path, job.name))
                job.source.reject_file = config::default_reject_file(running.journal.path, job.name);
    keep(kept, "journal.path", running.journal.path, fresh.journal.path, as_is);
    keep(kept, "log", running.log, fresh.log, log_text);
    return kept;
}

}  // namespace prefsync::cli
