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

namespace {

// As a push's report (cmd_push.cpp): it describes this run however it ended.
void write_pull_report(const std::string& path, const std::string& job, const pull::PullReport& r,
                       const std::string& error) {
    write_report(path, run_report_fields(job, "pull", r.run_id, r.exit_code, error, r.seconds)
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
}

// The command without its report: fills `r` as far as the run got and `error` with why it
// stopped early; returns the exit code.
int pull_command(const PullCommand& cmd, pull::PullReport& r, std::string& error) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) {
        error = loaded.error;
        return loaded.exit_code;
    }
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    const auto& log = base::logger();
    base::LogScope log_scope(job.name);
    if (!job.pull) {
        error = job.name + " is a push job: run `prefsync sync " + job.name + "` (pull jobs have a `pull:` section)";
        log.error(error);
        return kUsage;
    }
    return guarded(
        job.name,
        [&] {
            service::Signals signals({});
            RunSetup setup(config, job, "pull", &signals.stop());
            if (setup.refused()) {
                error = setup.lock->refusal();
                log.error(error);
                return int(kFatal);
            }
            setup.recorded([&] { pull::run_pull(setup.context, job, r); }, [&] { return pull::run_record(job, r); });
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
                std::printf(
                    "reconcile with %s: identical %lld, differing %lld, missing %lld, failed %lld (details: %s)\n",
                    job.pull->reconcile.c_str(), (long long)r.identical, (long long)r.differing, (long long)r.missing,
                    (long long)r.failed, r.reconcile_report.c_str());
            if (r.rejected > 0) log.warn("Identity rows rejected", {{"rejected", r.rejected}});
            if (!r.fatal.empty()) {
                error = r.fatal;
                log.error("Aborted; run again to resume", {{"reason", r.fatal}});
            }
            if (!r.unavailable.empty() && error.empty()) error = r.unavailable;
            if (r.interrupted) log.info("interrupted: run the same command again to resume");
            return r.exit_code;
        },
        &error);
}

}  // namespace

int cmd_pull(const PullCommand& cmd) {
    pull::PullReport r;  // zeros until a run reports
    std::string error;
    r.exit_code = pull_command(cmd, r, error);
    if (!cmd.report.empty()) write_pull_report(cmd.report, cmd.job, r, error);
    return r.exit_code;
}

}  // namespace prefsync::cli
