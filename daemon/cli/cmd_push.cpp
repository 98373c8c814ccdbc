// `sync`, `backfill` and `retry`: one push run of a job.
#include <cstdio>

#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/cli/run_setup.hpp"
#include "daemon/push/push_run.hpp"
#include "daemon/push/target_guard.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {
namespace {

// The report describes this run however it ended: an early abort (no config, no source,
// a journal that fails, the lock held elsewhere) writes its exit code, why, and zeros, so
// an earlier run's report is never left standing for this one.
void write_push_report(const std::string& path, const std::string& job, const std::string& kind,
                       const push::PushReport& r, const std::string& error) {
    write_report(path, run_report_fields(job, kind, r.run_id, r.exit_code, error, r.seconds)
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
                           .add("source_warning", r.source_warning)
                           .add("duplicates", r.duplicates)
                           .add("from_earlier", r.from_earlier)
                           .add("without_base", r.without_base)
                           .add("still_refused", r.still_refused)
                           .add("failed_in_backfill", r.failed_in_backfill)
                           .add("missing", r.missing)
                           .add("missing_refused", r.missing_refused));
}

// The command without its report: fills `r` as far as the run got and `error` with why it
// stopped early (a message, never a token or a body); returns the exit code.
int push_command(const PushCommand& cmd, const char* kind, push::PushReport& r, std::string& error) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) {
        error = loaded.error;
        return loaded.exit_code;
    }
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    const auto& log = base::logger();
    base::LogScope log_scope(job.name);
    if (job.pull) {
        error = job.name + " is a pull job: run `prefsync pull " + job.name + "`";
        log.error(error);
        return kUsage;
    }
    return guarded(
        job.name,
        [&] {
            service::Signals signals({});
            RunSetup setup(config, job, kind, &signals.stop());
            if (setup.refused()) {
                error = setup.lock->refusal();
                log.error(error);
                return int(kFatal);
            }
            push::PushOptions options;
            options.backfill = cmd.kind == PushCommand::Kind::Backfill;
            options.resume = cmd.resume;
            options.read_source = cmd.kind != PushCommand::Kind::Retry;
            options.allow_mass_delete = cmd.allow_mass_delete;
            options.new_target = cmd.new_target;
            if (cmd.kind == PushCommand::Kind::Retry) {
                // Not re-queued for another API than the failures' (the run would refuse).
                push::guard_target(setup.journal, config, job, push::TargetUse::Check, now_ms());
                auto n = setup.journal.updates.retry_failed(job.name, cmd.status, now_ms());
                log.info("Re-queued failed updates", {{"job", job.name}, {"updates", n}});
            }
            try {
                setup.recorded([&] { push::run_push(setup.context, job, options, r); },
                               [&] { return push::run_record(job, options, r); });
            } catch (...) {
                // Stopped by an error (a full disk): what is left to send, for the report, if
                // the journal still answers; -1 if it does not (never a 0 that is not known).
                try {
                    r.pending = setup.journal.updates.pending(job.name);
                } catch (...) {
                    r.pending = -1;
                }
                throw;
            }
            std::printf(
                "%s %s: read %lld, queued %lld, unchanged %lld, rejected %lld | sent %lld requests on %llu "
                "connection(s): done %lld, accepted %lld, retried %lld, failed %lld | pending %lld | %.1f s, %.0f "
                "req/s\n",
                kind, job.name.c_str(), (long long)r.read, (long long)r.queued, (long long)r.unchanged,
                (long long)r.rejected, (long long)r.sent, (unsigned long long)r.connections, (long long)r.done,
                (long long)r.accepted, (long long)r.retries, (long long)r.failed, (long long)r.pending, r.seconds,
                r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0.0);
            if (r.duplicates > 0)
                std::printf("%lld duplicate id(s) (last occurrence wins)\n", static_cast<long long>(r.duplicates));
            if (r.from_earlier > 0)
                std::printf("%lld update(s) left by earlier runs, released to be sent besides those queued\n",
                            static_cast<long long>(r.from_earlier));
            if (r.still_refused > 0)
                std::printf(
                    "%lld row(s) unchanged since the API refused them (400, 413 or 422): not sent again, still failed "
                    "(see `prefsync failures %s`; `prefsync retry %s` sends them)\n",
                    static_cast<long long>(r.still_refused), job.name.c_str(), job.name.c_str());
            if (r.failed_before_resume > 0)
                std::printf(
                    "%lld row(s) this backfill gave up on before it was resumed: not sent again, still failed "
                    "(see `prefsync failures %s`; `prefsync retry %s` sends them)\n",
                    static_cast<long long>(r.failed_before_resume), job.name.c_str(), job.name.c_str());
            if (r.missing > 0 && r.missing_refused.empty())
                std::printf("%lld profile(s) no longer in the source: %s\n", static_cast<long long>(r.missing),
                            std::string(config::to_string(job.on_missing)).c_str());
            if (!r.missing_refused.empty()) log.warn(r.missing_refused);
            if (!r.source_error.empty()) {
                error = "jobs." + job.name + ".source: " + r.source_error;
                log.error(error);
                log.info("Reading stopped; the rows read are journaled, and the next run continues from there",
                         {{"read", r.read}});
            }
            if (!r.fatal.empty()) {
                error = r.fatal;
                log.error("Aborted; nothing was lost: run again once fixed", {{"reason", r.fatal}});
            }
            if (!r.unavailable.empty() && error.empty()) error = r.unavailable;
            if (r.interrupted && options.backfill)
                log.info("interrupted: `prefsync backfill " + job.name +
                         " --resume` continues it without sending again the rows it sent");
            else if (r.interrupted)
                log.info("interrupted: run the same command again to resume");
            if (r.failed > 0)
                log.warn("Updates failed: see `prefsync failures " + job.name + "`", {{"failed", r.failed}});
            return r.exit_code;
        },
        &error);
}

}  // namespace

int cmd_push(const PushCommand& cmd) {
    const char* kind = cmd.kind == PushCommand::Kind::Backfill ? "backfill"
                       : cmd.kind == PushCommand::Kind::Retry  ? "retry"
                                                               : "sync";
    push::PushReport r;  // zeros until a run reports
    std::string error;
    r.exit_code = push_command(cmd, kind, r, error);
    if (!cmd.report.empty()) write_push_report(cmd.report, cmd.job, kind, r, error);
    return r.exit_code;
}

}  // namespace prefsync::cli
