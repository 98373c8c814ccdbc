// `prefsync daemon`: runs every scheduled job, drains due retries between runs, reports to
// systemd (READY, STATUS, WATCHDOG) and serves /metrics and /healthz.
//
// Design constraints:
// - Jobs run one at a time on the main thread, so they share one rate limit (and, through
//   the journal's bucket, with any other prefsync process on the host); each run holds
//   the job's lock in the journal, so a hand-run `sync` of the same job is refused.
// - Signals are taken by a thread of their own (sigwait): SIGTERM/SIGINT stop claiming
//   work and let the run drain; if the drain takes longer than daemon.shutdown_timeout
//   the process exits anyway (the journal makes that safe: nothing is lost, in-flight
//   updates are resolved on restart). SIGHUP reloads the config between runs; a config
//   that does not load is refused and the old one kept.
// - The watchdog is fed from the run's event loop (RunObserver ticks) and from the idle
//   loop, so a hung loop stops the pings and systemd restarts the service.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/pull/pull_run.hpp"
#include "daemon/service/metrics.hpp"
#include "daemon/service/metrics_server.hpp"
#include "daemon/service/notifier.hpp"
#include "daemon/service/schedule.hpp"
#include "daemon/base/log.hpp"
#include "daemon/sync/push_run.hpp"
#include "daemon/sync/verify_run.hpp"

namespace prefsync::cli {
namespace {

// One log line, with journald's priority prefix under systemd (base::priority_prefix).
class Log {
public:
    __attribute__((format(printf, 3, 4))) void line(base::Priority priority, const char* format, ...) const {
        std::fputs(base::priority_prefix(priority), stderr);
        va_list args;
        va_start(args, format);
        std::vfprintf(stderr, format, args);
        va_end(args);
        std::fputc('\n', stderr);
    }
};
constexpr auto kErr = base::Priority::Error, kWarning = base::Priority::Warning, kInfo = base::Priority::Info;

class DaemonSignals {
public:
    explicit DaemonSignals(std::chrono::milliseconds shutdown_timeout) : timeout_(shutdown_timeout) {
        sigemptyset(&set_);
        for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR2}) sigaddset(&set_, s);
        pthread_sigmask(SIG_BLOCK, &set_, nullptr);
        thread_ = std::thread([this] { wait_for_signals(); });
    }
    ~DaemonSignals() {
        {
            std::lock_guard lock(mutex_);
            exiting_ = true;
        }
        changed_.notify_all();
        pthread_kill(thread_.native_handle(), SIGUSR2);
        thread_.join();
    }
    const std::atomic<bool>& stop() const { return stop_; }
    bool take_reload() { return reload_.exchange(false); }
    // Sleeps until `deadline` or a signal.
    void sleep_until(std::chrono::steady_clock::time_point deadline) {
        std::unique_lock lock(mutex_);
        changed_.wait_until(lock, deadline, [this] { return stop_ || reload_ || exiting_; });
    }

private:
    void wait_for_signals() {
        while (true) {
            int sig = 0;
            sigwait(&set_, &sig);
            if (sig == SIGUSR2) return;
            if (sig == SIGHUP) {
                reload_ = true;
                changed_.notify_all();
                continue;
            }
            stop_ = true;
            changed_.notify_all();
            // Bounded drain: past the timeout, exit; the journal makes that safe.
            std::unique_lock lock(mutex_);
            if (!changed_.wait_for(lock, timeout_, [this] { return exiting_; })) {
                std::fprintf(stderr, "shutdown_timeout reached: exiting with requests still in flight "
                                     "(they are resolved on restart)\n");
                std::fflush(stderr);
                _exit(0);
            }
            return;
        }
    }

    sigset_t set_;
    std::chrono::milliseconds timeout_;
    std::atomic<bool> stop_{false}, reload_{false};
    bool exiting_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::thread thread_;
};

// Feeds the watchdog and systemd's status line from the run's event loop.
class RunWatch final : public sync::RunObserver {
public:
    RunWatch(service::Metrics& metrics, service::Notifier& notifier) : metrics_(metrics), notifier_(notifier) {}
    void on_request(std::string_view endpoint, int status, std::chrono::microseconds elapsed) override {
        metrics_.on_request(endpoint, status, elapsed);
    }
    void on_retry(int status) override { metrics_.on_retry(status); }
    void on_complete(std::chrono::milliseconds waited) override { metrics_.on_complete(waited); }
    void on_tick(const sync::RunProgress& p) override {
        metrics_.on_tick(p);
        notifier_.watchdog();
        auto now = std::chrono::steady_clock::now();
        if (now - last_status_ < std::chrono::seconds(1)) return;
        double rate = last_status_.time_since_epoch().count() == 0
                          ? 0
                          : static_cast<double>(p.sent - last_sent_) /
                                std::chrono::duration<double>(now - last_status_).count();
        last_status_ = now;
        last_sent_ = p.sent;
        char status[256];
        std::snprintf(status, sizeof status, "running %s: %lld sent, %lld finished, %lld retried, %.0f req/s (limit %.0f/s)",
                      p.job.c_str(), (long long)p.sent, (long long)p.finished, (long long)p.retries, rate, p.rate_limit);
        notifier_.status(status);
    }

private:
    service::Metrics& metrics_;
    service::Notifier& notifier_;
    std::chrono::steady_clock::time_point last_status_{};
    std::int64_t last_sent_ = 0;
};

