// Runs that end early, end to end: whatever stops a sync, backfill or pull (no source, an
// empty one, a journal that fails, the job's lock held elsewhere, a config that does not
// load), its --report describes this run (exit code, why, the counts reached) and replaces
// an earlier run's, and the run log gives the run an end, so `status` never shows an
// aborted run as running. A run whose process died without recording its end is ended as
// interrupted by the next process that takes the job's lock.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "daemon/journal/job_lock.hpp"
#include "tests/support/process.hpp"
#include "tests/support/push_workspace.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::quote;
namespace json = boost::json;

json::object report_at(const std::string& path) {
    return json::parse(testing::read_file(path)).as_object();
}

// The job's last runs, newest first, as `status --json` shows them.
json::array runs_of(testing::PushWorkspace& w, const std::string& job = "crm") {
    auto status = w.prefsync("status " + job + " --json");
    EXPECT_EQ(status.exit_code, 0) << status.err;
    return json::parse(status.out).at(job).at("runs").as_array();
}

// `report` says this run aborted with `exit_code`, why (`because`), and counts of zero; it
// holds no secret.
void expect_aborted_report(const std::string& path, const std::string& kind, int exit_code,
                           const std::string& because) {
    auto text = testing::read_file(path);
    auto r = report_at(path);
    EXPECT_EQ(r.at("job").as_string(), "crm");
    EXPECT_EQ(r.at("kind").as_string(), kind);
    EXPECT_EQ(r.at("exit_code").as_int64(), exit_code) << text;
    EXPECT_THAT(std::string(r.at("error").as_string()), HasSubstr(because)) << text;
    EXPECT_EQ(r.at("read").as_int64(), 0) << text;
    EXPECT_EQ(r.at("sent").as_int64(), 0) << text;
    EXPECT_THAT(text, Not(HasSubstr("emulator-token")));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(AbortedRun, EveryWayASyncStopsEarlyWritesItsReportOverTheLastSuccessfulOne) {
    testing::PushWorkspace w(20);
    auto report = w.dir.file("crm.sync.json");
    auto sync = [&] { return w.prefsync("sync crm --report " + quote(report)); };
    auto succeed = [&] {
        auto r = sync();
        ASSERT_EQ(r.exit_code, 0) << r.err;
        ASSERT_EQ(report_at(report).at("exit_code").as_int64(), 0);
        EXPECT_EQ(report_at(report).at("error").as_string(), "");
    };
    succeed();
    auto csv = testing::read_file(w.csv);

    std::filesystem::remove(w.csv);
    auto r = sync();
    EXPECT_EQ(r.exit_code, 3) << r.err;
    expect_aborted_report(report, "sync", 3, "jobs.crm.source");
    EXPECT_THAT(std::string(report_at(report).at("error").as_string()), HasSubstr("profiles.csv"));
    EXPECT_GT(report_at(report).at("run_id").as_int64(), 0) << "the run had begun";

    w.dir.write("profiles.csv", "");
    r = sync();
    EXPECT_EQ(r.exit_code, 3) << r.err;
    expect_aborted_report(report, "sync", 3, "jobs.crm.source");

    w.dir.write("profiles.csv", csv);
    succeed();
    {
        journal::JobLock held(w.dir.file("state/journal.db"), "crm", "backfill");
        ASSERT_TRUE(held.held());
        r = sync();
        EXPECT_EQ(r.exit_code, 3) << r.err;
        expect_aborted_report(report, "sync", 3, "is being run by");
        EXPECT_EQ(report_at(report).at("run_id").as_int64(), 0) << "refused before any run began";
    }

    succeed();
    auto config = testing::read_file(w.config);
    auto broken = config;
    broken.replace(broken.find("mode: upsert"), 12, "mode: upsret");
    w.dir.write("prefsync.yaml", broken);
    r = sync();
    EXPECT_EQ(r.exit_code, 1) << r.err;
    expect_aborted_report(report, "sync", 1, "jobs.crm.mode");
    w.dir.write("prefsync.yaml", config);

    succeed();
    std::filesystem::rename(w.dir.file("state/journal.db"), w.dir.file("journal.db.saved"));
    w.dir.write("state/journal.db", std::string(16384, '\x5a'));
    r = sync();
    EXPECT_EQ(r.exit_code, 3) << r.err;
    expect_aborted_report(report, "sync", 3, w.dir.file("state/journal.db"));
}

TEST(AbortedRun, AReportThatCannotBeWrittenIsSaidOnStderrAndTheExitCodeStaysTheRuns) {
    testing::PushWorkspace w(5);
    std::filesystem::remove(w.csv);
    auto report = w.dir.file("no-such-dir/crm.sync.json");
    auto r = w.prefsync("sync crm --report " + quote(report));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("Cannot write the report"));
    EXPECT_THAT(r.err, HasSubstr(report));
}

