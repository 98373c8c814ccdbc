// `prefsync daemon` end to end: the real binary against the emulator on 127.0.0.1, with a
// real sd_notify datagram socket, its /metrics parsed, and signals sent to it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "daemon/base/clock.hpp"
#include "daemon/journal/journal.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/in_process_emulator.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;
using testing::quote;
using Clock = std::chrono::steady_clock;

// A datagram socket like the one systemd gives a Type=notify service in $NOTIFY_SOCKET,
// drained as systemd drains it: at once, by its own thread. (Read only while a test waits,
// it filled up — net.unix.max_dgram_qlen is 10 — and sd_notify blocked the daemon's loop.)
class NotifySocket {
public:
    struct Message {
        std::string text;
        Clock::time_point at;
    };
    explicit NotifySocket(const std::string& path) : path_(path) {
        fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << path;
        reader_ = std::thread([this] { drain(); });
    }
    ~NotifySocket() {
        stop_ = true;
        reader_.join();
        close(fd_);
    }
    // Waits for a datagram after the last one matched that contains `want` (true), or until
    // `timeout` passes (false).
    bool wait_for(const std::string& want, std::chrono::seconds timeout = std::chrono::seconds(60)) {
        std::unique_lock lock(mutex_);
        return arrived_.wait_for(lock, timeout, [&] {
            for (; cursor_ < received_.size(); ++cursor_)
                if (received_[cursor_].text.find(want) != std::string::npos) {
                    ++cursor_;
                    return true;
                }
            return false;
        });
    }
    std::vector<Message> received() {
        std::lock_guard lock(mutex_);
        return received_;
    }

private:
    void drain() {
        while (!stop_) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 50) <= 0) continue;  // 50 ms: how soon the destructor is noticed
            char buf[4096];
            auto n = recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::lock_guard lock(mutex_);
            received_.push_back({std::string(buf, static_cast<std::size_t>(n)), Clock::now()});
            arrived_.notify_all();
        }
    }
    std::string path_;
    int fd_ = -1;
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::vector<Message> received_;
    std::size_t cursor_ = 0;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling an observable condition
    }
    return pred();
}

// name{labels} value → value, from a Prometheus text page.
std::map<std::string, double> parse_metrics(const std::string& text) {
    std::map<std::string, double> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        auto space = line.rfind(' ');
        try {
            out[line.substr(0, space)] = std::stod(line.substr(space + 1));
        } catch (...) {
            ADD_FAILURE() << "metrics line: " << line;
        }
    }
    return out;
}

struct DaemonWorkspace {
    testing::TempDir dir;
    testing::InProcessEmulator emu;
    std::string config, log = dir.file("daemon.log");

    explicit DaemonWorkspace(int rows, const std::string& schedule = "every 1s", const std::string& daemon_extra = "") {
        dir.write("crm.csv", source_text(rows));
        config = dir.write("prefsync.yaml", text(schedule, daemon_extra));
        setenv("PREFSYNC_TOKEN", "emulator-token", 1);
    }
    static std::string source_text(int rows) {
        std::string csv = "customer_id,first_name\n";
        for (int i = 0; i < rows; ++i) csv += "D" + std::to_string(i) + ",Name" + std::to_string(i) + "\n";
        return csv;
    }
    // The source replaced by one of `rows` rows, in one rename so a run never reads half of it.
    void write_source(int rows) {
        std::filesystem::rename(dir.write("crm.csv.new", source_text(rows)), dir.file("crm.csv"));
    }
    std::string text(const std::string& schedule, const std::string& daemon_extra = "") {
        return "api: { base_url: \"" + emu.base_url() +
               "\", client_id: \"12345\", token_env: PREFSYNC_TOKEN }\n"
               "http: { connections: 8, request_timeout: 10s }\n"
               "rate_limit: { requests_per_second: 5000, burst: 500 }\n"
               "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms }\n"
               "journal: { path: state/journal.db }\n"
               "daemon: { metrics_listen: \"127.0.0.1:0\", shutdown_timeout: 20s" +
               daemon_extra +
               " }\n"
               "jobs:\n  crm:\n    schedule: " +
               schedule +
               "\n"
               "    source: { type: csv, path: crm.csv }\n"
               "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
               "    mapping: { CustomerName.FirstName: first_name }\n";
    }
    // The journal (created as prefsync creates it) says the job last fired `seconds` ago.
    void remember_fire_seconds_ago(int seconds) {
        journal::Journal journal(dir.file("state/journal.db"));  // (status only reads: it creates none)
        journal.schedule.set_last_fire("crm", base::now_ms() - std::int64_t{seconds} * 1000);
    }
    std::unique_ptr<testing::ChildProcess> start() {
        auto p = std::make_unique<testing::ChildProcess>(
            std::vector<std::string>{PREFSYNC_BINARY, "-c", config, "daemon"}, log);
        auto line = p->read_line();
        EXPECT_THAT(line, HasSubstr("metrics http://127.0.0.1:"));
        metrics_port = static_cast<unsigned short>(std::stoi(line.substr(line.rfind(':') + 1)));
        return p;
    }
    std::map<std::string, double> metrics() {
        testing::HttpClient c(metrics_port);
        return parse_metrics(c.get("/metrics").body);
    }
    testing::RunResult prefsync(const std::string& args) {
        return testing::run(quote(PREFSYNC_BINARY) + " -c " + quote(config) + " " + args);
    }
    unsigned short metrics_port = 0;
};

