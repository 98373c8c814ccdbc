// Fault drills: the real binary against the emulator's worst-case knobs. A create never
// lands twice on a server that accepts duplicates; an outage pauses the run instead of
// failing rows; a full disk or a corrupted journal stops the run clearly and loses
// nothing; a signal while reading stops at once; a pull never resumes into NUL bytes; a
// server that only throttles stops the run after retry.max_throttled, nothing failed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/support/process.hpp"
#include "tests/support/push_workspace.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using testing::quote;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

std::int64_t duplicated(testing::PushWorkspace& w) {
    return json::parse(testing::http_get(w.emu.server.port(), "/__admin/alternate-ids")).at("duplicated").as_int64();
}

// Waits (polling an observable count) until `pred` holds or a minute passes.
template <class Pred>
bool wait_for(Pred pred) {
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!pred() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return pred();
}

TEST(FaultDrill, ACreateIsNeverSentTwiceToAServerThatAcceptsDuplicates) {
    testing::PushWorkspace w(1500, "create");
    // Measured before: 7–15 creates answered 409 under these faults (a create re-sent
    // without a lookup); a server that accepts duplicates would have made that many twins.
    w.emu.set_faults(R"({"accept_duplicates": true, "error_503": 0.05, "reset": 0.03, "ambiguous": 0.03, "seed": 11})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.store.size(), 1500u);
    EXPECT_EQ(duplicated(w), 0) << "every alternate id on exactly one profile";
    // Rows resolved by a lookup were recorded as synced: an unchanged file sends nothing.
    w.emu.set_faults(R"({"accept_duplicates": true, "error_503": 0, "reset": 0, "ambiguous": 0})");
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 1500"));
    EXPECT_EQ(w.emu.requests_counter(), before);
}

// The workspace's config with `retry` for its retry line.
void set_retry(testing::PushWorkspace& w, const std::string& retry) {
    auto text = testing::read_file(w.config);
    const std::string line = "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms }";
    text.replace(text.find(line), line.size(), retry);
    w.dir.write("prefsync.yaml", text);
}

// An outage of `outage_ms` starting once the run has sent 150 requests. `breaker`: the
// circuit breaker must open (and say so when the API answers again).
void outage_drill(const std::string& outage, int max_requests, bool breaker) {
    testing::PushWorkspace w(600);
    w.write_config("upsert", "", "requests_per_second: 150, burst: 10");
    // A small budget and short backoff: before the breaker, a 5 s outage at 150 req/s
    // spent these rows' 8 attempts and failed them.
    set_retry(w, "retry: { max_attempts: 8, base_delay: 100ms, max_delay: 2s }");
    testing::ChildProcess p({"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", w.config, "sync",
                             "crm", "--report", w.dir.file("report.json")},
                            w.dir.file("err.txt"));
    ASSERT_TRUE(wait_for([&] { return w.emu.requests_counter() >= 150; }));
    w.emu.set_faults(outage);
    EXPECT_EQ(p.wait(), 0) << testing::read_file(w.dir.file("err.txt"));
    auto report = json::parse(testing::read_file(w.dir.file("report.json"))).as_object();
    EXPECT_EQ(report.at("failed").as_int64(), 0) << "no row spent its budget in the outage";
    EXPECT_EQ(w.emu.store.size(), 600u);
    EXPECT_LE(w.emu.requests_counter(), max_requests) << testing::read_file(w.dir.file("err.txt"));
    if (breaker) {
        EXPECT_THAT(testing::read_file(w.dir.file("err.txt")), HasSubstr("The API answers again"));
    }
}

TEST(FaultDrill, AnOutageWithoutRetryAfterPausesTheRunProbingAndNoRowFails) {
    // 600 rows, 1.1 each outside the outage; inside: what was in flight, what tripped the
    // breaker, one probe per step (1, 2, 2, ... s over 5 s).
    outage_drill(R"({"outage_ms": 5000, "outage_mode": "503", "outage_retry_after": 0})", 660 + 8 + 8 + 6, true);
}

TEST(FaultDrill, AnOutageWithRetryAfterPausesTheRunForThatLong) {
    // The first 503 pauses everything for its Retry-After, and the rate resumes without a
    // burst: only what was in flight meets the outage, too few failures to open the breaker.
    outage_drill(R"({"outage_ms": 5000, "outage_mode": "503", "outage_retry_after": 5})", 660 + 8, false);
}

TEST(FaultDrill, AServerThatOnlyThrottlesStopsTheRunAfterMaxThrottledAndTheNextRunSendsWhatIsLeft) {
    // A quota spent for the day: 429 to everything, without Retry-After. A 429 counts
    // against no row, so before retry.max_throttled the run went on for ever at a crawl.
    testing::PushWorkspace w(40);
    w.write_config("upsert", "", "requests_per_second: 200, burst: 10");
    set_retry(w, "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms, max_throttled: 2s }");
    w.emu.set_faults(R"({"error_429": 1})");
    // `timeout`: a run that never ends fails the test instead of hanging it.
    auto sync = [&] {
        return testing::run("timeout 60 env PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " +
                            quote(w.config) + " sync crm --report " + quote(w.dir.file("report.json")));
    };
    auto started = Clock::now();
    auto r = sync();
    EXPECT_EQ(r.exit_code, 4) << "interrupted: resumable, nothing failed\n" << r.err;
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(30));
    EXPECT_THAT(r.err, HasSubstr("The API throttles every request"));
    auto report = json::parse(testing::read_file(w.dir.file("report.json"))).as_object();
    EXPECT_EQ(report.at("exit_code").as_int64(), 4);
    // At least max_throttled: the span is taken when the next 429 comes, which a loaded
    // machine can delay past the next whole second.
    EXPECT_THAT(std::string(report.at("error").as_string()),
                ::testing::ContainsRegex("the API answered only 429 \\(rate limited\\) for ([2-9]|[0-9][0-9]+) s "
                                         "\\(retry.max_throttled\\): stopping the run; what is left stays queued "
                                         "for the next one"));
    EXPECT_EQ(report.at("interrupted").as_bool(), true);
    EXPECT_EQ(report.at("failed").as_int64(), 0) << "throttling fails no row";
    EXPECT_EQ(report.at("pending").as_int64(), 40) << "every row stays queued";
    EXPECT_EQ(w.emu.store.size(), 0u);
    // The server serves again: the next run sends every row, once.
    w.emu.set_faults(R"({"error_429": 0})");
    r = sync();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    report = json::parse(testing::read_file(w.dir.file("report.json"))).as_object();
    EXPECT_EQ(report.at("error").as_string(), "");
    EXPECT_EQ(report.at("pending").as_int64(), 0);
    EXPECT_EQ(w.emu.store.size(), 40u);
}

