#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/base/logger.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/journal/journal.hpp"
#include "daemon/pull/pull_run.hpp"

namespace prefsync::cli {

namespace {

std::string csv_field(const std::string& v) {
    if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
    std::string out = "\"";
    for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// One line of `failures`: a push job's dead letter, or a pull job's item that failed or is
// missing (whose fourth column is that outcome: a pull does not count attempts).
struct FailureLine {
    std::string identity, origin;
    int status = 0;
    std::string attempts_or_outcome, error;
};

std::vector<FailureLine> failure_lines(journal::Journal& journal, const config::JobConfig& job) {
    std::vector<FailureLine> out;
    if (job.pull) {
        // The last (or current) pull's items: the journal keeps only those.
        for (const char* state : {"failed", "missing"})
            for (auto& o : journal.pulls.outcomes(job.name, state, 1 << 30))
                out.push_back({pull::describe_item(o.item), o.origin, o.status, state, o.error});
        return out;
    }
    for (auto& f : journal.updates.failures(job.name))
        out.push_back({f.identity, f.origin, f.status, std::to_string(f.attempts), f.error});
    return out;
}

}  // namespace

int cmd_status(const StatusCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    return guarded(cmd.job, [&] {
        std::vector<std::string> jobs;
        if (!cmd.job.empty())
            jobs.push_back(cmd.job);
        else
            for (auto& j : loaded.config->jobs) jobs.push_back(j.name);
        auto text = read_journal(loaded.config->journal.path, [&](journal::Journal& journal) {
            std::string out;
            boost::json::object all;
            const auto now = base::now_ms();
            for (const auto& name : jobs) {
                auto c = journal.updates.counts(name);
                auto runs = journal.runs.recent(name, 5);
                auto parked = journal.schedule.parked(name);
                if (cmd.json) {
                    boost::json::array rs;
                    for (auto& r : runs)
                        rs.push_back({{"id", r.id},
                                      {"kind", r.kind},
                                      {"started", base::iso_utc(r.started_at)},
                                      {"ended", base::iso_utc(r.ended_at)},
                                      {"read", r.read},
                                      {"queued", r.queued},
                                      {"unchanged", r.unchanged},
                                      {"rejected", r.rejected},
                                      {"done", r.done},
                                      {"accepted", r.accepted},
                                      {"retries", r.retries},
                                      {"failed", r.failed},
                                      {"exit_code", r.exit_code},
                                      {"reason", r.reason}});
                    all[name] = {{"queued", c.queued},     {"inflight", c.inflight}, {"retry", c.retry},
                                 {"accepted", c.accepted}, {"done", c.done},         {"verified", c.verified},
                                 {"failed", c.failed},     {"waiting", c.waiting},   {"held", c.held},
                                 {"runs", std::move(rs)}};
                    if (parked)
                        all[name].as_object()["parked"] = {{"until", base::iso_utc(parked->until)},
                                                           {"over", parked->until <= now},
                                                           {"reason", parked->reason},
                                                           {"consecutive_fatal_runs", parked->failures}};
                    continue;
                }
                appendf(out,
                        "%s: queued %lld, inflight %lld, retry %lld, waiting %lld, failed %lld; identities: done "
                        "%lld, accepted %lld, verified %lld\n",
                        name.c_str(), (long long)c.queued, (long long)c.inflight, (long long)c.retry,
                        (long long)c.waiting, (long long)c.failed, (long long)c.done, (long long)c.accepted,
                        (long long)c.verified);
                if (c.held > 0)
                    appendf(out,
                            "  held: %lld of the retries wait for a complete read of the source (rows no longer in "
                            "it, whose identity has another row, or held for the read of a run that stopped), or "
                            "for a run that allows the removals max_missing refused\n",
                            (long long)c.held);
                // The daemon keeps a park that is over (its fatal runs in a row set the next
                // one's length) until a run ends without a fatal error: shown as what it is.
                if (parked && parked->until > now)
                    appendf(out,
                            "  PARKED by the daemon until %s after %d fatal run(s) in a row: %s\n"
                            "  (fix the cause, then `systemctl reload prefsync` to retry at once)\n",
                            base::iso_utc(parked->until).c_str(), parked->failures, parked->reason.c_str());
                else if (parked)
                    appendf(out,
                            "  parked by the daemon until %s (over: the daemon runs it again) after %d fatal "
                            "run(s) in a row: %s\n",
                            base::iso_utc(parked->until).c_str(), parked->failures, parked->reason.c_str());
                for (auto& r : runs)
                    appendf(out,
                            "  run %lld %-8s %s → %s  read %lld queued %lld unchanged %lld rejected %lld done %lld "
                            "accepted %lld retries %lld failed %lld exit %d%s%s\n",
                            (long long)r.id, r.kind.c_str(), base::iso_utc(r.started_at).c_str(),
                            base::iso_utc(r.ended_at).c_str(), (long long)r.read, (long long)r.queued,
                            (long long)r.unchanged, (long long)r.rejected, (long long)r.done, (long long)r.accepted,
                            (long long)r.retries, (long long)r.failed, r.exit_code, r.reason.empty() ? "" : ": ",
                            r.reason.c_str());
            }
            if (cmd.json) out = boost::json::serialize(all) + "\n";
            return out;
        });
        std::fputs(text.c_str(), stdout);
        return int(kOk);
    });
}

int cmd_failures(const FailuresCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    return guarded(cmd.job, [&] {
        auto failures = read_journal(loaded.config->journal.path,
                                     [&](journal::Journal& journal) { return failure_lines(journal, *loaded.job); });
        if (!cmd.csv.empty()) {
            std::string text = loaded.job->pull ? "identity,source_row,status,outcome,error\r\n"
                                                : "identity,source_row,status,attempts,error\r\n";
            for (auto& f : failures)
                text += csv_field(f.identity) + ',' + csv_field(f.origin) + ',' + std::to_string(f.status) + ',' +
                        f.attempts_or_outcome + ',' + csv_field(f.error) + "\r\n";
            // 0600 and never through a symlink: the rows name people.
            int fd = ::open(cmd.csv.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
            bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
            if (fd >= 0) ok = ::close(fd) == 0 && ok;
            if (!ok) {
                base::logger().error("Cannot write the failures", {{"path", cmd.csv}, {"error", std::strerror(errno)}});
                return int(kFatal);
            }
            base::logger().info("Failures written", {{"failures", failures.size()}, {"path", cmd.csv}});
            return int(kOk);
        }
        for (auto& f : failures)
            std::printf("%s\t%s\t%d\t%s%s\t%s\n", f.identity.c_str(), f.origin.c_str(), f.status,
                        f.attempts_or_outcome.c_str(), loaded.job->pull ? "" : " attempt(s)", f.error.c_str());
        base::logger().info("Failures listed", {{"job", cmd.job}, {"failures", failures.size()}});
        return int(kOk);
    });
}

}  // namespace prefsync::cli
