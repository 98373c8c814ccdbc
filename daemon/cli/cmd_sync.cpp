#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/sync/push_run.hpp"
#include "daemon/sync/verify_run.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::cli {

void write_push_report(const std::string& path, const std::string& job, const std::string& kind,
                       const sync::PushReport& r) {
    auto str = [](const std::string& v) {
        std::string out;
        base::append_json_string(out, v);
        return out;
    };
    auto n = [](std::int64_t v) { return std::to_string(v); };
    write_report(path, {{"job", str(job)}, {"kind", str(kind)}, {"run_id", n(r.run_id)}, {"exit_code", n(r.exit_code)},
                        {"finished_at_ms", n(now_ms())}, {"seconds", std::to_string(r.seconds)},
                        {"read", n(r.read)}, {"queued", n(r.queued)}, {"unchanged", n(r.unchanged)},
                        {"rejected", n(r.rejected)}, {"sent", n(r.sent)}, {"done", n(r.done)}, {"accepted", n(r.accepted)},
                        {"retries", n(r.retries)}, {"failed", n(r.failed)}, {"pending", n(r.pending)},
                        {"interrupted", r.interrupted ? "true" : "false"}, {"fatal", str(r.fatal)},
                        {"source_error", str(r.source_error)}});
}

int cmd_push(const PushCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    const auto& config = *loaded.config;
    const auto& job = *loaded.job;
    if (job.pull) {
        std::fprintf(stderr, "error: %s is a pull job: run `prefsync pull %s`\n", job.name.c_str(), job.name.c_str());
        return kUsage;
    }
    std::string token;
    try {
        token = config::resolve_token(config);
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    }
    StopOnSignal stop;
    sync::PushOptions options;
    options.backfill = cmd.kind == PushCommand::Kind::Backfill;
    options.resume = cmd.resume;
    options.read_source = cmd.kind != PushCommand::Kind::Retry;
    options.user_agent = std::string("prefsync/") + PREFSYNC_VERSION;
    options.stop = &stop.flag();
    options.progress_tty = isatty(STDERR_FILENO) != 0;
    try {
        journal::Journal journal(config.journal.path);
        const char* kind = cmd.kind == PushCommand::Kind::Backfill ? "backfill"
                         : cmd.kind == PushCommand::Kind::Retry   ? "retry" : "sync";
        JobLock lock(journal, job.name, kind);
        if (!lock.held()) {
            std::fprintf(stderr, "error: %s\n", lock.refusal().c_str());
            return kFatal;
        }
        if (cmd.kind == PushCommand::Kind::Retry) {
            auto n = journal.retry_failed(job.name, cmd.status, now_ms());
            std::fprintf(stderr, "re-queued %lld failed update(s) of %s\n", static_cast<long long>(n), job.name.c_str());
        }
        auto r = sync::run_push(config, job, journal, token, options);
        if (!cmd.report.empty()) write_push_report(cmd.report, job.name, kind, r);
        std::printf("%s %s: read %lld, queued %lld, unchanged %lld, rejected %lld | sent %lld requests on %llu "
                    "connection(s): done %lld, accepted %lld, retried %lld, failed %lld | pending %lld | %.1f s, %.0f req/s\n",
                    kind, job.name.c_str(), (long long)r.read, (long long)r.queued, (long long)r.unchanged,
                    (long long)r.rejected, (long long)r.sent, (unsigned long long)r.connections, (long long)r.done,
                    (long long)r.accepted, (long long)r.retries, (long long)r.failed, (long long)r.pending, r.seconds,
                    r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0.0);
        if (!r.source_error.empty())
            std::fprintf(stderr, "error: jobs.%s.source: %s\nreading stopped after %lld row(s); they are journaled, and "
                                 "the next run continues from there\n",
                         job.name.c_str(), r.source_error.c_str(), static_cast<long long>(r.read));
        if (!r.fatal.empty()) std::fprintf(stderr, "aborted: %s (nothing was lost; run again once fixed)\n", r.fatal.c_str());
        if (r.interrupted) std::fprintf(stderr, "interrupted: run the same command again to resume\n");
        if (r.failed > 0) std::fprintf(stderr, "%lld update(s) failed: see `prefsync failures %s`\n", (long long)r.failed, job.name.c_str());
        return r.exit_code;
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    } catch (const connectors::SourceError& e) {
        std::fprintf(stderr, "error: jobs.%s.source: %s\n", job.name.c_str(), e.what());
        return kFatal;
    } catch (const journal::JournalError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kFatal;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kFatal;
    }
}

int cmd_verify(const VerifyCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    auto wait = config::parse_duration(cmd.wait);
    if (!wait) {
        std::fprintf(stderr, "error: --wait %s: expected a duration such as 30s or 5m\n", cmd.wait.c_str());
        return kUsage;
    }
    try {
        auto token = config::resolve_token(*loaded.config);
        journal::Journal journal(loaded.config->journal.path);
        auto r = sync::run_verify(*loaded.config, *loaded.job, journal, token, *wait,
                                  std::string("prefsync/") + PREFSYNC_VERSION);
        std::printf("verify %s: checked %lld, complete %lld, still pending %lld, missing %lld\n", cmd.job.c_str(),
                    (long long)r.checked, (long long)r.verified, (long long)r.pending, (long long)r.missing);
        if (!r.fatal.empty()) {
            std::fprintf(stderr, "aborted: %s\n", r.fatal.c_str());
            return kFatal;
        }
        return r.pending > 0 || r.missing > 0 ? kPartial : kOk;
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kFatal;
    }
}

}  // namespace prefsync::cli