TEST(FaultDrill, OneRowTheServerAlwaysThrottlesFailsAloneAndTheRestLand) {
    // A per-profile limit: 429 for one alternate id, every time, no Retry-After. Before, the
    // row was re-sent as fast as the limiter let it, each 429 cutting everyone's rate, until
    // retry.max_throttled (1 h) ended the run as interrupted once it was alone.
    testing::PushWorkspace w(150);
    w.write_config("upsert", "", "requests_per_second: 200, burst: 10");
    w.emu.set_faults(R"({"throttle_target": "alternateId=C00000007"})");
    auto started = Clock::now();
    // `timeout`: the run that went on for an hour fails the test instead of hanging it.
    auto r = testing::run("timeout 60 env PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " +
                          quote(w.config) + " sync crm --report " + quote(w.dir.file("report.json")));
    EXPECT_EQ(r.exit_code, 2) << "finished, one row failed\n" << r.err;
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(30));
    auto report = json::parse(testing::read_file(w.dir.file("report.json"))).as_object();
    EXPECT_EQ(report.at("failed").as_int64(), 1);
    EXPECT_EQ(report.at("error").as_string(), "");
    EXPECT_EQ(w.emu.store.size(), 149u);
    auto f = w.prefsync("failures crm");
    EXPECT_THAT(f.out, HasSubstr("C00000007"));
    // At least retry.max_attempts (30 here); more when the others were not all sent by then.
    std::smatch times;
    ASSERT_TRUE(
        std::regex_search(f.out, times, std::regex("429 \\(rate limited\\) ([0-9]+) times in a row for this row")))
        << f.out;
    EXPECT_GE(std::stoi(times[1].str()), 30) << "retry.max_attempts here";
    // The limit is lifted: `retry` sends it.
    w.emu.set_faults(R"({"throttle_target": ""})");
    r = w.prefsync("retry crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.store.size(), 150u);
}