TEST(Daemon, AScheduleFiresTheNotifyProtocolIsSpokenAndMetricsMatchTheWork) {
    DaemonWorkspace w(300);
    NotifySocket notify(w.dir.file("notify.sock"));
    setenv("NOTIFY_SOCKET", w.dir.file("notify.sock").c_str(), 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    auto daemon = w.start();
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    EXPECT_TRUE(notify.wait_for("READY=1")) << "READY after config and journal are open";
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 300u; }))
        << "the schedule fired and the job ran; stored " << w.emu.store.size() << ", daemon log:\n"
        << testing::read_file(w.log);
    EXPECT_TRUE(notify.wait_for("STATUS=running crm")) << "STATUS names the job while it runs";
    EXPECT_TRUE(notify.wait_for("STATUS=idle; next crm at"));
    EXPECT_TRUE(notify.wait_for("WATCHDOG=1"));

    // Let the schedule fire again (nothing changed: nothing sent), then compare counters.
    ASSERT_TRUE(
        eventually([&] { return w.metrics()["prefsync_runs_total{job=\"crm\",kind=\"sync\",exit_code=\"0\"}"] >= 2; }));
    auto m = w.metrics();
    EXPECT_EQ(m["prefsync_requests_total{endpoint=\"upsert\",status=\"202\"}"], 300);
    EXPECT_EQ(static_cast<std::int64_t>(m["prefsync_request_duration_seconds_count"]), w.emu.requests_counter());
    EXPECT_EQ(m["prefsync_request_duration_seconds_bucket{le=\"+Inf\"}"], 300);
    EXPECT_EQ(m["prefsync_rows{job=\"crm\",state=\"accepted\"}"], 300);
    EXPECT_EQ(m["prefsync_retries_total"], 0);
    EXPECT_GT(m["prefsync_journal_bytes"], 0);
    EXPECT_EQ(m["prefsync_rate_limit_requests_per_second"], 5000);
    testing::HttpClient health(w.metrics_port);
    EXPECT_EQ(health.get("/healthz").status, 200);

    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
    EXPECT_THAT(testing::read_file(w.log), HasSubstr("stopped (signal)"));
}

TEST(Daemon, SigtermMidRunDrainsExitsZeroAndARestartFinishesWithNothingLostOrDuplicated) {
    DaemonWorkspace w(3000);
    w.emu.set_faults(R"({"latency_ms": 20})");
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.emu.requests_counter() >= 200; }));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0) << testing::read_file(w.log);
    auto sent_before_restart = w.emu.requests_counter();
    EXPECT_LT(sent_before_restart, 3000) << "stopped mid-run";
    w.emu.set_faults(R"({"latency_ms": 0})");
    auto restarted = w.start();
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 3000u; }));
    restarted->signal(SIGTERM);
    EXPECT_EQ(restarted->wait(), 0);
    std::set<std::string> ids;
    for (auto& p : w.emu.store.dump())
        for (auto& a : p.at("AlternateIds").as_array())
            EXPECT_TRUE(ids.insert(std::string(a.at("AlternateId").as_string())).second);
    EXPECT_EQ(ids.size(), 3000u);
    auto status = w.prefsync("status crm --json");
    auto s = json::parse(status.out).at("crm");
    EXPECT_EQ(s.at("accepted").as_int64(), 3000);
    EXPECT_EQ(s.at("queued").as_int64() + s.at("inflight").as_int64() + s.at("retry").as_int64(), 0);
}

