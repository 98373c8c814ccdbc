// The daemon's decisions on fake time: schedules, retry drains, verification, and parking
// after fatal runs (no hammering the API with a refused token).
#include "daemon/service/daemon_loop.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "tests/support/temp_dir.hpp"

namespace prefsync::service {
namespace {

using journal::Millis;
constexpr Millis kMinute = 60'000;
// 2026-12-01T00:00:00Z
constexpr Millis kMidnight = 1'796'083'200'000;

struct DaemonLoopTest : ::testing::Test {
    testing::TempDir dir;
    std::ostringstream log_text;  // what the loop logged
    base::Logger log{base::LogSettings{}, std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text, true), false};
    std::unique_ptr<config::Config> config;
    std::unique_ptr<journal::Journal> journal;
    std::unique_ptr<DaemonLoop> loop;

    void SetUp() override {
        setenv("TZ", "UTC", 1);
        tzset();
    }
    void start(const std::string& jobs, const std::string& daemon = "", Millis now = kMidnight) {
        dir.write("in.csv", "id,name\n1,a\n");
        auto yaml =
            "api: { base_url: \"http://127.0.0.1:1/Profiles/v2\", client_id: \"1\", token_env: T }\n"
            "journal: { path: " +
            dir.file("journal.db") + " }\n" + daemon + "jobs:\n" + jobs;
        config = std::make_unique<config::Config>(
            config::parse_config(yaml, dir.file("prefsync.yaml"), [](const std::string&) { return "t"; }));
        journal = std::make_unique<journal::Journal>(dir.file("journal.db"));
        loop = std::make_unique<DaemonLoop>(*config, *journal, log);
        loop->start(now);
    }
    static std::string job(const std::string& name, const std::string& schedule = "") {
        return "  " + name + ":\n" + (schedule.empty() ? "" : "    schedule: \"" + schedule + "\"\n") +
               "    source: { type: csv, path: in.csv }\n"
               "    identity: { alternate_id_type: CRMID, column: id }\n"
               "    mapping: { CustomerName.FirstName: name }\n";
    }
    // A retry due at `at` for `name`.
    void retry_due(const std::string& name, Millis at) {
        journal::NewUpdate u{"CRMID:1", "CRMID", "1", {}, "in.csv:2", "{}", "h"};
        journal->updates.enqueue(name, u, at - 10, false);
        auto claimed = journal->updates.claim(name, 1, at - 10, 1000);
        journal->updates.complete(name, {{claimed.at(0).id, journal::State::Retry, 503, "503", at, false, true, {}}},
                                  at - 5);
    }
};

TEST_F(DaemonLoopTest, RunsScheduledJobsWhenDueAndSleepsUntilTheNextOtherwise) {
    start(job("nightly", "0 2 * * *") + job("hourly", "@hourly"));
    auto a = loop->step(kMidnight + 1);
    EXPECT_EQ(a.kind, Action::Kind::Sleep);
    EXPECT_LE(a.until, kMidnight + 1 + 1000) << "idle wake-ups stay short (others may leave retries)";
    a = loop->step(kMidnight + 60 * kMinute);
    ASSERT_EQ(a.kind, Action::Kind::Run);
    EXPECT_EQ(a.job, "hourly");
    EXPECT_EQ(journal->schedule.last_fire("hourly"), kMidnight + 60 * kMinute);
    // 02:00 is both jobs' slot; the hourly one, missed from 03:00 on (a long run), goes after.
    std::set<std::string> at_two{loop->step(kMidnight + 120 * kMinute + 5).job,
                                 loop->step(kMidnight + 120 * kMinute + 6).job};
    EXPECT_EQ(at_two, (std::set<std::string>{"hourly", "nightly"}));
    EXPECT_EQ(loop->step(kMidnight + 120 * kMinute + 7).kind, Action::Kind::Sleep) << "each once";
}

TEST_F(DaemonLoopTest, DrainsDueRetriesBetweenScheduledRuns) {
    start(job("crm"));
    retry_due("crm", kMidnight + 30'000);
    EXPECT_EQ(loop->step(kMidnight + 29'000).kind, Action::Kind::Sleep);
    auto a = loop->step(kMidnight + 30'000);
    EXPECT_EQ(a.kind, Action::Kind::Run);
    EXPECT_EQ(a.run, RunKind::Retries);
}

TEST_F(DaemonLoopTest, AFatalRunParksTheJobWithBackoffUntilItsNextSlotAndAReloadReleasesIt) {
    start(job("crm", "every 1m"));
    Millis now = kMidnight + kMinute;
    auto a = loop->step(now);
    ASSERT_EQ(a.kind, Action::Kind::Run);
    loop->finished(a, {3, "401 unauthorized: check the API token"}, now);
    auto parked = journal->schedule.parked("crm");
    ASSERT_TRUE(parked);
    EXPECT_EQ(parked->failures, 1);
    EXPECT_EQ(parked->until, now + 60'000) << "the next slot (1 min) is after the 30 s backoff";
    EXPECT_THAT(log_text.str(), ::testing::HasSubstr("warning: Job parked after a fatal run"));
    EXPECT_THAT(log_text.str(),
                ::testing::HasSubstr("fatal_in_a_row=1 reason=\"401 unauthorized: check the API token\""));
    // Retries due meanwhile are not drained while parked.
    retry_due("crm", now + 1000);
    EXPECT_EQ(loop->step(now + 2000).kind, Action::Kind::Sleep);
    // Runs in a row that end fatally: the wait doubles, whatever the schedule says.
    int runs = 0;
    Millis t = now;
    for (int i = 0; i < 600 && t < now + 3 * 3'600'000; ++i, t += 10'000) {
        auto s = loop->step(t);
        if (s.kind != Action::Kind::Run) continue;
        ++runs;
        loop->finished(s, {3, "401"}, t);
    }
    EXPECT_LE(runs, 9) << "30 s, 1, 2, 4, 8, 16, 32 min, then hourly: not a tight loop";
    EXPECT_GE(journal->schedule.parked("crm")->failures, 6);
    // SIGHUP (the operator fixed the token): released, and run at once, not at the next slot.
    loop->reload(*config, t);
    EXPECT_FALSE(journal->schedule.parked("crm"));
    EXPECT_THAT(log_text.str(), ::testing::HasSubstr("Released by the reload: running it now"));
    auto after = loop->step(t);
    EXPECT_EQ(after.kind, Action::Kind::Run);
    EXPECT_EQ(after.run, RunKind::Scheduled);
    loop->finished(after, {0, ""}, t);
}

TEST_F(DaemonLoopTest, AJobWithoutAScheduleIsTriedAgainAfterTheBackoffAndASuccessReleasesIt) {
    start(job("crm"));
    retry_due("crm", kMidnight + 1000);
    auto a = loop->step(kMidnight + 1000);
    ASSERT_EQ(a.run, RunKind::Retries);
    loop->finished(a, {3, "journal: disk full"}, kMidnight + 1000);
    EXPECT_EQ(loop->step(kMidnight + 30'000).kind, Action::Kind::Sleep);
    auto again = loop->step(kMidnight + 31'001);
    ASSERT_EQ(again.kind, Action::Kind::Run);
    loop->finished(again, {2, ""}, kMidnight + 31'001);
    EXPECT_FALSE(journal->schedule.parked("crm")) << "a run that is not fatal releases it";
}

// A breaker that gave up, or a run answered only 429 for retry.max_throttled: the retries
// left queued are due at once, but another bounded run straight after would meet the same
// outage (or the same spent quota) run after run.
TEST_F(DaemonLoopTest, RunsTheAPIWasUnavailableToRestTheJobsRetriesWithBackoffAndAnAnswerEndsTheRest) {
    start(job("crm"));
    Millis t = kMidnight + 1000;
    retry_due("crm", t);
    auto a = loop->step(t);
    ASSERT_EQ(a.run, RunKind::Retries);
    loop->finished(a, {4, "the API answered only 429 (rate limited) for 60 min"}, t);
    EXPECT_FALSE(journal->schedule.parked("crm")) << "nothing learned about the job: not parked";
    EXPECT_THAT(log_text.str(), ::testing::HasSubstr("The API was unavailable: this job's retries wait"));
    EXPECT_EQ(loop->step(t + 1).kind, Action::Kind::Sleep);
    EXPECT_EQ(loop->step(t + 29'999).kind, Action::Kind::Sleep) << "30 s";
    int runs = 0;
    Millis end = t + 3 * 3'600'000;
    for (; t < end; t += 10'000) {
        auto r = loop->step(t);
        if (r.kind != Action::Kind::Run) continue;
        ++runs;
        loop->finished(r, {4, "the API failed 17 probes in a row"}, t);
    }
    EXPECT_LE(runs, 9) << "30 s, 1, 2, 4, 8, 16, 32 min, then hourly";
    // A run stopped by a signal (exit 4, no reason) neither rests nor releases the job.
    auto stopped = loop->step(t + 3'600'000);
    ASSERT_EQ(stopped.kind, Action::Kind::Run);
    loop->finished(stopped, {4, ""}, t + 3'600'000);
    EXPECT_EQ(loop->step(t + 3'600'001).kind, Action::Kind::Run);
    // A run that reached the API starts the backoff over: the next outage rests 30 s, not 1 h.
    t += 3'600'002;
    loop->finished(loop->step(t), {0, ""}, t);
    loop->finished(loop->step(t + 1), {4, "the API failed 17 probes in a row"}, t + 1);
    EXPECT_EQ(loop->step(t + 30'000).kind, Action::Kind::Sleep);
    EXPECT_EQ(loop->step(t + 30'001).kind, Action::Kind::Run);
}

// Another process holds the job's lock (a `prefsync retry` by hand): the run is skipped;
// asking for it again at once would spin the loop for as long as that process runs.
TEST_F(DaemonLoopTest, ASkippedRunWaitsBeforeItsRetriesAreAskedForAgainAndReleasesNothing) {
    start(job("crm"));
    Millis t = kMidnight + 1000;
    retry_due("crm", t);
    auto a = loop->step(t);
    ASSERT_EQ(a.run, RunKind::Retries);
    loop->finished(a, {3, "401"}, t);
    ASSERT_TRUE(journal->schedule.parked("crm"));
    t += 31'000;
    auto b = loop->step(t);
    ASSERT_EQ(b.kind, Action::Kind::Run);
    RunOutcome skipped;
    skipped.skipped = true;
    loop->finished(b, skipped, t);
    EXPECT_TRUE(journal->schedule.parked("crm")) << "a run that never started releases nothing";
    EXPECT_EQ(loop->step(t + 1).kind, Action::Kind::Sleep);
    EXPECT_EQ(loop->step(t + 29'999).kind, Action::Kind::Sleep);
    EXPECT_EQ(loop->step(t + 30'000).kind, Action::Kind::Run);
}

// A source that changed while it was read (a file written in place) is read again soon, not
// at the next slot: a nightly job parked after it missed its night.
TEST_F(DaemonLoopTest, ASourceThatChangedWhileReadIsReadAgainSoonWithoutParking) {
    const Millis three = kMidnight + 3 * 60 * kMinute;
    start(job("crm", "0 3 * * *"), "", three - kMinute);
    auto scheduled = [](const Action& a) { return a.kind == Action::Kind::Run && a.run == RunKind::Scheduled; };
    auto a = loop->step(three);
    ASSERT_TRUE(scheduled(a));
    RunOutcome changed{4, "in.csv changed while it was being read"};
    changed.reread_source = true;
    loop->finished(a, changed, three);
    EXPECT_FALSE(journal->schedule.parked("crm"));
    EXPECT_EQ(loop->step(three + 29'000).kind, Action::Kind::Sleep);
    a = loop->step(three + 30'000);
    EXPECT_TRUE(scheduled(a)) << "read again after 30 s, not tomorrow";
    loop->finished(a, changed, three + 30'000);
    EXPECT_EQ(loop->step(three + 89'000).kind, Action::Kind::Sleep) << "then a minute later";
    a = loop->step(three + 90'000);
    EXPECT_TRUE(scheduled(a));
    loop->finished(a, {0, ""}, three + 90'000);
    EXPECT_EQ(loop->step(three + 60 * kMinute).kind, Action::Kind::Sleep) << "whole: the next slot is tomorrow's";
}

TEST_F(DaemonLoopTest, ParkingSurvivesARestart) {
    start(job("crm", "every 1m"));
    auto a = loop->step(kMidnight + kMinute);
    loop->finished(a, {3, "401"}, kMidnight + kMinute);
    auto until = journal->schedule.parked("crm")->until;
    DaemonLoop restarted(*config, *journal, log);
    restarted.start(kMidnight + kMinute + 1);
    EXPECT_EQ(restarted.step(until - 1).kind, Action::Kind::Sleep);
    EXPECT_EQ(restarted.step(until).kind, Action::Kind::Run);
}

TEST_F(DaemonLoopTest, VerifiesAcceptedUpdatesAtMostOncePerInterval) {
    start(job("crm"), "daemon: { verify: true, verify_interval: 1m }\n");
    journal::NewUpdate u{"CRMID:1", "CRMID", "1", {}, "in.csv:2", "{}", "h"};
    journal->updates.enqueue("crm", u, kMidnight, false);
    auto c = journal->updates.claim("crm", 1, kMidnight, 1000);
    journal->updates.complete("crm", {{c.at(0).id, journal::State::Accepted, 202, "", 0, false, true, 5}}, kMidnight);
    auto a = loop->step(kMidnight + 1000);
    EXPECT_EQ(a.run, RunKind::Verify);
    EXPECT_EQ(loop->step(kMidnight + 2000).kind, Action::Kind::Sleep);
    EXPECT_EQ(loop->step(kMidnight + 61'000).run, RunKind::Verify);
}

// The look for accepted updates scans the job's rows (they have no index) and the loop
// wakes every second: once a look found none, the next one waits for a run (a 202 comes
// only from a push run), which is looked at as soon as the interval allows.
TEST_F(DaemonLoopTest, LooksForAcceptedUpdatesAgainOnlyOnceARunStartedOrEnded) {
    start(job("crm"), "daemon: { verify: true, verify_interval: 1m }\n");
    EXPECT_EQ(loop->step(kMidnight + 1000).kind, Action::Kind::Sleep);
    // An accepted update with no run recorded: not looked for.
    journal::NewUpdate u{"CRMID:1", "CRMID", "1", {}, "in.csv:2", "{}", "h"};
    journal->updates.enqueue("crm", u, kMidnight, false);
    auto c = journal->updates.claim("crm", 1, kMidnight, 1000);
    journal->updates.complete("crm", {{c.at(0).id, journal::State::Accepted, 202, "", 0, false, true, 5}}, kMidnight);
    EXPECT_EQ(loop->step(kMidnight + 2000).kind, Action::Kind::Sleep) << "no run since the last look";
    auto run = journal->runs.begin("crm", "sync", kMidnight + 2500);
    EXPECT_EQ(loop->step(kMidnight + 3000).run, RunKind::Verify) << "a run is going on";
    EXPECT_EQ(loop->step(kMidnight + 4000).kind, Action::Kind::Sleep) << "one verify per interval";
    journal::RunRecord r;
    r.id = run;
    r.job = "crm";
    journal->runs.end(r, kMidnight + 5000);
    EXPECT_EQ(loop->step(kMidnight + 63'000).run, RunKind::Verify) << "still unverified: looked again";
}

TEST_F(DaemonLoopTest, CatchUpRunsAMissedSlotOnce) {
    dir.write("in.csv", "id,name\n1,a\n");
    {
        journal::Journal j(dir.file("journal.db"));
        j.schedule.set_last_fire("crm", kMidnight - 2 * 86'400'000);
    }
    start(job("crm", "0 3 * * *"), "daemon: { catch_up: true }\n", kMidnight + 3'600'000);
    auto a = loop->step(kMidnight + 3'600'000);
    EXPECT_EQ(a.kind, Action::Kind::Run);
    EXPECT_EQ(loop->step(kMidnight + 3'600'001).kind, Action::Kind::Sleep);
}

}  // namespace
}  // namespace prefsync::service
