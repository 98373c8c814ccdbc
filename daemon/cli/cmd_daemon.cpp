// `prefsync daemon`: wires the DaemonLoop (daemon/service/daemon_loop.hpp: what to run
// when, parking after fatal runs) to signals, systemd (READY, STATUS, WATCHDOG), the
// /metrics server and the runs themselves.
//
// Design constraints:
// - Jobs run one at a time on this thread, so they share one rate limit (and, through the
//   journal's bucket, with any other prefsync process on the host); each run holds its
//   job's lock, so a hand-run `sync` of the same job is refused.
// - SIGTERM/SIGINT stop claiming work and let the run drain, bounded by
//   daemon.shutdown_timeout; SIGHUP reloads the config between runs and releases parked
//   jobs. A config that does not load or whose token cannot be read is refused and the old
//   one kept; what is read only at start keeps its running value (daemon_reload.hpp).
// - The watchdog is fed from every run's ticks (reading, journaling, sending, verifying)
//   and from the idle loop, so a hung loop stops the pings and systemd restarts the service.
#include <cstdio>
#include <ctime>
#include <memory>

#include "config/config.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/daemon_reload.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/cli/run_setup.hpp"
#include "daemon/pull/pull_run.hpp"
#include "daemon/push/push_run.hpp"
#include "daemon/push/verify_run.hpp"
#include "daemon/service/daemon_loop.hpp"
#include "daemon/service/metrics.hpp"
#include "daemon/service/metrics_server.hpp"
#include "daemon/service/notifier.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {
namespace {

// Feeds the watchdog and systemd's status line from the run's ticks.
class RunWatch final : public dispatch::RunObserver {
public:
    RunWatch(service::Metrics& metrics, service::Notifier& notifier) : metrics_(metrics), notifier_(notifier) {}
    void on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) override {
        metrics_.on_request(endpoint, status, elapsed);
    }
    void on_retry(int status) override { metrics_.on_retry(status); }
    void on_complete(std::chrono::milliseconds waited) override { metrics_.on_complete(waited); }
    void on_breaker(bool open) override { metrics_.on_breaker(open); }
    // Each run counts its sends from 0: its first status has no rate yet.
    void begin_run() {
        last_status_ = {};
        last_sent_ = 0;
    }
    void on_tick(const dispatch::RunProgress& p) override {
        metrics_.on_tick(p);
        notifier_.watchdog();
        // The status comes from the request loop's ticks, which know what was sent: a reading
        // heartbeat's zeros would show "0 sent" and a negative rate between them.
        if (p.reading) return;
        auto now = std::chrono::steady_clock::now();
        if (now - last_status_ < std::chrono::seconds(1)) return;
        // The run's sends over the time since its last status (none before its first, nor
        // when a new round of the run counts from 0 again).
        bool known = last_status_.time_since_epoch().count() != 0 && p.sent >= last_sent_;
        double rate =
            known ? static_cast<double>(p.sent - last_sent_) / std::chrono::duration<double>(now - last_status_).count()
                  : 0;
        last_status_ = now;
        last_sent_ = p.sent;
        char status[256];
        std::snprintf(status, sizeof status,
                      "running %s: %lld read, %lld sent, %lld finished, %lld retried, %.0f req/s (limit %.0f/s)",
                      p.job.c_str(), (long long)p.read, (long long)p.sent, (long long)p.finished, (long long)p.retries,
                      rate, p.rate_limit);
        notifier_.status(status);
    }

private:
    service::Metrics& metrics_;
    service::Notifier& notifier_;
    std::chrono::steady_clock::time_point last_status_{};
    std::int64_t last_sent_ = 0;
};