TEST(Daemon, SighupWithABrokenConfigKeepsTheOldOneAndAGoodOneIsLoaded) {
    DaemonWorkspace w(50);
    // As under systemd: $JOURNAL_STREAM names the stream stderr is (here the log file), so log
    // lines carry priorities.
    w.dir.write("daemon.log", "");
    struct stat log_file {};
    ASSERT_EQ(stat(w.log.c_str(), &log_file), 0);
    setenv("JOURNAL_STREAM", (std::to_string(log_file.st_dev) + ":" + std::to_string(log_file.st_ino)).c_str(), 1);
    auto daemon = w.start();
    unsetenv("JOURNAL_STREAM");
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 50u; }));
    auto good = testing::read_file(w.config);
    w.dir.write("prefsync.yaml", good + "  broken:\n    mode: upsrt\n");
    daemon->signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return testing::read_file(w.log).find("Reload refused") != std::string::npos; }));
    EXPECT_THAT(
        testing::read_file(w.log),
        HasSubstr(
            "jobs.broken.mode: expected create, update, upsert, replace, delete, archive or mirror, got \"upsrt\""));
    EXPECT_THAT(testing::read_file(w.log), HasSubstr("<3>error: Reload refused"));
    EXPECT_TRUE(daemon->running());
    testing::HttpClient health(w.metrics_port);
    EXPECT_EQ(health.get("/healthz").status, 200);

    w.dir.write("prefsync.yaml", good);
    daemon->signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return testing::read_file(w.log).find("reloaded") != std::string::npos; }));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

// The lines of `text` that contain `what`.
std::vector<std::string> lines_with(const std::string& text, const std::string& what) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.find(what) != std::string::npos) out.push_back(line);
    return out;
}

TEST(Daemon, SighupWithATokenThatCannotBeReadIsRefusedAsAtStartAndTheOldConfigRunsOn) {
    // Measured before: "Config reloaded", then every run failed on the unset variable and
    // the job was parked, although a start with the same config is refused.
    DaemonWorkspace w(50);
    unsetenv("NOPE_TOKEN");
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 50u; }));
    auto text = w.text("every 1s");
    text.replace(text.find("token_env: PREFSYNC_TOKEN"), 25, "token_env: NOPE_TOKEN");
    w.dir.write("prefsync.yaml", text);
    auto start = w.prefsync("daemon");
    ASSERT_EQ(start.exit_code, 1) << start.err;
    auto refused_at_start = lines_with(start.err, "NOPE_TOKEN");
    ASSERT_EQ(refused_at_start.size(), 1u) << start.err;

    daemon->signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return testing::read_file(w.log).find("Reload refused") != std::string::npos; }));
    EXPECT_THAT(testing::read_file(w.log), HasSubstr(refused_at_start[0])) << "the message a start gives";
    // The running config, and its token, go on: new rows are sent and nothing is parked.
    w.write_source(60);
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 60u; })) << testing::read_file(w.log);
    EXPECT_EQ(w.metrics()["prefsync_job_parked{job=\"crm\"}"], 0);
    auto log = testing::read_file(w.log);
    EXPECT_THAT(log, Not(HasSubstr("Config reloaded")));
    EXPECT_THAT(log, Not(HasSubstr("Job parked")));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