TEST(FaultDrill, AFullDiskStopsTheRunNamingTheJournalAndTheNextRunFinishesWithNothingLostOrDoubled) {
    testing::PushWorkspace w(3000, "create");
    // A file size limit stands for a full disk: the journal's writes fail with EFBIG.
    auto report = w.dir.file("report.json");
    auto r = testing::run("ulimit -f 1024; PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " +
                          quote(w.config) + " sync crm --report " + quote(report));
    EXPECT_EQ(r.exit_code, 3) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr(w.dir.file("state/journal.db")));
    EXPECT_THAT(r.err, HasSubstr("full"));
    // The report says so (it is small enough to be written), and the run is not left
    // "running": ended now, or, if the full journal refused that too, by the next run.
    auto stopped = json::parse(testing::read_file(report)).as_object();
    EXPECT_EQ(stopped.at("exit_code").as_int64(), 3);
    EXPECT_THAT(std::string(stopped.at("error").as_string()), HasSubstr("full"));
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.store.size(), 3000u);
    EXPECT_EQ(duplicated(w), 0);
    auto runs = json::parse(w.prefsync("status crm --json").out).at("crm").at("runs").as_array();
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_NE(runs[1].at("ended").as_string(), "-");
    EXPECT_THAT(runs[1].at("exit_code").as_int64(), ::testing::AnyOf(3, 4));
}

TEST(FaultDrill, ACorruptedJournalIsRefusedNeverReplacedWithAFreshOne) {
    testing::PushWorkspace w(10);
    std::filesystem::create_directories(w.dir.file("state"));
    std::string garbage(16384, '\x5a');
    w.dir.write("state/journal.db", garbage);
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr(w.dir.file("state/journal.db")));
    EXPECT_THAT(r.err, HasSubstr("refusing to start"));
    EXPECT_EQ(testing::read_file(w.dir.file("state/journal.db")), garbage);
    EXPECT_EQ(w.emu.requests_counter(), 0);
}

TEST(FaultDrill, ASignalWhileReadingStopsBetweenBatchesAndTheNextRunSendsEachRowOnce) {
    // Enough rows that the read is still going when the signal comes; instrumented, reading
    // is ten times slower, and fewer do.
    constexpr int rows = PREFSYNC_SANITIZED ? 20000 : 60000;
    testing::PushWorkspace w(rows);
    testing::ChildProcess p({"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", w.config, "sync",
                             "crm", "--report", w.dir.file("report.json")},
                            w.dir.file("err.txt"));
    ASSERT_TRUE(
        wait_for([&] { return testing::read_file(w.dir.file("err.txt")).find("Reading") != std::string::npos; }));
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait(), 4);
    auto report = json::parse(testing::read_file(w.dir.file("report.json"))).as_object();
    auto read = report.at("read").as_int64();
    EXPECT_LT(read, rows) << "stopped between batches, not after the whole file";
    EXPECT_EQ(report.at("queued").as_int64(), read) << "what was read is journaled";
    EXPECT_EQ(w.emu.requests_counter(), report.at("sent").as_int64()) << "what was in flight was drained";
    // The next run sends what was journaled and not sent, and the rest: each row once.
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.store.size(), static_cast<std::size_t>(rows));
    EXPECT_EQ(w.emu.requests_counter(), rows);
}

TEST(FaultDrill, APullThatFinishedButWasNotRecordedSoNeverResumesIntoNulBytes) {
    testing::PushWorkspace w(50);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto text = testing::read_file(w.config);
    text +=
        "  export:\n    pull: {}\n    source: { type: csv, path: profiles.csv }\n"
        "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
        "    sink: { type: jsonl, path: out/profiles.jsonl }\n";
    w.dir.write("prefsync.yaml", text);
    auto r = w.prefsync("pull export");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto good = testing::read_file(w.dir.file("out/profiles.jsonl"));
    // As a crash between renaming the output and recording the run left it before: the
    // journal says "unfinished, N bytes written", the partial file is gone.
    testing::run("sqlite3 " + quote(w.dir.file("state/journal.db")) +
                 " \"UPDATE runs SET exit_code = 3 WHERE kind = 'pull'; UPDATE pull_state SET sink_offset = " +
                 std::to_string(good.size()) + "\"");
    r = w.prefsync("pull export");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto again = testing::read_file(w.dir.file("out/profiles.jsonl"));
    EXPECT_EQ(again.find('\0'), std::string::npos) << "no NUL bytes";
    EXPECT_THAT(r.err, HasSubstr("starting over"));
    EXPECT_EQ(std::count(again.begin(), again.end(), '\n'), 50);
}

}  // namespace
}  // namespace prefsync
