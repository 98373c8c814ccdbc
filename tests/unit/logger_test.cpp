// The logger: the same events as text and as JSON, quoting, levels, the job/run scope and
// journald priorities; and the masking of personal data in logged bodies.
#include "daemon/base/logger.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cmath>
#include <sstream>

#include "daemon/base/personal_data.hpp"

namespace prefsync::base {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;

// 2026-12-01T02:00:00.123Z
const auto kTime = std::chrono::system_clock::time_point(std::chrono::milliseconds(1796090400123LL));

// A logger writing into a string, at a fixed time.
struct Captured {
    explicit Captured(LogSettings settings, bool journald = false)
        : log(settings, std::make_shared<spdlog::sinks::ostream_sink_mt>(out, true), journald, [] { return kTime; }) {}
    std::vector<std::string> lines() const {
        std::vector<std::string> result;
        std::istringstream in(out.str());
        for (std::string line; std::getline(in, line);) result.push_back(line);
        return result;
    }
    std::ostringstream out;
    Logger log;
};

LogSettings text(LogLevel level = LogLevel::Info) {
    return {level, LogFormat::Text, false};
}
LogSettings json_format(LogLevel level = LogLevel::Info) {
    return {level, LogFormat::Json, false};
}

TEST(LoggerText, IsASentenceWithFields) {
    Captured c(text());
    c.log.warn("Retrying update", {{"identity", "CRMID:42"}, {"status", 503}, {"attempt", 3}, {"delay_ms", 2150}});
    c.log.info("Reading", {{"source", "csv /srv/crm/profiles.csv"}, {"job", "crm"}});
    c.log.info("Stopped by a signal: unfinished work resumes on restart");
    c.log.error("jobs.crm.source: cannot open crm.csv");
    EXPECT_THAT(c.lines(), ElementsAre("warning: Retrying update. identity=CRMID:42 status=503 attempt=3 delay_ms=2150",
                                       "Reading. source=\"csv /srv/crm/profiles.csv\" job=crm",
                                       "Stopped by a signal: unfinished work resumes on restart",
                                       "error: jobs.crm.source: cannot open crm.csv"));
}

TEST(LoggerText, QuotesValuesThatWouldNotReadBackAsOne) {
    Captured c(text(LogLevel::Debug));
    std::string owned = "owned string";
    c.log.debug("Values", {{"empty", ""},
                           {"space", "a b"},
                           {"quote", "say \"hi\""},
                           {"equals", "a=b"},
                           {"newline", "one\ntwo"},
                           {"owned", owned},
                           {"plain", "Søren"},
                           {"flag", true},
                           {"ratio", 0.25},
                           {"big", std::int64_t{1} << 40},
                           {"count", std::size_t{7}}});
    EXPECT_THAT(c.lines(), ElementsAre("debug: Values. empty=\"\" space=\"a b\" quote=\"say \\\"hi\\\"\" "
                                       "equals=\"a=b\" newline=\"one\\ntwo\" owned=\"owned string\" plain=Søren "
                                       "flag=true ratio=0.25 big=1099511627776 count=7"));
}

TEST(LoggerText, AnAbsentValueLeavesItsFieldOut) {
    Captured t(text());
    t.log.info("Pushed", {{"exit", 0}, {"fatal", omit_if_empty("")}, {"sent", 2}});
    t.log.info("Pushed", {{"exit", 3}, {"fatal", omit_if_empty("401")}});
    EXPECT_THAT(t.lines(), ElementsAre("Pushed. exit=0 sent=2", "Pushed. exit=3 fatal=401"));
    Captured j(json_format());
    j.log.info("Pushed", {{"fatal", std::nullopt}, {"job", std::nullopt}});
    EXPECT_THAT(j.lines(),
                ElementsAre("{\"time\":\"2026-12-01T02:00:00.123Z\",\"level\":\"info\",\"message\":\"Pushed\"}"));
}

TEST(LoggerText, AMessageEndingInAFullStopGetsNoSecondOne) {
    Captured c(text());
    c.log.info("Pushing.", {{"sent", 10}});
    EXPECT_THAT(c.lines(), ElementsAre("Pushing. sent=10"));
}

TEST(LoggerJson, HasTimeLevelJobRunMessageAndTheFields) {
    Captured c(json_format());
    {
        LogScope scope("crm", 12);
        c.log.warn("Retrying update", {{"identity", "CRMID:42"}, {"status", 503}, {"attempt", 3}, {"delay_ms", 2150}});
    }
    c.log.info("Outside any job", {{"ok", false}, {"ratio", 1.5}});
    EXPECT_THAT(c.lines(),
                ElementsAre("{\"time\":\"2026-12-01T02:00:00.123Z\",\"level\":\"warning\",\"job\":\"crm\",\"run\":12,"
                            "\"message\":\"Retrying update\",\"identity\":\"CRMID:42\",\"status\":503,\"attempt\":3,"
                            "\"delay_ms\":2150}",
                            "{\"time\":\"2026-12-01T02:00:00.123Z\",\"level\":\"info\",\"message\":\"Outside any job\","
                            "\"ok\":false,\"ratio\":1.5}"));
}

TEST(LoggerJson, EveryLineParsesWhateverTheValuesHold) {
    Captured c(json_format(LogLevel::Debug));
    c.log.error("quote \" backslash \\ tab \t",
                {{"invalid_utf8", "caf\xE9 \xFF"}, {"control", "\x01"}, {"nan", std::nan("")}});
    c.log.debug("ünïcødé", {{"name", "李"}});
    auto lines = c.lines();
    ASSERT_EQ(lines.size(), 2u);
    auto first = json::parse(lines[0]).as_object();
    EXPECT_EQ(first.at("level"), "error");
    EXPECT_EQ(first.at("message"), "quote \" backslash \\ tab \t");
    EXPECT_EQ(first.at("invalid_utf8"), "caf\xEF\xBF\xBD \xEF\xBF\xBD") << "bytes that are not UTF-8 become U+FFFD";
    EXPECT_EQ(first.at("control"), "\x01");
    EXPECT_TRUE(first.at("nan").is_null());
    EXPECT_EQ(json::parse(lines[1]).at("name"), "李");
}

TEST(LoggerJson, ScopesNestAndFieldsNamedJobOrRunWin) {
    Captured c(json_format());
    LogScope job("crm");
    c.log.info("a");
    {
        LogScope run("crm", 7);
        c.log.info("b");
        c.log.info("c", {{"job", "other"}, {"run", 9}});
    }
    c.log.info("d");
    auto lines = c.lines();
    ASSERT_EQ(lines.size(), 4u);
    auto at = [&](int i) { return json::parse(lines[i]).as_object(); };
    EXPECT_EQ(at(0).at("job"), "crm");
    EXPECT_FALSE(at(0).contains("run"));
    EXPECT_EQ(at(1).at("run"), 7);
    EXPECT_EQ(at(2).at("job"), "other");
    EXPECT_EQ(at(2).at("run"), 9);
    EXPECT_EQ(lines[2].find("\"job\"", lines[2].find("\"job\"") + 1), std::string::npos) << "one job member";
    EXPECT_FALSE(at(3).contains("run")) << "the outer scope is back";
}

TEST(LoggerLevels, EventsBelowTheLevelAreDropped) {
    Captured c(text(LogLevel::Warning));
    c.log.debug("debug");
    c.log.info("info");
    c.log.warn("warning");
    c.log.error("error");
    EXPECT_THAT(c.lines(), ElementsAre("warning: warning", "error: error"));
    EXPECT_FALSE(c.log.enabled(LogLevel::Info));
    EXPECT_TRUE(c.log.enabled(LogLevel::Warning));
}

TEST(LoggerLevels, BodiesOnlyWhenAskedForAndDebugIsOn) {
    EXPECT_FALSE(Captured({LogLevel::Debug, LogFormat::Text, false}).log.logs_bodies());
    EXPECT_FALSE(Captured({LogLevel::Info, LogFormat::Text, true}).log.logs_bodies()) << "debug events are not written";
    EXPECT_TRUE(Captured({LogLevel::Debug, LogFormat::Text, true}).log.logs_bodies());
}

TEST(LoggerLevels, ConfigSpellings) {
    EXPECT_EQ(parse_log_level("warning"), LogLevel::Warning);
    EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
    EXPECT_EQ(parse_log_level("verbose"), std::nullopt);
    EXPECT_EQ(parse_log_level("warn"), std::nullopt) << "one spelling per level";
    EXPECT_EQ(parse_log_format("json"), LogFormat::Json);
    EXPECT_EQ(parse_log_format("xml"), std::nullopt);
}

TEST(LoggerJournald, EveryLineCarriesItsPriorityJsonIncluded) {
    Captured t(text(LogLevel::Debug), true);
    t.log.error("e");
    t.log.warn("w");
    t.log.info("i");
    t.log.debug("d");
    EXPECT_THAT(t.lines(), ElementsAre("<3>error: e", "<4>warning: w", "<6>i", "<7>debug: d"));
    Captured j(json_format(), true);
    j.log.warn("w");
    ASSERT_EQ(j.lines().size(), 1u);
    EXPECT_EQ(j.lines()[0].substr(0, 4), "<4>{") << "journald strips the prefix; the message stays JSON";
}

TEST(LoggerJournald, ConnectedOnlyWhenJournalStreamNamesOurStderr) {
    const char* saved = std::getenv("JOURNAL_STREAM");
    std::string restore = saved ? saved : "";
    struct stat st {};
    ASSERT_EQ(fstat(STDERR_FILENO, &st), 0);
    setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str(), 1);
    EXPECT_TRUE(journald_connected());
    setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
    EXPECT_FALSE(journald_connected()) << "inherited by a child whose stderr goes elsewhere";
    setenv("JOURNAL_STREAM", "garbage", 1);
    EXPECT_FALSE(journald_connected());
    unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(journald_connected());
    if (saved) setenv("JOURNAL_STREAM", restore.c_str(), 1);
}