TEST(Daemon, SighupWithAnotherJournalPathKeepsTheRunningJournalForEverythingAndSaysSo) {
    // Measured before: "Config reloaded" and no warning; runs then journaled into the new
    // file (re-sending every row) while retries, parking and /metrics read the old one.
    DaemonWorkspace w(50);
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.metrics()["prefsync_rows{job=\"crm\",state=\"accepted\"}"] == 50; }));
    auto text = w.text("every 1s");
    text.replace(text.find("path: state/journal.db"), 22, "path: moved/journal.db");
    w.dir.write("prefsync.yaml", text);
    daemon->signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return testing::read_file(w.log).find("Config reloaded") != std::string::npos; }));
    auto log = testing::read_file(w.log);
    EXPECT_THAT(log, HasSubstr("journal.path changed: it takes effect at the next start; until then the daemon keeps "
                               "the running value"));
    EXPECT_THAT(log, HasSubstr("restart_needed_for=journal.path"));

    w.write_source(60);
    ASSERT_TRUE(eventually([&] { return w.metrics()["prefsync_rows{job=\"crm\",state=\"accepted\"}"] == 60; }))
        << "the runs journal where /metrics looks; daemon log:\n"
        << testing::read_file(w.log);
    EXPECT_EQ(w.emu.requests_counter(), 60) << "each row sent once: nothing re-sent from an empty journal";
    EXPECT_FALSE(std::filesystem::exists(w.dir.file("moved"))) << "no journal, lock or reject file there";
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

TEST(Daemon, ASyncOfAJobTheDaemonIsRunningIsRefusedClearly) {
    DaemonWorkspace w(2000);
    w.emu.set_faults(R"({"latency_ms": 30})");
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.emu.requests_counter() > 0; }));
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("job crm is being run by the daemon (pid "));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
    // Once the daemon is gone the job is free again.
    w.emu.set_faults(R"({"latency_ms": 0})");
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.store.size(), 2000u);
}

