// `sync`, `backfill` and `retry`: one push run of a job.
#include <cstdio>

#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/cli/run_setup.hpp"
#include "daemon/push/push_run.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {
namespace {

void write_push_report(const std::string& path, const std::string& job, const std::string& kind, const push::PushReport& r) {
    write_report(path, JsonFields()
                           .add("job", job)
                           .add("kind", kind)
                           .add("run_id", r.run_id)
                           .add("exit_code", r.exit_code)
                           .add("finished_at_ms", now_ms())
                           .add("seconds", r.seconds)
                           .add("read", r.read)
                           .add("queued", r.queued)
                           .add("unchanged", r.unchanged)
                           .add("rejected", r.rejected)
                           .add("sent", r.sent)
                           .add("done", r.done)
                           .add("accepted", r.accepted)
                           .add("retries", r.retries)
                           .add("failed", r.failed)
                           .add("pending", r.pending)
                           .add("interrupted", r.interrupted)
                           .add("fatal", r.fatal)
                           .add("source_error", r.source_error)
                           .add("duplicates", r.duplicates)
                           .add("missing", r.missing)
                           .add("missing_refused", r.missing_refused));
}

}  // namespace

int cmd_push(const PushCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    if (job.pull) {
        std::fprintf(stderr, "error: %s is a pull job: run `prefsync pull %s`\n", job.name.c_str(), job.name.c_str());
        return kUsage;
    }
    const char* kind = cmd.kind == PushCommand::Kind::Backfill ? "backfill"
                       : cmd.kind == PushCommand::Kind::Retry  ? "retry"
                                                               : "sync";
    return guarded(job.name, [&] {
        service::Signals signals({});
        RunSetup setup(config, job, kind, &signals.stop());
        if (setup.refused()) {
            std::fprintf(stderr, "error: %s\n", setup.lock->refusal().c_str());
            return int(kFatal);
        }
        if (cmd.kind == PushCommand::Kind::Retry) {
            auto n = setup.journal.updates.retry_failed(job.name, cmd.status, now_ms());
            std::fprintf(stderr, "re-queued %lld failed update(s) of %s\n", static_cast<long long>(n), job.name.c_str());
        }
        push::PushOptions options;
        options.backfill = cmd.kind == PushCommand::Kind::Backfill;
        options.resume = cmd.resume;
        options.read_source = cmd.kind != PushCommand::Kind::Retry;
        options.allow_mass_delete = cmd.allow_mass_delete;
        auto r = push::run_push(setup.context, job, options);
        if (!cmd.report.empty()) write_push_report(cmd.report, job.name, kind, r);
        std::printf("%s %s: read %lld, queued %lld, unchanged %lld, rejected %lld | sent %lld requests on %llu "
                    "connection(s): done %lld, accepted %lld, retried %lld, failed %lld | pending %lld | %.1f s, %.0f req/s\n",
                    kind, job.name.c_str(), (long long)r.read, (long long)r.queued, (long long)r.unchanged,
                    (long long)r.rejected, (long long)r.sent, (unsigned long long)r.connections, (long long)r.done,
                    (long long)r.accepted, (long long)r.retries, (long long)r.failed, (long long)r.pending, r.seconds,
                    r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0.0);
        if (r.duplicates > 0)
            std::printf("%lld duplicate id(s) (last occurrence wins)\n", static_cast<long long>(r.duplicates));
        if (r.missing > 0 && r.missing_refused.empty())
            std::printf("%lld profile(s) no longer in the source: %s\n", static_cast<long long>(r.missing),
                        std::string(config::to_string(job.on_missing)).c_str());
        if (!r.missing_refused.empty()) std::fprintf(stderr, "%s\n", r.missing_refused.c_str());
        if (!r.source_error.empty())
            std::fprintf(stderr, "error: jobs.%s.source: %s\nreading stopped after %lld row(s); they are journaled, and "
                                 "the next run continues from there\n",
                         job.name.c_str(), r.source_error.c_str(), static_cast<long long>(r.read));
        if (!r.fatal.empty()) std::fprintf(stderr, "aborted: %s (nothing was lost; run again once fixed)\n", r.fatal.c_str());
        if (r.interrupted) std::fprintf(stderr, "interrupted: run the same command again to resume\n");
        if (r.failed > 0)
            std::fprintf(stderr, "%lld update(s) failed: see `prefsync failures %s`\n", (long long)r.failed, job.name.c_str());
        return r.exit_code;
    });
}

}  // namespace prefsync::cli