TEST(PersonalData, EmailsKeepTheirFirstCharacterAndDomain) {
    EXPECT_EQ(mask_personal_data("contact jane.doe+news@example.com today"), "contact j***@example.com today");
    EXPECT_EQ(mask_personal_data("a@b.co, x_y@mail.example.org."), "a***@b.co, x***@mail.example.org.");
    EXPECT_EQ(mask_personal_data("malformed: jane@@example, user@localhost; not one: @handle"),
              "malformed: j***@@example, u***@localhost; not one: @handle");
}

TEST(PersonalData, PhonesKeepTheirLastFourDigits) {
    EXPECT_EQ(mask_personal_data("call +1 (555) 123-4567 now"), "call ***4567 now");
    EXPECT_EQ(mask_personal_data("5551234567"), "***4567");
    EXPECT_EQ(mask_personal_data("+44.20.7946.0958"), "***0958");
    EXPECT_EQ(mask_personal_data("code 12345, id C00000001, born 2026-01-31, at 2026-01-31 10:00:00"),
              "code 12345, id C00000001, born 2026-01-31, at 2026-01-31 10:00:00")
        << "short numbers, ids with letters and dates are not phones";
}

TEST(PersonalData, InJsonOnlyStringValuesAreMasked) {
    std::string body = R"({"ProfileId":123456789,"Emails":[{"EmailAddress":"jane@example.com"}],)"
                       R"("PhoneNumbers":[{"PhoneNumber":"5551234567"}],"Note":"say \"hi\" to bob@example.org"})";
    EXPECT_EQ(mask_personal_data(body),
              R"({"ProfileId":123456789,"Emails":[{"EmailAddress":"j***@example.com"}],)"
              R"("PhoneNumbers":[{"PhoneNumber":"***4567"}],"Note":"say \"hi\" to b***@example.org"})");
    EXPECT_NO_THROW(json::parse(mask_personal_data(body)));
}

}  // namespace
}  // namespace prefsync::base