TEST(Daemon, VerifyReadsAcceptedUpdatesBackAndMeasures202ToComplete) {
    DaemonWorkspace w(120, "every 1h", ", verify: true, verify_interval: 1s, catch_up: true");
    // The API takes a moment to process: the first read-backs find "Pending Update" (4 s: the
    // verify starts right after the push, but a slow machine can take seconds to get there).
    w.emu.store.set_processing_delay(std::chrono::milliseconds(4000));
    w.remember_fire_seconds_ago(7200);  // catch_up: the hourly slot was missed
    auto daemon = w.start();
    // The rows' states are read from the journal, the histogram from memory, which is
    // observed just after the commit: /metrics is not one snapshot, so wait for both.
    std::map<std::string, double> m;
    ASSERT_TRUE(eventually([&] {
        m = w.metrics();
        return m["prefsync_rows{job=\"crm\",state=\"verified\"}"] == 120 &&
               m["prefsync_accepted_to_complete_seconds_count"] >= 120;
    })) << "verified "
        << m["prefsync_rows{job=\"crm\",state=\"verified\"}"] << ", observed "
        << m["prefsync_accepted_to_complete_seconds_count"];
    EXPECT_EQ(m["prefsync_rows{job=\"crm\",state=\"accepted\"}"], 0);
    EXPECT_EQ(m["prefsync_accepted_to_complete_seconds_count"], 120);
    EXPECT_GE(m["prefsync_accepted_to_complete_seconds_sum"], 120 * 3.0)
        << "each waited about the processing delay (4 s; less the moments between its arrival and its 202's record)";
    EXPECT_GT(m["prefsync_requests_total{endpoint=\"read\",status=\"200\"}"], 120) << "read back more than once";
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

TEST(Daemon, TheWatchdogIsFedWhileALargeSourceIsReadAndJournaled) {
    // Measured before: no WATCHDOG=1 while a source was read and journaled, so a first sync
    // of millions of rows outlived WatchdogSec and systemd killed the daemon mid-run.
    DaemonWorkspace w(100000, "every 1s");
    NotifySocket notify(w.dir.file("notify.sock"));
    setenv("NOTIFY_SOCKET", w.dir.file("notify.sock").c_str(), 1);
    // 4 s: pings every second, so a stall of more than a second (a slow fsync on a loaded
    // machine) is allowed before the gap passes half the interval.
    setenv("WATCHDOG_USEC", "4000000", 1);
    auto daemon = w.start();
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    ASSERT_TRUE(notify.wait_for("STATUS=running crm"));
    auto started = notify.received().size();
    // Reading and journaling overlap sending: watched over the first 20,000 rows, a stretch
    // of several seconds in which the run reads, journals and sends.
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (w.emu.store.size() < 20000 && Clock::now() < deadline)
        notify.wait_for("WATCHDOG=1", std::chrono::seconds(1));
    ASSERT_GE(w.emu.store.size(), 20000u);
    std::vector<Clock::time_point> pings;
    auto received = notify.received();
    for (auto i = started; i < received.size(); ++i)
        if (received[i].text.find("WATCHDOG=1") != std::string::npos) pings.push_back(received[i].at);
    ASSERT_GE(pings.size(), 2u);
    auto longest = Clock::duration(0);
    for (std::size_t i = 1; i < pings.size(); ++i) longest = std::max(longest, pings[i] - pings[i - 1]);
    EXPECT_LT(longest, std::chrono::milliseconds(2000))
        << "the longest gap must stay below half of WATCHDOG_USEC; was "
        << std::chrono::duration_cast<std::chrono::milliseconds>(longest).count() << " ms over " << pings.size()
        << " pings";
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

TEST(Daemon, ARefusedTokenParksTheJobInsteadOfHammeringTheApiAndAReloadRetriesIt) {
    DaemonWorkspace w(50, "every 1s");
    // The token from a file, so the operator can fix it while the daemon runs.
    auto token_file = w.dir.write("token", "not-the-token");
    chmod(token_file.c_str(), 0600);
    auto text = w.text("every 1s");
    text.replace(text.find("token_env: PREFSYNC_TOKEN"), 25, "token_file: " + quote(token_file));
    w.dir.write("prefsync.yaml", text);
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.metrics()["prefsync_job_parked{job=\"crm\"}"] == 1; }));
    auto parked_at = w.emu.requests_counter();
    EXPECT_LE(parked_at, 8) << "one run's requests in flight when the 401 came, no more";
    // A second's schedule and 50 rows left queued: before parking, the daemon re-ran the job
    // and drained "due" retries in a tight loop (measured: 1,043 requests in 6 s).
    auto until = Clock::now() + std::chrono::seconds(3);
    while (Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // an observation window
    EXPECT_EQ(w.emu.requests_counter(), parked_at) << "parked: nothing sent for at least 30 s";
    auto status = w.prefsync("status crm");
    EXPECT_THAT(status.out, HasSubstr("PARKED by the daemon"));
    EXPECT_THAT(status.out, HasSubstr("401"));
    EXPECT_EQ(w.metrics()["prefsync_job_consecutive_fatal_runs{job=\"crm\"}"], 1);
    // The operator fixes the token and reloads: the job runs at its next slot.
    w.dir.write("token", "emulator-token");
    daemon->signal(SIGHUP);
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 50u; }));
    EXPECT_TRUE(eventually([&] { return w.metrics()["prefsync_job_parked{job=\"crm\"}"] == 0; }));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

// A scheduled run of a CSV file still being written (modified less than its `settle` ago)
// does not wait, holding the daemon's other jobs: it ends as when the file changed while it
// was read (exit 4), the job is read again after a backoff, not parked, and nothing is sent.
TEST(Daemon, AScheduledRunOfAFileStillBeingWrittenIsReadAgainLaterNotParked) {
    DaemonWorkspace w(10, "every 1s");
    auto text = w.text("every 1s");
    text.replace(text.find("path: crm.csv }"), 15, "path: crm.csv, settle: 30m }");
    w.dir.write("prefsync.yaml", text);
    testing::TempDir::touch(w.dir.file("crm.csv"), std::chrono::milliseconds(0));  // written just now
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] {
        return testing::read_file(w.log).find("The source changed while it was read: it is read again") !=
               std::string::npos;
    })) << testing::read_file(w.log);
    EXPECT_EQ(w.metrics()["prefsync_runs_total{job=\"crm\",kind=\"sync\",exit_code=\"4\"}"], 1);
    EXPECT_EQ(w.metrics()["prefsync_job_parked{job=\"crm\"}"], 0);
    EXPECT_THAT(testing::read_file(w.log), HasSubstr(w.dir.file("crm.csv") + " was modified"));
    EXPECT_THAT(testing::read_file(w.log), Not(HasSubstr("Waiting for the source to settle")));
    EXPECT_EQ(w.emu.requests_counter(), 0);
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

