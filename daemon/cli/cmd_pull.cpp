#include <unistd.h>

#include <cstdio>

#include "config/config.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/pull/pull_run.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/cli/run_setup.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {

int cmd_pull(const PullCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    const auto& log = base::logger();
    base::LogScope log_scope(job.name);
    if (!job.pull) {
        log.error(job.name + " is a push job: run `prefsync sync " + job.name + "` (pull jobs have a `pull:` section)");
        return kUsage;
    }
    return guarded(job.name, [&] {
        service::Signals signals({});
        RunSetup setup(config, job, "pull", &signals.stop());
        if (setup.refused()) {
            log.error(setup.lock->refusal());
            return int(kFatal);
        }
        auto r = pull::run_pull(setup.context, job);
        if (!cmd.report.empty())
            write_report(cmd.report, JsonFields()
                                         .add("job", job.name)
                                         .add("kind", "pull")
                                         .add("run_id", r.run_id)
                                         .add("exit_code", r.exit_code)
                                         .add("finished_at_ms", now_ms())
                                         .add("seconds", r.seconds)
                                         .add("resumed", r.resumed)
                                         .add("items", r.items)
                                         .add("duplicate_ids", r.duplicate_ids)
                                         .add("rejected", r.rejected)
                                         .add("done", r.done)
                                         .add("missing", r.missing)
                                         .add("failed", r.failed)
                                         .add("requests", r.requests)
                                         .add("retries", r.retries)
                                         .add("profiles", r.profiles)
                                         .add("rows", r.rows)
                                         .add("identical", r.identical)
                                         .add("differing", r.differing)
                                         .add("output", r.output)
                                         .add("fatal", r.fatal));
        std::printf(
            "pull %s: %lld item(s)%s: done %lld, missing %lld, failed %lld | %lld request(s), %lld retried | "
            "%lld profile(s), %lld row(s) written to %s%s | %.1f s, %.0f profiles/s\n",
            job.name.c_str(), (long long)r.items, r.resumed ? " (resumed)" : "", (long long)r.done,
            (long long)r.missing, (long long)r.failed, (long long)r.requests, (long long)r.retries,
            (long long)r.profiles, (long long)r.rows, r.output.c_str(),
            r.duplicates ? (", " + std::to_string(r.duplicates) + " duplicate(s) skipped").c_str() : "", r.seconds,
            r.seconds > 0 ? static_cast<double>(r.profiles) / r.seconds : 0.0);
        if (r.duplicate_ids > 0)
            std::printf("%lld duplicate id(s) (last occurrence wins)\n", static_cast<long long>(r.duplicate_ids));
        if (r.bytes_parsed > 0 && r.parse_seconds > 0)
            std::printf("parsed %.1f MB of JSON in %.3f s (%.0f MB/s), %.1f%% of the process's %.2f s CPU\n",
                        static_cast<double>(r.bytes_parsed) / 1e6, r.parse_seconds,
                        static_cast<double>(r.bytes_parsed) / 1e6 / r.parse_seconds,
                        r.cpu_seconds > 0 ? 100.0 * r.parse_seconds / r.cpu_seconds : 0.0, r.cpu_seconds);
        if (!job.pull->reconcile.empty() && r.exit_code <= 2)
            std::printf("reconcile with %s: identical %lld, differing %lld, missing %lld, failed %lld (details: %s)\n",
                        job.pull->reconcile.c_str(), (long long)r.identical, (long long)r.differing,
                        (long long)r.missing, (long long)r.failed, r.reconcile_report.c_str());
        if (r.rejected > 0) log.warn("Identity rows rejected", {{"rejected", r.rejected}});
        if (!r.fatal.empty()) log.error("Aborted; run again to resume", {{"reason", r.fatal}});
        if (r.interrupted) log.info("interrupted: run the same command again to resume");
        return r.exit_code;
    });
}

}  // namespace prefsync::cli
