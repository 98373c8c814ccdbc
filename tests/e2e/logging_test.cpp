// Logging end to end: the real binary's stderr with `log.format: json` (a sync with faults,
// refused rows and retries, then a wrong token), `log.level`, `log.bodies` with personal data
// masked, and the token in no output and nowhere in the journal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/push_workspace.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;
using testing::quote;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// 300 rows in the workspace's columns. Every tenth has an address without '@' (the API answers
// 400) and, so that the logged bodies have something to mask, an email address as its first
// name and a phone number as its last; row 150 has a field too many (rejected).
std::string rows_with_refusals() {
    std::string csv = "customer_id,first_name,last_name,email,tags,loyalty_tier\n";
    for (int i = 1; i <= 300; ++i) {
        auto n = std::to_string(i);
        if (i == 150)
            csv += "C" + n + ",Ann,Lee,ann@example.com,a,Gold,extra\n";
        else if (i % 10 == 0)
            csv += "C" + n + ",jane.roe" + n + "@example.com,+1 (555) 010-" + std::to_string(1000 + i) + ",broken" + n +
                   "#example.com,a;b,Gold\n";
        else
            csv += "C" + n + ",First" + n + ",Last" + n + ",user" + n + "@example.com,a;b,Silver\n";
    }
    return csv;
}

struct LoggingWorkspace : testing::PushWorkspace {
    explicit LoggingWorkspace(const std::string& log_section) : PushWorkspace(1) {
        dir.write("profiles.csv", rows_with_refusals());
        dir.write("prefsync.yaml", testing::read_file(config) + log_section);
    }
    // Every byte the journal keeps (database, WAL, shared memory, reject file).
    std::string journal_bytes() {
        std::string all;
        for (auto& e : std::filesystem::recursive_directory_iterator(dir.file("state")))
            if (e.is_regular_file()) all += testing::read_file(e.path().string());
        return all;
    }
};

// Each line of a JSON-mode stderr as an object, checked for the members every event has.
std::vector<json::object> events_of(const std::string& err) {
    static const std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    static const std::set<std::string> levels{"error", "warning", "info", "debug"};
    std::vector<json::object> events;
    for (const auto& line : lines_of(err)) {
        boost::system::error_code ec;
        auto v = json::parse(line, ec);
        EXPECT_FALSE(ec) << "not JSON: " << line;
        if (ec || !v.is_object()) continue;
        const auto& o = v.as_object();
        EXPECT_TRUE(o.contains("time") && o.at("time").is_string() &&
                    std::regex_match(std::string(o.at("time").as_string()), time))
            << line;
        EXPECT_TRUE(o.contains("level") && o.at("level").is_string() &&
                    levels.count(std::string(o.at("level").as_string())))
            << line;
        EXPECT_TRUE(o.contains("message") && o.at("message").is_string()) << line;
        events.push_back(o);
    }
    return events;
}

std::string text(const json::object& o, const char* key) {
    return o.contains(key) && o.at(key).is_string() ? std::string(o.at(key).as_string()) : "";
}