// One run the loop asked for; its outcome (exit 3 with the reason for fatal ones).
service::RunOutcome run_one(const config::Config& config, const config::JobConfig& job, service::RunKind kind,
                            const std::atomic<bool>& stop, RunWatch& watch, service::Metrics& metrics) {
    service::RunOutcome outcome;
    std::string label = job.pull ? "pull" : std::string(to_string(kind));
    const auto& log = base::logger();
    base::LogScope log_scope(job.name);
    watch.begin_run();
    try {
        RunSetup setup(config, job, "daemon", &stop, &watch);
        setup.context.progress_tty = false;
        setup.context.wait_for_source = false;
        if (setup.refused()) {
            log.warn("Skipping this run", {{"reason", setup.lock->refusal()}});
            outcome.skipped = true;
            return outcome;
        }
        auto level = [](int exit_code) {
            return exit_code == 0 || exit_code == 4 ? base::LogLevel::Info : base::LogLevel::Warning;
        };
        if (kind == service::RunKind::Verify) {
            auto r = push::run_verify(setup.context, job, std::chrono::milliseconds(0));
            outcome = {!r.fatal.empty() ? 3 : r.unavailable.empty() ? 0 : 4, r.fatal.empty() ? r.unavailable : r.fatal};
            log.log(level(outcome.exit_code), "Verified",
                    {{"job", job.name},
                     {"complete", r.verified},
                     {"still_pending", r.pending},
                     {"missing", r.missing},
                     {"too_large_to_read", r.unreadable},
                     {"fatal", base::omit_if_empty(r.fatal)},
                     {"unavailable", base::omit_if_empty(r.unavailable)}});
        } else if (job.pull) {
            pull::PullReport r;
            setup.recorded([&] { pull::run_pull(setup.context, job, r); }, [&] { return pull::run_record(job, r); });
            outcome = {r.exit_code, r.exit_code == 4 ? r.unavailable : r.fatal};
            log.log(level(outcome.exit_code), "Pulled",
                    {{"job", job.name},
                     {"exit", r.exit_code},
                     {"profiles", r.profiles},
                     {"missing", r.missing},
                     {"failed", r.failed},
                     {"fatal", base::omit_if_empty(r.fatal)},
                     {"unavailable", base::omit_if_empty(r.unavailable)}});
        } else {
            push::PushOptions o;
            o.read_source = kind == service::RunKind::Scheduled;
            push::PushReport r;
            setup.recorded([&] { push::run_push(setup.context, job, o, r); },
                           [&] { return push::run_record(job, o, r); });
            outcome = {r.exit_code, r.exit_code == 4 && !r.source_changed ? r.unavailable
                                    : r.fatal.empty()                     ? r.source_error
                                                                          : r.fatal};
            outcome.reread_source = r.source_changed;
            log.log(level(outcome.exit_code), "Pushed",
                    {{"kind", label},
                     {"job", job.name},
                     {"exit", r.exit_code},
                     {"read", r.read},
                     {"queued", r.queued},
                     {"sent", r.sent},
                     {"failed", r.failed},
                     {"still_refused", r.still_refused},
                     {"pending", r.pending},
                     {"fatal", base::omit_if_empty(r.fatal.empty() ? r.source_error : r.fatal)},
                     {"unavailable", base::omit_if_empty(r.unavailable)}});
        }
    } catch (...) {
        auto failure = describe_failure(std::current_exception(), job.name);
        for (const auto& e : failure.errors)
            log.log(failure.source_changed ? base::LogLevel::Warning : base::LogLevel::Error, e, {});
        outcome = {3, failure.summary()};
        // A file still being written (its settle) or changed as it was opened: read again
        // soon, as one that changed while it was read, not parked until its next slot.
        if (failure.source_changed) outcome = {4, failure.summary(), false, true};
    }
    metrics.run_finished(job.name, label, outcome.exit_code, now_ms());
    return outcome;
}

}  // namespace