std::int64_t now_seconds() { return now_ms() / 1000; }

std::string local_time(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    localtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}

struct Scheduled {
    service::Schedule schedule;
    std::int64_t next = 0;  // seconds since the epoch
};

// Next fire times; with catch_up, a job whose last fire is older than its previous slot
// (the daemon was down then) is due at once, once.
std::map<std::string, Scheduled> plan(const config::Config& config, journal::Journal& journal, const Log& log) {
    std::map<std::string, Scheduled> out;
    auto now = now_seconds();
    for (const auto& job : config.jobs) {
        if (job.schedule.empty()) continue;
        Scheduled s{service::Schedule::parse(job.schedule), 0};
        s.next = s.schedule.next_after(now);
        auto last = journal.last_fire(job.name);
        if (config.daemon.catch_up && last && s.schedule.next_after(*last / 1000) <= now) {
            log.line(kInfo, "catch_up: %s missed a run while the daemon was down; running it now", job.name.c_str());
            s.next = now;
        }
        out.emplace(job.name, std::move(s));
    }
    return out;
}

}  // namespace

int cmd_daemon(const std::string& config_path) {
    Log log;
    auto loaded = load_for_job(config_path, "");
    if (!loaded.ok()) return loaded.exit_code;
    auto config = std::make_unique<config::Config>(std::move(*loaded.config));
    if (config->daemon.timezone != "UTC") setenv("TZ", config->daemon.timezone.c_str(), 1);
    else setenv("TZ", "UTC", 1);
    tzset();
    std::string token;
    try {
        token = config::resolve_token(*config);
    } catch (const config::ConfigError& e) {
        log.line(kErr, "error: %s", e.what());
        return kUsage;
    }
    DaemonSignals signals(config->daemon.shutdown_timeout);
    service::Notifier notifier;
    service::Metrics metrics;
    RunWatch watch(metrics, notifier);
    try {
        journal::Journal journal(config->journal.path);
        std::atomic<const char*> state{"idle"};
        std::unique_ptr<service::MetricsServer> server;
        if (!config->daemon.metrics_listen.empty()) {
            server = std::make_unique<service::MetricsServer>(config->daemon.metrics_listen, metrics, config->journal.path,
                                                              [&state] { return std::string("ok ") + state.load(); });
            // First line on stdout, so whoever started the daemon with port 0 learns the port.
            std::printf("metrics http://127.0.0.1:%u/metrics\n", static_cast<unsigned>(server->port()));
            std::fflush(stdout);
        }
        auto schedules = plan(*config, journal, log);
        if (schedules.empty()) log.line(kWarning, "warning: no job has a schedule; the daemon only drains retries");
        for (const auto& [name, s] : schedules)
            log.line(kInfo, "scheduled %s (%s): next run at %s", name.c_str(), s.schedule.text().c_str(),
                     local_time(s.next).c_str());
        notifier.ready("idle: " + std::to_string(schedules.size()) + " scheduled job(s)");

        auto run_job = [&](const config::JobConfig& job, bool retries_only) {
            JobLock lock(journal, job.name, "daemon");
            if (!lock.held()) {
                log.line(kWarning, "warning: skipping this run: %s", lock.refusal().c_str());
                return;
            }
            state = "running";
            notifier.status("running " + job.name);
            try {
                if (job.pull) {
                    pull::PullOptions o;
                    o.user_agent = std::string("prefsync/") + PREFSYNC_VERSION;
                    o.stop = &signals.stop();
                    o.observer = &watch;
                    auto r = pull::run_pull(*config, job, journal, token, o);
                    log.line(r.exit_code == 0 ? kInfo : kWarning, "pull %s: exit %d, %lld profile(s), missing %lld, failed %lld",
                             job.name.c_str(), r.exit_code, (long long)r.profiles, (long long)r.missing, (long long)r.failed);
                    metrics.run_finished(job.name, "pull", r.exit_code, now_ms());
                } else {
                    sync::PushOptions o;
                    o.read_source = !retries_only;
                    o.user_agent = std::string("prefsync/") + PREFSYNC_VERSION;
                    o.stop = &signals.stop();
                    o.observer = &watch;
                    auto r = sync::run_push(*config, job, journal, token, o);
                    log.line(r.exit_code == 0 ? kInfo : (r.exit_code == 4 ? kInfo : kWarning),
                             "%s %s: exit %d, read %lld, queued %lld, sent %lld, failed %lld, pending %lld%s%s",
                             retries_only ? "retries" : "sync", job.name.c_str(), r.exit_code, (long long)r.read,
                             (long long)r.queued, (long long)r.sent, (long long)r.failed, (long long)r.pending,
                             r.fatal.empty() ? "" : ": ", r.fatal.c_str());
                    metrics.run_finished(job.name, retries_only ? "retry" : "sync", r.exit_code, now_ms());
                }
            } catch (const std::exception& e) {
                log.line(kErr, "error: %s: %s", job.name.c_str(), e.what());
                metrics.run_finished(job.name, job.pull ? "pull" : "sync", kFatal, now_ms());
            }
            state = "idle";
        };

        // daemon.verify: accepted updates read back until "Complete", at most once per interval per job.
        std::map<std::string, std::chrono::steady_clock::time_point> last_verify;
        auto verify_due = [&](const config::JobConfig& job) {
            if (!config->daemon.verify || job.pull || signals.stop()) return false;
            auto it = last_verify.find(job.name);
            if (it != last_verify.end() && std::chrono::steady_clock::now() - it->second < config->daemon.verify_interval)
                return false;
            return journal.counts(job.name).accepted > 0;
        };
        auto verify_job = [&](const config::JobConfig& job) {
            last_verify[job.name] = std::chrono::steady_clock::now();
            JobLock lock(journal, job.name, "daemon");
            if (!lock.held()) return;
            auto r = sync::run_verify(*config, job, journal, token, std::chrono::milliseconds(0),
                                      std::string("prefsync/") + PREFSYNC_VERSION, &watch);
            log.line(r.fatal.empty() ? kInfo : kWarning, "verify %s: complete %lld, still pending %lld, missing %lld%s%s",
                     job.name.c_str(), (long long)r.verified, (long long)r.pending, (long long)r.missing,
                     r.fatal.empty() ? "" : ": ", r.fatal.c_str());
        };

        while (!signals.stop()) {
            notifier.watchdog();
            if (signals.take_reload()) {
                try {
                    auto fresh = std::make_unique<config::Config>(config::load_config(config_path));
                    for (auto& w : fresh->warnings) log.line(kWarning, "warning: %s", w.c_str());
                    config = std::move(fresh);
                    schedules = plan(*config, journal, log);
                    log.line(kInfo, "reloaded %s: %zu job(s), %zu scheduled", config_path.c_str(), config->jobs.size(),
                             schedules.size());
                    notifier.status("reloaded; idle");
                } catch (const config::ConfigError& e) {
                    for (const auto& d : e.diagnostics()) log.line(kErr, "error: %s", d.to_string().c_str());
                    log.line(kErr, "error: reload refused: %s has errors; still running the previous config",
                             config_path.c_str());
                }
            }
            // Due scheduled runs first, earliest first.
            auto now = now_seconds();
            auto due = std::min_element(schedules.begin(), schedules.end(),
                                        [](auto& a, auto& b) { return a.second.next < b.second.next; });
            if (due != schedules.end() && due->second.next <= now) {
                const auto* job = config->find_job(due->first);
                journal.set_last_fire(due->first, now_ms());
                due->second.next = due->second.schedule.next_after(now_seconds());
                if (job) run_job(*job, false);
                continue;
            }
            // Between runs: updates whose retry is due are sent without re-reading sources.
            bool drained = false;
            for (const auto& job : config->jobs) {
                if (job.pull || signals.stop()) continue;
                auto next = journal.next_due(job.name);
                if (next && *next <= now_ms()) {
                    run_job(job, true);
                    drained = true;
                }
            }
            if (drained) continue;
            for (const auto& job : config->jobs)
                if (verify_due(job)) verify_job(job);
            auto wake = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            if (due != schedules.end())
                wake = std::min(wake, std::chrono::steady_clock::now() + std::chrono::seconds(std::max<std::int64_t>(0, due->second.next - now)));
            std::string next_text = due == schedules.end() ? "" : "; next " + due->first + " at " + local_time(due->second.next);
            notifier.status("idle" + next_text);
            signals.sleep_until(wake);
        }
        notifier.stopping("stopping: runs drained; everything unfinished resumes on restart");
        log.line(kInfo, "stopped (signal): unfinished work is in the journal and resumes on restart");
        return kOk;
    } catch (const journal::JournalError& e) {
        log.line(kErr, "error: %s", e.what());
        return kFatal;
    } catch (const std::exception& e) {
        log.line(kErr, "error: %s", e.what());
        return kFatal;
    }
}

}  // namespace prefsync::cli