TEST(Logging, JsonLinesFromASyncWithFaultsAndAWrongTokenNameTheJobAndRunAndNeverTheToken) {
    LoggingWorkspace w("log: { format: json, level: debug, bodies: true }\n");
    w.emu.set_faults(R"({"error_503": 0.1, "reset": 0.05, "seed": 7})");
    auto report = w.dir.file("report.json");
    auto r = w.prefsync("sync crm --report " + quote(report), "emulator-token");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("sync crm: read 300")) << "the summary is output, as it was";
    auto run_id = json::parse(testing::read_file(report)).at("run_id").as_int64();

    auto events = events_of(r.err);
    std::map<std::string, int> count;
    for (const auto& e : events) {
        auto message = text(e, "message");
        ++count[message];
        if (message.starts_with("log.bodies is true")) {
            EXPECT_EQ(text(e, "level"), "warning");
            continue;  // a warning about the config, before any job runs
        }
        EXPECT_EQ(text(e, "job"), "crm") << message;
        if (message == "Reading" || message == "Update failed" || message == "Retrying update" ||
            message == "Update refused" || message == "Rows rejected") {
            ASSERT_TRUE(e.contains("run")) << message;
            EXPECT_EQ(e.at("run").as_int64(), run_id) << message;
        }
        if (message == "Update failed") {
            EXPECT_EQ(text(e, "level"), "warning");
            EXPECT_EQ(e.at("status").as_int64(), 400);
            EXPECT_THAT(text(e, "reason"), HasSubstr("not an email address"));
        }
        if (message == "Update refused") {
            EXPECT_EQ(text(e, "level"), "debug");
            EXPECT_THAT(text(e, "request"), HasSubstr("\"FirstName\":\"j***@example.com\""));
            EXPECT_THAT(text(e, "request"), ::testing::MatchesRegex(".*\"LastName\":\"\\*\\*\\*1[0-9]{3}\".*"));
            EXPECT_THAT(text(e, "answer"), HasSubstr("not an email address"));
        }
    }
    EXPECT_EQ(count["Update failed"], 29) << "every tenth row (but the 150th, rejected) is refused";
    EXPECT_EQ(count["Update refused"], 29) << "log.bodies: each refusal with its bodies";
    EXPECT_EQ(count["Rows rejected"], 1);
    EXPECT_GT(count["Retrying update"], 0) << "the faults caused retries";
    EXPECT_EQ(count["Reading"], 1);
    // Personal data only masked: no raw first-name address, no phone number.
    EXPECT_THAT(r.err, Not(HasSubstr("jane.roe10@example.com")));
    EXPECT_THAT(r.err, Not(HasSubstr("010-1010")));

    // A wrong token: the run aborts with an error event, in JSON too.
    w.emu.set_faults(R"({"error_503": 0, "reset": 0})");
    w.dir.write("profiles.csv", rows_with_refusals() + "C301,New,Row,new@example.com,a,Gold\n");
    auto wrong = w.prefsync("sync crm", "wrong-token-Zq9x");
    ASSERT_EQ(wrong.exit_code, 3) << wrong.err;
    bool aborted = false;
    for (const auto& e : events_of(wrong.err)) {
        if (text(e, "level") != "error") continue;
        aborted = true;
        EXPECT_EQ(text(e, "job"), "crm");
        EXPECT_THAT(text(e, "reason"), HasSubstr("401"));
    }
    EXPECT_TRUE(aborted) << wrong.err;

    for (const auto& secret : {"emulator-token", "wrong-token-Zq9x"}) {
        EXPECT_THAT(r.out + r.err + wrong.out + wrong.err, Not(HasSubstr(secret)));
        EXPECT_THAT(w.journal_bytes(), Not(HasSubstr(secret))) << "not in the journal's error texts either";
    }
}

TEST(Logging, WithoutBodiesNoBodyIsLoggedEvenAtDebug) {
    LoggingWorkspace w("log: { format: json, level: debug }\n");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err;
    for (const auto& e : events_of(r.err)) EXPECT_NE(text(e, "message"), "Update refused");
    EXPECT_THAT(r.err, Not(HasSubstr("jane.roe")));
    EXPECT_THAT(r.err, Not(HasSubstr("***")));
}

TEST(Logging, LevelWarningDropsInfoLines) {
    LoggingWorkspace w("log: { level: warning }\n");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err;
    auto lines = lines_of(r.err);
    ASSERT_FALSE(lines.empty());
    for (const auto& line : lines) EXPECT_TRUE(line.starts_with("warning: ") || line.starts_with("error: ")) << line;
    EXPECT_THAT(r.err, HasSubstr("warning: Update failed. identity=CRMID:C10 origin="));
    EXPECT_THAT(r.err, HasSubstr("warning: Rows rejected. rejected=1 reject_file="));
    EXPECT_THAT(r.err, Not(HasSubstr("Reading")));

    LoggingWorkspace info("");
    auto all = info.prefsync("sync crm");
    EXPECT_THAT(all.err, HasSubstr("Reading. source=")) << "info lines, at the default level";
}

TEST(Logging, CheckConfigRejectsALevelOrFormatTheLoggerDoesNotImplement) {
    LoggingWorkspace w("log:\n  level: verbose\n  format: xml\n");
    auto lines = lines_of(testing::read_file(w.config));
    auto line_of = [&](const std::string& start) {
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (lines[i].starts_with(start)) return std::to_string(i + 1);
        return std::string("?");
    };
    auto r = w.prefsync("check-config");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("error: " + w.config + ":" + line_of("  level:") +
                                 ":10: log.level: expected error, warning, info or debug, got \"verbose\""));
    EXPECT_THAT(r.err, HasSubstr("error: " + w.config + ":" + line_of("  format:") +
                                 ":11: log.format: expected text or json, got \"xml\""));
    EXPECT_EQ(w.prefsync("sync crm").exit_code, 1) << "and no command runs with it";
}

}  // namespace
}  // namespace prefsync
