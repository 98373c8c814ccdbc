#include <unistd.h>

#include <cstdio>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/pull/pull_run.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::cli {

int cmd_pull(const PullCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    if (!job.pull) {
        std::fprintf(stderr, "error: %s is a push job: run `prefsync sync %s` (pull jobs have a `pull:` section)\n",
                     job.name.c_str(), job.name.c_str());
        return kUsage;
    }
    StopOnSignal stop;
    try {
        auto token = config::resolve_token(config);
        journal::Journal journal(config.journal.path);
        JobLock lock(journal, job.name, "pull");
        if (!lock.held()) {
            std::fprintf(stderr, "error: %s\n", lock.refusal().c_str());
            return kFatal;
        }
        pull::PullOptions options;
        options.user_agent = std::string("prefsync/") + PREFSYNC_VERSION;
        options.stop = &stop.flag();
        auto r = pull::run_pull(config, job, journal, token, options);
        if (!cmd.report.empty()) {
            auto str = [](const std::string& v) {
                std::string out;
                base::append_json_string(out, v);
                return out;
            };
            auto n = [](std::int64_t v) { return std::to_string(v); };
            write_report(cmd.report, {{"job", str(job.name)}, {"kind", "\"pull\""}, {"run_id", n(r.run_id)},
                                      {"exit_code", n(r.exit_code)}, {"finished_at_ms", n(now_ms())},
                                      {"seconds", std::to_string(r.seconds)}, {"resumed", r.resumed ? "true" : "false"},
                                      {"items", n(r.items)}, {"rejected", n(r.rejected)}, {"done", n(r.done)},
                                      {"missing", n(r.missing)}, {"failed", n(r.failed)}, {"requests", n(r.requests)},
                                      {"retries", n(r.retries)}, {"profiles", n(r.profiles)}, {"rows", n(r.rows)},
                                      {"identical", n(r.identical)}, {"differing", n(r.differing)},
                                      {"output", str(r.output)}, {"fatal", str(r.fatal)}});
        }
        std::printf("pull %s: %lld item(s)%s: done %lld, missing %lld, failed %lld | %lld request(s), %lld retried | "
                    "%lld profile(s), %lld row(s) written to %s%s | %.1f s, %.0f profiles/s\n",
                    job.name.c_str(), (long long)r.items, r.resumed ? " (resumed)" : "", (long long)r.done,
                    (long long)r.missing, (long long)r.failed, (long long)r.requests, (long long)r.retries,
                    (long long)r.profiles, (long long)r.rows, r.output.c_str(),
                    r.duplicates ? (", " + std::to_string(r.duplicates) + " duplicate(s) skipped").c_str() : "",
                    r.seconds, r.seconds > 0 ? static_cast<double>(r.profiles) / r.seconds : 0.0);
        if (r.bytes_parsed > 0 && r.parse_seconds > 0)
            std::printf("parsed %.1f MB of JSON in %.3f s (%.0f MB/s), %.1f%% of the process's %.2f s CPU\n",
                        static_cast<double>(r.bytes_parsed) / 1e6, r.parse_seconds,
                        static_cast<double>(r.bytes_parsed) / 1e6 / r.parse_seconds,
                        r.cpu_seconds > 0 ? 100.0 * r.parse_seconds / r.cpu_seconds : 0.0, r.cpu_seconds);
        if (!job.pull->reconcile.empty() && r.exit_code <= 2)
            std::printf("reconcile with %s: identical %lld, differing %lld, missing %lld (details: %s)\n",
                        job.pull->reconcile.c_str(), (long long)r.identical, (long long)r.differing,
                        (long long)r.missing, r.reconcile_report.c_str());
        if (r.rejected > 0) std::fprintf(stderr, "%lld identity row(s) rejected\n", (long long)r.rejected);
        if (!r.fatal.empty()) std::fprintf(stderr, "aborted: %s (run again to resume)\n", r.fatal.c_str());
        if (r.interrupted) std::fprintf(stderr, "interrupted: run the same command again to resume\n");
        return r.exit_code;
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    } catch (const connectors::SourceError& e) {
        std::fprintf(stderr, "error: source: %s\n", e.what());
        return kFatal;
    } catch (const connectors::SinkError& e) {
        std::fprintf(stderr, "error: jobs.%s.sink: %s\n", job.name.c_str(), e.what());
        return kFatal;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kFatal;
    }
}

}  // namespace prefsync::cli