// The daemon keeps a park that is over until a run ends without a fatal error (its length
// grows with the fatal runs in a row): `status` says it is over, not PARKED (an operator saw
// "PARKED until" a time already past while the job was running again).
TEST(Daemon, StatusShowsAParkThatIsOverAsOver) {
    DaemonWorkspace w(5);
    auto park = [&](std::int64_t until) {
        journal::Journal journal(w.dir.file("state/journal.db"));
        journal::Parked p;
        p.until = until;
        p.failures = 2;
        p.reason = "the API answered 401";
        journal.schedule.park("crm", p);
    };
    park(base::now_ms() - 60'000);
    auto status = w.prefsync("status crm");
    EXPECT_THAT(status.out, Not(HasSubstr("PARKED"))) << status.out;
    EXPECT_THAT(status.out, HasSubstr("(over: the daemon runs it again) after 2 fatal run(s)")) << status.out;
    EXPECT_TRUE(json::parse(w.prefsync("status crm --json").out).at("crm").at("parked").at("over").as_bool());
    park(base::now_ms() + 3'600'000);
    status = w.prefsync("status crm");
    EXPECT_THAT(status.out, HasSubstr("PARKED by the daemon until")) << status.out;
}

// shutdown_timeout ends the process in the middle of its run: nothing can record the run's
// end then. The next daemon ends it as interrupted when it starts, not at the job's next run.
TEST(Daemon, ARunCutShortByShutdownTimeoutIsEndedAsInterruptedWhenTheDaemonStartsAgain) {
    DaemonWorkspace w(50, "every 1s");
    auto text = w.text("every 1s");
    text.replace(text.find("shutdown_timeout: 20s"), 21, "shutdown_timeout: 1s");
    w.dir.write("prefsync.yaml", text);
    w.emu.set_faults(R"({"slow_ms": 60000})");  // every answer later than the drain allows
    auto in_flight = [&] {
        return json::parse(testing::http_get(w.emu.server.port(), "/__admin/stats")).at("in_flight").as_int64();
    };
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return in_flight() > 1; }));  // beyond the stats request itself
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
    EXPECT_THAT(testing::read_file(w.log), HasSubstr("shutdown_timeout reached"));
    auto runs = json::parse(w.prefsync("status crm --json").out).at("crm").at("runs").as_array();
    ASSERT_EQ(runs.size(), 1u);
    ASSERT_EQ(runs[0].at("ended").as_string(), "-") << "the process left without recording the end";
    auto cut_short = runs[0].at("id").as_int64();

    w.emu.set_faults(R"({"slow_ms": 0})");
    w.dir.write("prefsync.yaml", w.text("\"0 3 * * *\""));  // no run soon: the start itself ends it
    auto restarted = w.start();
    runs = json::parse(w.prefsync("status crm --json").out).at("crm").at("runs").as_array();
    ASSERT_FALSE(runs.empty());
    EXPECT_EQ(runs.back().at("id").as_int64(), cut_short);
    EXPECT_NE(runs.back().at("ended").as_string(), "-");
    EXPECT_EQ(runs.back().at("exit_code").as_int64(), 4);
    restarted->signal(SIGTERM);
    EXPECT_EQ(restarted->wait(), 0);
}

TEST(Daemon, CatchUpRunsAMissedScheduleOnceAtStart) {
    // A daily schedule that will not fire during the test: only catch_up can run it.
    DaemonWorkspace w(20, "\"0 3 * * *\"", ", catch_up: true");
    w.remember_fire_seconds_ago(2 * 86400);  // the journal remembers a fire two days ago: the slot after it was missed
    auto daemon = w.start();
    ASSERT_TRUE(eventually([&] { return w.emu.store.size() == 20u; }));
    EXPECT_THAT(testing::read_file(w.log),
                HasSubstr("Missed a run while the daemon was down (catch_up): running it now. "
                          "job=crm"));
    daemon->signal(SIGTERM);
    EXPECT_EQ(daemon->wait(), 0);
}

}  // namespace
}  // namespace prefsync
