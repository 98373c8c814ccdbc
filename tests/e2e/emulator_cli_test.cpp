// `prefsync emulator` as a user starts it: the bound address on the first line, state kept
// across restarts with --state, a clean exit on SIGTERM.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

unsigned short port_of(const std::string& line) {
    return static_cast<unsigned short>(std::stoi(line.substr(line.rfind(':') + 1)));
}

TEST(EmulatorCli, PrintsItsAddressServesAndKeepsStateAcrossRestarts) {
    testing::TempDir dir;
    auto state = dir.file("state.json");
    const std::string target = "/Profiles/v2/777/Profile/AlternateId?alternateId=C1&alternateIdType=CRMID";
    {
        testing::ChildProcess emu({PREFSYNC_BINARY, "emulator", "--listen", "127.0.0.1:0", "--client-id", "777",
                                   "--token", "t0k", "--state", state});
        auto line = emu.read_line();
        ASSERT_THAT(line, MatchesRegex("127\\.0\\.0\\.1:[0-9]+"));
        testing::HttpClient client(port_of(line), "t0k");
        auto r = client.post(target, boost::json::object{{"CustomerType", "Retail"}});
        ASSERT_EQ(r.status, 202) << r.body;
        emu.signal(SIGTERM);
        EXPECT_EQ(emu.wait(), 0);
    }
    EXPECT_THAT(testing::read_file(state), HasSubstr("\"CustomerType\":\"Retail\""));
    testing::ChildProcess again({PREFSYNC_BINARY, "emulator", "--listen", "127.0.0.1:0", "--client-id", "777",
                                 "--token", "t0k", "--state", state});
    testing::HttpClient client(port_of(again.read_line()), "t0k");
    auto r = client.get(target);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("CustomerType"), "Retail");
    EXPECT_EQ(r.json().at("UpdateStatus"), "Complete") << "loaded profiles are processed";
    again.signal(SIGINT);
    EXPECT_EQ(again.wait(), 0);
}

TEST(EmulatorCli, RequestLogHasOneJsonLinePerRequest) {
    testing::TempDir dir;
    auto log = dir.file("requests.jsonl");
    testing::ChildProcess emu({PREFSYNC_BINARY, "emulator", "--listen", "127.0.0.1:0", "--request-log", log});
    testing::HttpClient client(port_of(emu.read_line()));
    EXPECT_EQ(client.get("/Profiles/v2/12345/Profile/AlternateId?alternateId=x&alternateIdType=T").status, 404);
    EXPECT_EQ(client.get("/Profiles/v2/999/Profile/1").status, 404);
    emu.signal(SIGTERM);
    EXPECT_EQ(emu.wait(), 0);
    std::istringstream lines(testing::read_file(log));
    std::vector<boost::json::object> entries;
    for (std::string line; std::getline(lines, line);) entries.push_back(boost::json::parse(line).as_object());
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].at("method"), "GET");
    EXPECT_EQ(entries[0].at("status"), 404);
    EXPECT_EQ(entries[1].at("target"), "/Profiles/v2/999/Profile/1");
    EXPECT_EQ(entries[0].at("connection"), entries[1].at("connection")) << "one keep-alive connection";
}

TEST(EmulatorCli, RefusesNonLoopbackAddresses) {
    auto r = testing::run(testing::quote(PREFSYNC_BINARY) + " emulator --listen 0.0.0.0:0");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("loopback only"));
}

TEST(EmulatorCli, WorstCaseKnobsFromTheCommandLine) {
    testing::ChildProcess emu({PREFSYNC_BINARY, "emulator", "--listen", "127.0.0.1:0", "--accept-duplicates",
                               "--patch-test-status", "400", "--503-retry-after", "7", "--429-retry-after", "9",
                               "--error-429", "0.5", "--outage", "600000", "--outage-mode", "503",
                               "--outage-retry-after", "5"});
    testing::HttpClient client(port_of(emu.read_line()));
    auto faults = client.get("/__admin/faults").json();
    EXPECT_EQ(faults.at("accept_duplicates"), true);
    EXPECT_EQ(faults.at("patch_test_status"), 400);
    EXPECT_EQ(faults.at("error_503_retry_after"), 7);
    EXPECT_EQ(faults.at("error_429_retry_after"), 9);
    EXPECT_EQ(faults.at("error_429").as_double(), 0.5);
    EXPECT_EQ(faults.at("outage_mode"), "503");
    auto r = client.get("/Profiles/v2/12345/Profile/AlternateId?alternateId=C1&alternateIdType=CRMID");
    EXPECT_EQ(r.status, 503) << "the outage runs from the start, answered";
    EXPECT_EQ(r.retry_after, "5");
    ASSERT_EQ(client.request("POST", "/__admin/faults", R"({"outage_ms": 0, "error_429": 0})").status, 200);
    boost::json::object create{
        {"AlternateIds", boost::json::array{{{"AlternateIdType", "CRMID"}, {"AlternateId", "C1"}}}}};
    EXPECT_EQ(client.post("/Profiles/v2/12345/Profile", create).status, 202);
    EXPECT_EQ(client.post("/Profiles/v2/12345/Profile", create).status, 202) << "the same create accepted twice";
    EXPECT_EQ(client.get("/__admin/alternate-ids").json().at("duplicated"), 1);
    emu.signal(SIGTERM);
    EXPECT_EQ(emu.wait(), 0);
}

TEST(EmulatorCli, RefusesValuesTheKnobsDoNotTake) {
    for (const char* bad : {"--outage-mode later", "--patch-test-status 418", "--503-retry-after -1"}) {
        auto r = testing::run(testing::quote(PREFSYNC_BINARY) + " emulator --listen 127.0.0.1:0 " + bad);
        EXPECT_EQ(r.exit_code, 1) << bad;
    }
}

}  // namespace
}  // namespace prefsync