int cmd_daemon(const std::string& config_path) {
    auto loaded = load_for_job(config_path, "");
    if (!loaded.ok()) return loaded.exit_code;
    auto config = std::make_unique<config::Config>(std::move(*loaded.config));
    setenv("TZ", config->daemon.timezone.c_str(), 1);
    tzset();
    return guarded("", [&] {
        config::resolve_token(*config);  // a missing token is a config error now, not at the first run
        service::Signals signals({.reload = true, .drain_bound = config->daemon.shutdown_timeout, .announce = false});
        service::Notifier notifier;
        service::Metrics metrics;
        RunWatch watch(metrics, notifier);
        journal::Journal journal(config->journal.path);
        // A daemon stopped by shutdown_timeout (or killed) left its run without an end: ended
        // now, not at the job's next run, which may be far off (a job with nothing to retry).
        for (const auto& job : journal.runs.unfinished_jobs()) {
            journal::JobLock lock(config->journal.path, job, "daemon");
            if (lock.held()) end_abandoned_runs(journal, job);
        }
        std::atomic<const char*> state{"idle"};
        std::unique_ptr<service::MetricsServer> server;
        if (!config->daemon.metrics_listen.empty()) {
            server =
                std::make_unique<service::MetricsServer>(config->daemon.metrics_listen, metrics, config->journal.path,
                                                         [&state] { return std::string("ok ") + state.load(); });
            // First line on stdout, so whoever started the daemon with port 0 learns the port.
            std::printf("metrics http://127.0.0.1:%u/metrics\n", static_cast<unsigned>(server->port()));
            std::fflush(stdout);
        }
        const auto& log = base::logger();
        service::DaemonLoop loop(*config, journal, log);
        loop.start(now_ms());
        if (loop.scheduled() == 0) log.warn("no job has a schedule; the daemon only drains retries");
        notifier.ready("idle: " + std::to_string(loop.scheduled()) + " scheduled job(s)");

        while (!signals.stop()) {
            notifier.watchdog();
            if (signals.take_reload()) {
                try {
                    auto fresh = std::make_unique<config::Config>(config::load_config(config_path));
                    for (auto& w : fresh->warnings) log.warn(w);
                    config::resolve_token(*fresh);  // as at start: a token that cannot be read refuses the reload
                    std::string kept_keys;
                    for (const auto& k : keep_start_only_settings(*config, *fresh)) {
                        log.warn(k.key + " changed: it takes effect at the next start; until then the daemon keeps " +
                                     "the running value",
                                 {{"running", k.running}, {"configured", k.configured}});
                        kept_keys += (kept_keys.empty() ? "" : ",") + k.key;
                    }
                    loop.reload(*fresh, now_ms());
                    config = std::move(fresh);
                    log.info("Config reloaded", {{"config", config_path},
                                                 {"jobs", config->jobs.size()},
                                                 {"scheduled", loop.scheduled()},
                                                 {"restart_needed_for", base::omit_if_empty(kept_keys)}});
                    notifier.status("reloaded; idle");
                } catch (const config::ConfigError&) {
                    for (const auto& e : describe_failure(std::current_exception(), "").errors) log.error(e);
                    log.error("Reload refused: the config has errors; still running the previous one",
                              {{"config", config_path}});
                }
            }
            auto action = loop.step(now_ms());
            if (action.kind == service::Action::Kind::Run) {
                const auto* job = config->find_job(action.job);
                if (!job) continue;
                state = "running";
                notifier.status("running " + job->name);
                auto outcome = run_one(*config, *job, action.run, signals.stop(), watch, metrics);
                loop.finished(action, outcome, now_ms());
                state = "idle";
                continue;
            }
            auto next = loop.next_fire();
            notifier.status("idle" + (next ? "; next " + next->first + " at " + base::local_time(next->second) : ""));
            auto wait = std::chrono::milliseconds(std::max<journal::Millis>(0, action.until - now_ms()));
            signals.sleep_until(std::chrono::steady_clock::now() + wait);
        }
        notifier.stopping("stopping: runs drained; everything unfinished resumes on restart");
        log.info("stopped (signal): unfinished work is in the journal and resumes on restart");
        return int(kOk);
    });
}

}  // namespace prefsync::cli