TEST(AbortedRun, AnAbortedSyncIsEndedWithItsExitCodeInStatus) {
    testing::PushWorkspace w(5);
    std::filesystem::remove(w.csv);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 3);
    w.dir.write("profiles.csv", "");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 3);
    auto runs = runs_of(w);
    ASSERT_EQ(runs.size(), 2u);
    for (auto& run : runs) {
        EXPECT_NE(run.at("ended").as_string(), "-") << json::serialize(run);
        EXPECT_EQ(run.at("exit_code").as_int64(), 3) << json::serialize(run);
        EXPECT_THAT(std::string(run.at("reason").as_string()), HasSubstr("jobs.crm.source")) << json::serialize(run);
    }
    auto text = w.prefsync("status crm");
    EXPECT_THAT(text.out, Not(HasSubstr("→ -"))) << text.out;
    EXPECT_THAT(text.out, HasSubstr("exit 3: jobs.crm.source")) << "why, beside the exit code: " << text.out;
}

TEST(AbortedRun, ABackfillAbortedOnAMissingSourceIsEndedAndStillResumedOnceTheFileIsBack) {
    testing::PushWorkspace w(50);
    auto csv = testing::read_file(w.csv);
    std::filesystem::remove(w.csv);
    auto report = w.dir.file("crm.backfill.json");
    auto r = w.prefsync("backfill crm --resume --report " + quote(report));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    expect_aborted_report(report, "backfill", 3, "jobs.crm.source");
    auto aborted = report_at(report).at("run_id").as_int64();
    auto runs = runs_of(w);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].at("id").as_int64(), aborted);
    EXPECT_EQ(runs[0].at("exit_code").as_int64(), 3);
    EXPECT_NE(runs[0].at("ended").as_string(), "-");

    w.dir.write("profiles.csv", csv);
    r = w.prefsync("backfill crm --resume --report " + quote(report));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(report_at(report).at("run_id").as_int64(), aborted) << "the aborted backfill is the one resumed";
    EXPECT_EQ(w.emu.store.size(), 50u);
    runs = runs_of(w);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].at("exit_code").as_int64(), 0);
}

TEST(AbortedRun, APullAbortedOnAMissingSourceWritesItsReportIsEndedAndResumesOnceTheFileIsBack) {
    testing::PushWorkspace w(30);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    w.dir.write("prefsync.yaml", testing::read_file(w.config) +
                                     "  export:\n    pull: {}\n    source: { type: csv, path: ids.csv }\n"
                                     "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
                                     "    sink: { type: jsonl, path: out/profiles.jsonl }\n");
    auto report = w.dir.file("export.pull.json");
    auto r = w.prefsync("pull export --report " + quote(report));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    auto text = testing::read_file(report);
    auto pulled = report_at(report);
    EXPECT_EQ(pulled.at("kind").as_string(), "pull");
    EXPECT_EQ(pulled.at("exit_code").as_int64(), 3) << text;
    EXPECT_THAT(std::string(pulled.at("error").as_string()), HasSubstr("jobs.export.source")) << text;
    EXPECT_THAT(std::string(pulled.at("error").as_string()), HasSubstr("ids.csv")) << text;
    auto runs = runs_of(w, "export");
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].at("exit_code").as_int64(), 3);
    EXPECT_NE(runs[0].at("ended").as_string(), "-");

    w.dir.write("ids.csv", testing::read_file(w.csv));
    r = w.prefsync("pull export --report " + quote(report));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("(resumed)")) << "an ended pull that did not complete stays resumable";
    EXPECT_EQ(report_at(report).at("profiles").as_int64(), 30);
    EXPECT_EQ(runs_of(w, "export")[0].at("exit_code").as_int64(), 0);
}

TEST(AbortedRun, ARunLeftUnfinishedByAKilledProcessIsEndedAsInterruptedByTheNextRunOfTheJob) {
    testing::PushWorkspace w(3000);
    w.emu.set_faults(R"({"latency_ms": 2})");
    {
        auto p = w.start_until({"sync", "crm"}, 100);
        ASSERT_TRUE(p->running()) << "the sync finished before it could be killed";
        p->signal(SIGKILL);
        EXPECT_EQ(p->wait(), 128 + SIGKILL);
    }
    auto runs = runs_of(w);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].at("ended").as_string(), "-") << "nothing could record its end";
    auto killed = runs[0].at("id").as_int64();

    w.emu.set_faults(R"({"latency_ms": 0})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("recorded as interrupted"));
    runs = runs_of(w);
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[1].at("id").as_int64(), killed);
    EXPECT_NE(runs[1].at("ended").as_string(), "-");
    EXPECT_EQ(runs[1].at("exit_code").as_int64(), 4);
    EXPECT_EQ(runs[0].at("exit_code").as_int64(), 0);
    EXPECT_EQ(w.emu.store.size(), 3000u);
}

}  // namespace
}  // namespace prefsync
