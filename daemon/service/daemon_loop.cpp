#include "daemon/service/daemon_loop.hpp"

#include <algorithm>
#include <ctime>

#include "daemon/base/clock.hpp"

namespace prefsync::service {
namespace {

using journal::Millis;

constexpr Millis kSecond = 1000;
// Idle wake-ups at least this often: another process (a hand-run sync) may leave retries.
constexpr Millis kIdleWake = 1000;

Millis next_slot(const Schedule& s, Millis now) {
    return s.next_after(now / kSecond) * kSecond;
}

}  // namespace

std::string_view to_string(RunKind kind) {
    switch (kind) {
        case RunKind::Scheduled: return "sync";
        case RunKind::Retries: return "retry";
        case RunKind::Verify: return "verify";
    }
    return "?";
}

DaemonLoop::DaemonLoop(const config::Config& config, journal::Journal& journal, const base::Logger& log)
    : config_(&config), journal_(journal), log_(log) {}

Millis DaemonLoop::park_backoff(int failures) {
    Millis delay = 30 * kSecond;
    for (int i = 1; i < failures && delay < 3600 * kSecond; ++i) delay *= 2;
    return std::min<Millis>(delay, 3600 * kSecond);
}

void DaemonLoop::plan(Millis now) {
    jobs_.clear();
    for (const auto& job : config_->jobs) {
        Job j;
        if (!job.schedule.empty()) {
            j.schedule = Schedule::parse(job.schedule);
            j.next = next_slot(*j.schedule, now);
            auto last = journal_.schedule.last_fire(job.name);
            if (config_->daemon.catch_up && last && next_slot(*j.schedule, *last) <= now) {
                log_.info("Missed a run while the daemon was down (catch_up): running it now", {{"job", job.name}});
                j.next = now;
            }
            log_.info("Scheduled",
                      {{"job", job.name}, {"schedule", j.schedule->text()}, {"next_run", base::local_time(j.next)}});
        }
        if (auto p = journal_.schedule.parked(job.name); p && j.schedule) j.next = std::max(j.next, p->until);
        jobs_.emplace(job.name, std::move(j));
    }
}

bool DaemonLoop::parked(const std::string& job, Millis now) {
    auto p = journal_.schedule.parked(job);
    return p && p->until > now;
}

bool DaemonLoop::resting(const std::string& job, Millis now) const {
    auto it = jobs_.find(job);
    return it != jobs_.end() && it->second.resting_until > now;
}

Action DaemonLoop::step(Millis now) {
    // Due scheduled runs first, earliest first (a parked job's next fire is past its park).
    auto due = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
        if (it->second.schedule && it->second.next <= now && (due == jobs_.end() || it->second.next < due->second.next))
            due = it;
    if (due != jobs_.end()) {
        journal_.schedule.set_last_fire(due->first, now);
        due->second.next = next_slot(*due->second.schedule, now);
        return {Action::Kind::Run, due->first, RunKind::Scheduled, 0};
    }
    Millis wake = now + kIdleWake;
    for (const auto& [name, j] : jobs_)
        if (j.schedule) wake = std::min(wake, j.next);
    // Between runs: updates whose retry is due are sent without re-reading sources.
    for (const auto& job : config_->jobs) {
        if (job.pull || parked(job.name, now)) continue;
        if (auto next = journal_.updates.next_due(job.name)) {
            auto at = std::max(*next, jobs_[job.name].resting_until);
            if (at <= now) return {Action::Kind::Run, job.name, RunKind::Retries, 0};
            wake = std::min(wake, at);
        }
    }
    // daemon.verify: accepted updates read back, at most once per interval per job.
    if (config_->daemon.verify) {
        for (const auto& job : config_->jobs) {
            if (job.pull || parked(job.name, now) || resting(job.name, now)) continue;
            auto& j = jobs_[job.name];
            if (now - j.last_verify < config_->daemon.verify_interval.count()) continue;
            // The look scans the job's rows (synced_store.hpp) and the loop wakes every
            // second: after one found none, looked for again only once a run started or
            // ended (this daemon's or another process's), or while one is going on.
            auto mark = journal_.runs.mark(job.name);
            if (!j.maybe_unverified && mark == j.looked_at && !mark.running) continue;
            j.looked_at = mark;
            j.maybe_unverified = journal_.synced.any_unverified(job.name);
            if (!j.maybe_unverified) continue;
            j.last_verify = now;
            return {Action::Kind::Run, job.name, RunKind::Verify, 0};
        }
    }
    return {Action::Kind::Sleep, "", RunKind::Scheduled, std::max(now, wake)};
}

void DaemonLoop::finished(const Action& action, const RunOutcome& outcome, Millis now) {
    if (action.kind != Action::Kind::Run) return;
    const auto& name = action.job;
    auto& job = jobs_[name];
    if (outcome.skipped) {
        job.resting_until = std::max(job.resting_until, now + 30 * kSecond);
        return;  // nothing ran: nothing learned
    }
    if (outcome.reread_source) {
        // Its writer is likely done soon: read again after 30 s, then later each time (at
        // most an hour apart), and at the next slot if that comes first.
        auto at = now + park_backoff(++job.source_changes);
        if (job.schedule) job.next = std::min(job.next, at);
        log_.warn("The source changed while it was read: it is read again",
                  {{"job", name},
                   {"at", base::local_time(job.schedule ? job.next : at)},
                   {"changed_in_a_row", job.source_changes},
                   {"reason", outcome.error}});
        return;
    }
    job.source_changes = 0;
    if (outcome.exit_code == 4) {
        if (outcome.error.empty()) return;  // stopped (a signal): nothing learned
        // The API was unavailable for the whole of a run's patience: not again at once.
        job.resting_until = now + park_backoff(++job.unavailable_runs);
        log_.warn("The API was unavailable: this job's retries wait", {{"job", name},
                                                                       {"until", base::local_time(job.resting_until)},
                                                                       {"unavailable_in_a_row", job.unavailable_runs},
                                                                       {"reason", outcome.error}});
        return;
    }
    job.resting_until = 0;
    job.unavailable_runs = 0;
    if (outcome.exit_code != 3) {
        if (journal_.schedule.parked(name)) {
            journal_.schedule.unpark(name);
            log_.info("Ran without a fatal error again: no longer parked", {{"job", name}});
        }
        return;
    }
    journal::Parked p;
    if (auto old = journal_.schedule.parked(name)) p.failures = old->failures;
    ++p.failures;
    p.reason = outcome.error.empty() ? "exit 3" : outcome.error;
    p.until = now + park_backoff(p.failures);
    auto it = jobs_.find(name);
    if (it != jobs_.end() && it->second.schedule) {
        it->second.next = std::max(next_slot(*it->second.schedule, now), p.until);
        p.until = it->second.next;
    }
    journal_.schedule.park(name, p);
    log_.warn("Job parked after a fatal run: fix the cause, then `systemctl reload prefsync` (SIGHUP) to retry at once",
              {{"job", name},
               {"until", base::local_time(p.until)},
               {"kind", to_string(action.run)},
               {"fatal_in_a_row", p.failures},
               {"reason", p.reason}});
}

void DaemonLoop::reload(const config::Config& config, Millis now) {
    config_ = &config;
    std::vector<std::pair<std::string, std::string>> released;  // job, why it was parked
    for (const auto& [name, p] : journal_.schedule.all_parked()) {
        journal_.schedule.unpark(name);
        released.emplace_back(name, p.reason);
    }
    plan(now);
    for (const auto& [name, reason] : released) {
        // The operator fixed the cause: the run that failed is tried again now, not at the
        // next slot (a nightly job would otherwise wait for the next night).
        auto it = jobs_.find(name);
        bool scheduled = it != jobs_.end() && it->second.schedule;
        if (scheduled) it->second.next = now;
        log_.info(scheduled ? "Released by the reload: running it now" : "Released by the reload",
                  {{"job", name}, {"was_parked", reason}});
    }
}

std::optional<std::pair<std::string, Millis>> DaemonLoop::next_fire() const {
    std::optional<std::pair<std::string, Millis>> out;
    for (const auto& [name, j] : jobs_)
        if (j.schedule && (!out || j.next < out->second)) out = std::make_pair(name, j.next);
    return out;
}

std::size_t DaemonLoop::scheduled() const {
    return static_cast<std::size_t>(
        std::count_if(jobs_.begin(), jobs_.end(), [](auto& j) { return j.second.schedule.has_value(); }));
}

}  // namespace prefsync::service
