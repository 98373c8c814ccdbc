// Pull against the emulator on 127.0.0.1, end to end with the real binary: every read family
// (by id, by alternate id, each search, each history), the errors a pull reports and goes
// on after (404, 403 over 50 matches), faults, the round trip with a push job, and resuming
// after kill -9.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/in_process_emulator.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tls_server.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAreArray;
namespace json = boost::json;
using testing::quote;

const std::string kRate = "requests_per_second: 5000, burst: 500";

struct PullWorkspace {
    testing::TempDir dir;
    testing::InProcessEmulator emu;
    std::map<std::string, std::int64_t> ids;  // CRMID → ProfileId

    // With `log_requests`, the emulator appends each request to requests.jsonl.
    explicit PullWorkspace(bool log_requests = false) : emu({}, server_options(log_requests)) {}
    emulator::ServerOptions server_options(bool log_requests) {
        emulator::ServerOptions o;
        if (log_requests) o.request_log = dir.file("requests.jsonl");
        return o;
    }
    // The request targets the emulator logged, in order.
    std::vector<std::string> request_targets() {
        std::vector<std::string> out;
        std::istringstream in(testing::read_file(dir.file("requests.jsonl")));
        for (std::string line; std::getline(in, line);) {
            auto entry = json::parse(line).as_object();
            if (entry.at("endpoint") != "admin") out.emplace_back(entry.at("target").as_string());
        }
        return out;
    }

    std::int64_t seed(const std::string& crm_id, const std::string& body) {
        auto reply = emu.store.upsert({"CRMID", crm_id}, json::parse(body).as_object());
        EXPECT_LT(reply.status, 300) << json::serialize(reply.body);
        return ids[crm_id] = reply.body.at("ProfileId").to_number<std::int64_t>();
    }

    void seed_people() {
        seed("C1", R"({"CustomerName":{"FirstName":"Ann","LastName":"Lee"},
            "Emails":[{"EmailAddress":"ann@example.com","EmailAddressType":"Personal",
                       "Consents":[{"ConsentType":"EmailMarketing","ConsentVersion":"1","ConsentStatus":1}]}],
            "PhoneNumbers":[{"PhoneNumber":"5551234567","PhoneType":"Mobile","IsMobile":true}],
            "Addresses":[{"Address1":"1 Main St","City":"Portland","StateProvince":"OR","PostalCode":"97201","AddressType":"Home"}],
            "CustomFields":[{"Name":"LoyaltyTier","Value":"Gold"},{"Name":"Colors","Value":"red:blue"}],
            "ProfileTags":[{"Name":"vip"},{"Name":"events"}],
            "ProfilePreferences":[{"ProgramId":"NEWS","ChannelId":"EMAIL","PreferenceStatus":"OptIn","FilterId":"F1",
                                   "PreferenceAttributes":[{"Key":"Color","Value":"Blue"}]}],
            "Groups":[{"GroupType":"Household","GroupName":"H1","IsPrimary":true}]})");
        seed("C2", R"({"CustomerName":{"FirstName":"Bob","LastName":"Lee"},
            "CustomFields":[{"Name":"LoyaltyTier","Value":"Silver"}],"ProfileTags":[{"Name":"events"}],
            "Groups":[{"GroupType":"Household","GroupName":"H1","IsPrimary":false}]})");
        seed("C3", R"({"CustomerName":{"FirstName":"Cara","LastName":"Leeds"}})");
        for (int i = 0; i < 60; ++i)
            seed("B" + std::to_string(i), R"({"CustomerName":{"LastName":"Bulk"},
                "Addresses":[{"Address1":"9 Elm St","City":"Springfield","StateProvince":"IL","AddressType":"Home"}]})");
    }

    std::string config(const std::string& jobs, const std::string& faults_rate = kRate,
                       const std::string& base_url = "") {
        return dir.write("prefsync.yaml", "api:\n  base_url: " + (base_url.empty() ? emu.base_url() : base_url) +
                                              "\n  client_id: \"12345\"\n  token_env: PREFSYNC_TOKEN\n"
                                              "http: { connections: 8, request_timeout: 10s }\n"
                                              "rate_limit: { " +
                                              faults_rate +
                                              " }\n"
                                              "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms }\n"
                                              "journal: { path: state/journal.db }\n"
                                              "jobs:\n" +
                                              jobs);
    }
    testing::RunResult prefsync(const std::string& config_file, const std::string& args) {
        return testing::run("PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " + quote(config_file) +
                            " " + args);
    }
    // Runs `pull JOB` and stops it (SIGTERM) once `requests` API requests have arrived: an
    // unfinished pull with some items done, for the next run to resume (or not).
    void interrupt_pull(const std::string& config_file, const std::string& job, std::int64_t requests) {
        emu.set_faults(R"({"latency_ms": 100})");
        auto before = emu.requests_counter();
        testing::ChildProcess pull(
            {"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", config_file, "pull", job});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (pull.running() && emu.requests_counter() - before < requests &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
        ASSERT_TRUE(pull.running()) << "the pull ended before it could be stopped";
        pull.signal(SIGTERM);
        EXPECT_EQ(pull.wait(), 4) << "interrupted, resumable";
        emu.set_faults(R"({"latency_ms": 0})");
    }
    std::string sql(const std::string& db, const std::string& query) {
        auto r = testing::run("sqlite3 " + quote(dir.file(db)) + " " + quote(query));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return r.out;
    }
    // ProfileIds in a JSONL output, each line parsed.
    std::vector<std::int64_t> jsonl_ids(const std::string& name) {
        std::vector<std::int64_t> out;
        std::istringstream in(testing::read_file(dir.file(name)));
        for (std::string line; std::getline(in, line);)
            out.push_back(json::parse(line).at("ProfileId").to_number<std::int64_t>());
        return out;
    }
};

TEST(Pull, ByProfileIdAndByAlternateIdReportMissingOnesAndGoOn) {
    PullWorkspace w;
    w.seed_people();
    // "00<id>" is C1 again: one item, not a second request.
    w.dir.write("pids.csv", "pid\n" + std::to_string(w.ids["C1"]) + "\n999999\n" + std::to_string(w.ids["C3"]) +
                                "\n00" + std::to_string(w.ids["C1"]) + "\n");
    w.dir.write("crm.csv", "customer_id\nC2\nNOPE\nC1\n");
    auto cfg = w.config(
        "  by-id:\n    source: { type: csv, path: pids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { implied: true }\n    sink: { type: jsonl, path: by-id.jsonl }\n"
        "  by-alt:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    pull: { match_inactive: true }\n    sink: { type: jsonl, path: by-alt.jsonl }\n");
    auto r = w.prefsync(cfg, "pull by-id");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("3 item(s): done 2, missing 1, failed 0"));
    EXPECT_THAT(r.err, HasSubstr("missing"));
    EXPECT_THAT(r.err, HasSubstr("pids.csv:3"));
    EXPECT_THAT(w.jsonl_ids("by-id.jsonl"), UnorderedElementsAreArray({w.ids["C1"], w.ids["C3"]}));
    // The missing profile is listed by `failures`, as a push job's dead letters are.
    auto f = w.prefsync(cfg, "failures by-id");
    EXPECT_EQ(f.exit_code, 0) << f.err;
    EXPECT_THAT(f.out, ::testing::MatchesRegex("profile:999999\t[^\t]*pids\\.csv:3\t404\tmissing\t404: no such "
                                               "profile[^\n]*\n"));

    r = w.prefsync(cfg, "pull by-alt");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out, HasSubstr("done 2, missing 1"));
    EXPECT_THAT(r.err, HasSubstr("crm.csv:3"));
    EXPECT_THAT(w.jsonl_ids("by-alt.jsonl"), UnorderedElementsAreArray({w.ids["C2"], w.ids["C1"]}));
    EXPECT_FALSE(std::filesystem::exists(w.dir.file("by-alt.jsonl.partial")));
}

TEST(Pull, TheFirstRequestsLeaveBeforeTheSourceIsReadAndAStoppedPullResumesFetchingEachIdOnce) {
    PullWorkspace w;
    std::string csv = "customer_id\n";
    for (int i = 1; i <= 5000; ++i) csv += "X" + std::to_string(i) + "\n";
    w.dir.write("crm.csv", csv);
    auto cfg = w.config(
        "  by-alt:\n    source: { type: csv, path: crm.csv }\n"
        "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
        "    pull: {}\n    sink: { type: jsonl, path: by-alt.jsonl }\n");
    // 200 ms an answer on 8 connections: a thousand answers take 25 s, far longer than the
    // stop below takes to arrive.
    w.emu.set_faults(R"({"latency_ms": 200})");
    {
        testing::ChildProcess pull(
            {"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", cfg, "pull", "by-alt"});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (pull.running() && w.emu.requests_counter() < 1 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
        ASSERT_TRUE(pull.running());
        pull.signal(SIGTERM);
        EXPECT_EQ(pull.wait(), 4) << "interrupted, resumable";
    }
    auto journaled = testing::run("sqlite3 " + quote(w.dir.file("state/journal.db")) +
                                  " \"SELECT count(*) FROM pull_items WHERE job = 'by-alt'\"");
    ASSERT_EQ(journaled.exit_code, 0) << journaled.err;
    EXPECT_LE(std::stoi(journaled.out), 1000) << "one batch of the source, not all 5,000 rows";
    EXPECT_GE(std::stoi(journaled.out), 1);

    w.emu.set_faults(R"({"latency_ms": 0})");
    auto r = w.prefsync(cfg, "pull by-alt");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;  // every id is missing: nothing was seeded
    EXPECT_THAT(r.out, HasSubstr("(resumed)"));
    EXPECT_THAT(r.out, HasSubstr("done 0, missing 5000, failed 0"));
    EXPECT_EQ(w.emu.requests_counter(), 5000) << "each id fetched once, before the stop or after it";
}

TEST(Pull, EverySearchFindsItsProfilesDeduplicatedAndOver50IsReportedAsSuch) {
    PullWorkspace w;
    w.seed_people();
    auto c1 = w.ids["C1"], c2 = w.ids["C2"], c3 = w.ids["C3"];
    struct Case {
        std::string endpoint, params;
        std::vector<std::int64_t> expected;
    };
    std::vector<Case> cases{
        {"Address", "{ city: Portland, stateProvince: OR, address1: 1 Main St }", {c1}},
        {"CustomFields", "{ \"customFields[0].Name\": LoyaltyTier, \"customFields[0].Value\": Silver }", {c2}},
        {"CustomFields/SelectList",
         "{ \"customFields[0].OperatorId\": \"3\", \"customFields[0].Name\": Colors, \"customFields[0].Value\": "
         "\"blue:green\" }",
         {c1}},
        {"Email", "{ emailAddress: ann@example.com }", {c1}},
        {"Name", "{ lastName: Lee, firstName: Bob }", {c2}},
        {"Name/Partial", "{ lastName: Lee }", {c1, c2, c3}},
        {"Phone", "{ phoneNumber: \"5551234567\" }", {c1}},
        {"Attributes", "{ \"attributes[0].Key\": Color, \"attributes[0].Value\": Blue }", {c1}},
        {"Tags", "{ \"tag[0]\": events, multipleProfiles: \"true\" }", {c1, c2}},
        {"Groups/AlternateId", "{ groupType: Household, alternateIdType: CRMID, alternateId: C1 }", {c1, c2}},
        {"Groups/Email", "{ groupType: Household, emailAddress: ann@example.com }", {c1, c2}},
        {"Groups", "{ groupType: Household, groupName: H1 }", {c1, c2}},
        {"Groups/Phone", "{ groupType: Household, phoneNumber: \"5551234567\" }", {c1, c2}},
        {"Groups/Primary/" + std::to_string(c1), "{ groupType: Household }", {c1, c2}},
    };
    std::string all;
    std::set<std::int64_t> union_ids;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        auto& c = cases[i];
        auto one = w.config("  s:\n    pull:\n      searches:\n        - { endpoint: \"" + c.endpoint +
                            "\", params: " + c.params + " }\n    sink: { type: jsonl, path: s.jsonl }\n");
        auto r = w.prefsync(one, "pull s");
        ASSERT_EQ(r.exit_code, 0) << c.endpoint << "\n" << r.err << r.out;
        EXPECT_THAT(w.jsonl_ids("s.jsonl"), UnorderedElementsAreArray(c.expected)) << c.endpoint;
        all += "        - { endpoint: \"" + c.endpoint + "\", params: " + c.params + " }\n";
        union_ids.insert(c.expected.begin(), c.expected.end());
    }
    // All at once, plus one search matching 60 profiles: each profile written once; the
    // broad search reported as too broad, naming it.
    auto cfg = w.config("  all:\n    pull:\n      searches:\n" + all +
                        "        - { endpoint: Address, params: { city: Springfield, stateProvince: IL } }\n"
                        "    sink: { type: jsonl, path: all.jsonl }\n");
    auto r = w.prefsync(cfg, "pull all");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("origin=\"searches[14] Address\" reason=\"403: more than 50 profiles match; narrow "
                                 "this search\""));
    EXPECT_THAT(r.out, HasSubstr("duplicate(s) skipped"));
    EXPECT_THAT(w.jsonl_ids("all.jsonl"),
                UnorderedElementsAreArray(std::vector<std::int64_t>(union_ids.begin(), union_ids.end())));
}

TEST(Pull, EveryHistoryKindByAlternateIdAndByProfileIdIntoCsvRowsPerEntry) {
    PullWorkspace w;
    w.seed_people();
    // A second version of C1, so histories have more than one entry.
    w.emu.store.upsert({"CRMID", "C1"}, json::parse(R"({"CustomerName":{"FirstName":"Anne"},
        "CustomFields":[{"Name":"LoyaltyTier","Value":"Platinum"}]})")
                                            .as_object());
    w.dir.write("crm.csv", "customer_id\nC1\n");
    w.dir.write("pids.csv", "pid\n" + std::to_string(w.ids["C1"]) + "\n");
    for (std::string kind : {"Consents", "ContactElements", "CustomFields", "Preferences", "StandardFields"}) {
        std::string filter = kind == "Preferences" ? ", filter_id: F1" : "";
        auto cfg = w.config(
            "  h:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
            "customer_id }\n"
            "    pull: { history: " +
            kind + filter +
            " }\n    sink: { type: jsonl, path: h.jsonl }\n"
            "  hp:\n    source: { type: csv, path: pids.csv }\n    identity: { profile_id_column: pid }\n"
            "    pull: { history: " +
            kind + filter + " }\n    sink: { type: jsonl, path: hp.jsonl }\n");
        for (std::string job : {"h", "hp"}) {
            auto r = w.prefsync(cfg, "pull " + job);
            ASSERT_EQ(r.exit_code, 0) << kind << " " << job << "\n" << r.err << r.out;
            auto lines = testing::read_file(w.dir.file(job + ".jsonl"));
            ASSERT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1) << kind;
            // StandardFields history is a list of versions, each with its ProfileId (as the reference shows).
            auto v = json::parse(lines);
            auto& holder = kind == "StandardFields" ? v.at("UserProfilePreferences").at(0) : v;
            EXPECT_EQ(holder.at("ProfileId").to_number<std::int64_t>(), w.ids["C1"]) << kind;
        }
    }
    // CustomFields history flattened to one CSV row per entry.
    auto cfg = w.config(
        "  hc:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    pull: { history: CustomFields }\n"
        "    sink:\n      type: csv\n      path: hc.csv\n      each: CustomFields\n"
        "      columns: { profile_id: ProfileId, name: \"@.Name\", value: \"@.Value\" }\n");
    auto r = w.prefsync(cfg, "pull hc");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto csv = testing::read_file(w.dir.file("hc.csv"));
    EXPECT_THAT(csv, HasSubstr("profile_id,name,value\r\n"));
    EXPECT_THAT(csv, HasSubstr(std::to_string(w.ids["C1"]) + ",LoyaltyTier,Gold\r\n"));
    EXPECT_THAT(csv, HasSubstr(std::to_string(w.ids["C1"]) + ",LoyaltyTier,Platinum\r\n"));
}

TEST(Pull, Under429And503FaultsEveryProfileArrivesOnce) {
    PullWorkspace w;
    std::string crm = "customer_id\n";
    for (int i = 0; i < 400; ++i) {
        w.seed("F" + std::to_string(i), R"({"CustomerName":{"FirstName":"F","LastName":"Fault"}})");
        crm += "F" + std::to_string(i) + "\n";
    }
    w.dir.write("crm.csv", crm);
    w.emu.set_faults(R"({"rate_limit": 300, "retry_after": 1, "error_503": 0.1, "reset": 0.02, "seed": 5})");
    auto cfg = w.config(
        "  f:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: customer_id "
        "}\n"
        "    pull: {}\n    sink: { type: jsonl, path: f.jsonl }\n",
        "requests_per_second: 2000, burst: 200");
    auto r = w.prefsync(cfg, "pull f");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto ids = w.jsonl_ids("f.jsonl");
    EXPECT_EQ(ids.size(), 400u);
    EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), 400u) << "no duplicate lines";
    // A kind of fault that never fired has no count: a slow run (ASan) may stay under the
    // 300/s limit and see no 429 at all.
    auto stats = json::parse(testing::http_get(w.emu.server.port(), "/__admin/stats")).at("faults").as_object();
    auto count = [&](const char* status) { return stats.contains(status) ? stats.at(status).as_int64() : 0; };
    EXPECT_GT(count("503") + count("429"), 0);
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr(", 0 retried")));
}

// 200 profiles C0..C199 by alternate id, the identities of a pull job `j`.
std::string seed_two_hundred(PullWorkspace& w) {
    std::string crm = "customer_id\n";
    for (int i = 0; i < 200; ++i) {
        w.seed("C" + std::to_string(i), R"({"CustomerName":{"FirstName":"F","LastName":"L"}})");
        crm += "C" + std::to_string(i) + "\n";
    }
    w.dir.write("crm.csv", crm);
    return "  j:\n    source: { type: csv, path: crm.csv }\n"
           "    identity: { alternate_id_type: CRMID, column: customer_id }\n    pull: {}\n";
}

// `pull j` over `ids`, stopped while it writes to the sink section `before`, then run to its
// end under `after`.
testing::RunResult pull_after_change(PullWorkspace& w, const std::string& ids, const std::string& before,
                                     const std::string& after) {
    auto cfg = w.config(ids + before);
    w.interrupt_pull(cfg, "j", 24);
    w.config(ids + after);
    auto r = w.prefsync(cfg, "pull j");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("done 200, missing 0, failed 0"));
    return r;
}

// An unfinished pull records the settings it fetches and writes by; resumed under others it
// would write the rest into another sink (the first part is lost to it) or another layout.
TEST(PullResume, AChangedSinkStartsAfreshInsteadOfResumingIntoIt) {
    PullWorkspace w;
    auto r = pull_after_change(w, seed_two_hundred(w),
                               "    sink: { type: sqlite, path: out.db, table: t, columns: { pid: ProfileId } }\n",
                               "    sink: { type: csv, path: out.csv, columns: { pid: ProfileId, crm: "
                               "\"AlternateIds[AlternateIdType=CRMID].AlternateId\" } }\n");
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("(resumed)")));
    EXPECT_THAT(r.err, HasSubstr("Pull settings changed since the unfinished run of job j; starting afresh"));
    EXPECT_THAT(r.err, HasSubstr("the rows it upserted stay in its table"));
    EXPECT_EQ(w.sql("out.db", "SELECT count(*) > 0 FROM t"), "1\n") << "what the first run wrote stays";
    auto csv = testing::read_file(w.dir.file("out.csv"));
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 201) << "the header and every profile";
}

TEST(PullResume, ChangedColumnsOfTheSameFileStartItAfreshInOneLayout) {
    PullWorkspace w;
    auto ids = seed_two_hundred(w);
    auto after = "    sink: { type: csv, path: out.csv, columns: { pid: ProfileId, first: CustomerName.FirstName } }\n";
    auto r = pull_after_change(w, ids, "    sink: { type: csv, path: out.csv, columns: { pid: ProfileId } }\n", after);
    EXPECT_THAT(r.out, ::testing::Not(HasSubstr("(resumed)")));
    EXPECT_THAT(r.err, HasSubstr("its partial output " + w.dir.file("out.csv.partial") + " is discarded"));
    std::istringstream csv(testing::read_file(w.dir.file("out.csv")));
    std::string line;
    std::getline(csv, line);
    EXPECT_EQ(line, "pid,first\r");
    int rows = 0;
    for (; std::getline(csv, line); ++rows) EXPECT_THAT(line, ::testing::EndsWith(",F\r")) << "one layout throughout";
    EXPECT_EQ(rows, 200);

    // Unchanged settings resume, as before.
    r = pull_after_change(w, ids, after, after);
    EXPECT_THAT(r.out, HasSubstr("(resumed)"));
}

TEST(PullResume, AMovedPartialFileIsDiscardedAndAJournalWithoutSettingsResumesAsBefore) {
    PullWorkspace w;
    auto ids = seed_two_hundred(w);
    pull_after_change(w, ids, "    sink: { type: jsonl, path: a.jsonl }\n",
                      "    sink: { type: jsonl, path: b.jsonl }\n");
    EXPECT_FALSE(std::filesystem::exists(w.dir.file("a.jsonl.partial"))) << "half an export nobody will finish";
    EXPECT_FALSE(std::filesystem::exists(w.dir.file("a.jsonl")));
    EXPECT_EQ(w.jsonl_ids("b.jsonl").size(), 200u);

    // A pull journaled before settings were recorded (a version-6 journal) cannot be
    // compared: it is resumed as it always was, whatever changed.
    auto sink = "    sink: { type: jsonl, path: b.jsonl }\n";
    auto cfg = w.config(ids + sink);
    w.interrupt_pull(cfg, "j", 24);
    w.sql("state/journal.db", "UPDATE pull_state SET fingerprint = NULL, partial_path = NULL");
    auto implied = ids;
    implied.replace(implied.find("pull: {}"), 8, "pull: { implied: true }");
    w.config(implied + sink);
    auto r = w.prefsync(cfg, "pull j");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("(resumed)"));
    EXPECT_THAT(r.err, ::testing::Not(HasSubstr("Pull settings changed")));
}

// Search items are keyed by position: with a search inserted first, "search:0" of the
// unfinished run is another search, and resuming would take the new one for done.
TEST(PullResume, ASearchInsertedWhileAPullIsUnfinishedIsFetched) {
    PullWorkspace w;
    std::string searches;
    for (int i = 0; i < 40; ++i) {
        w.seed("S" + std::to_string(i), R"({"Emails":[{"EmailAddress":"s)" + std::to_string(i) +
                                            R"(@example.com","EmailAddressType":"Personal"}]})");
        searches += "        - { endpoint: Email, params: { emailAddress: s" + std::to_string(i) + "@example.com } }\n";
    }
    auto added = w.seed("NEW", R"({"Emails":[{"EmailAddress":"new@example.com","EmailAddressType":"Personal"}]})");
    auto sink = "    sink: { type: jsonl, path: s.jsonl }\n";
    auto cfg = w.config("  j:\n    pull:\n      searches:\n" + searches + sink);
    w.interrupt_pull(cfg, "j", 16);
    w.config(
        "  j:\n    pull:\n      searches:\n"
        "        - { endpoint: Email, params: { emailAddress: new@example.com } }\n" +
        searches + sink);
    auto r = w.prefsync(cfg, "pull j");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto got = w.jsonl_ids("s.jsonl");
    EXPECT_EQ(got.size(), 41u);
    EXPECT_THAT(got, ::testing::Contains(added));
}

// A table row needs its key: without one SQLite invents a rowid (an INTEGER key) or keeps a
// NULL that never conflicts (a TEXT key), so every run added the profile again.
TEST(PullTable, AProfileWithoutAKeyFailsItsItemAndTheRestIsWrittenOnce) {
    PullWorkspace w;
    w.seed("C1", R"({"CustomerName":{"FirstName":"Ann"}})");
    w.seed("C2", R"({"CustomerName":{"FirstName":"Bob"}})");
    auto loyal =
        w.emu.store.upsert({"LOYALTY", "L1"}, json::parse(R"({"CustomerName":{"FirstName":"Lou"}})").as_object());
    auto lou = loyal.body.at("ProfileId").to_number<std::int64_t>();
    w.dir.write("pids.csv", "pid\n" + std::to_string(w.ids["C1"]) + "\n" + std::to_string(lou) + "\n" +
                                std::to_string(w.ids["C2"]) + "\n");
    auto cfg = w.config(
        "  t:\n    source: { type: csv, path: pids.csv }\n    identity: { profile_id_column: pid }\n    pull: {}\n"
        "    sink: { type: sqlite, path: out.db, table: t, key: crmid,"
        " columns: { crmid: \"AlternateIds[AlternateIdType=CRMID].AlternateId\", first: CustomerName.FirstName } }\n");
    for (int run = 0; run < 2; ++run) {
        auto r = w.prefsync(cfg, "pull t");
        EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr("3 item(s): done 2, missing 0, failed 1"));
        EXPECT_THAT(r.err, HasSubstr("not written: key column \\\"crmid\\\" "
                                     "(AlternateIds[AlternateIdType=CRMID].AlternateId) has no value in this answer"));
        EXPECT_EQ(
            w.sql("out.db", "SELECT group_concat(crmid || ':' || first, ' ') FROM (SELECT * FROM t ORDER BY crmid)"),
            "C1:Ann C2:Bob\n")
            << "run " << run;
    }
    EXPECT_EQ(w.sql("out.db", "SELECT \"notnull\" FROM pragma_table_info('t') WHERE name = 'crmid'"), "1\n");

    // Statically known: a StandardFields history has no top-level ProfileId to key on.
    auto h5 = w.config(
        "  h:\n    source: { type: csv, path: pids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { history: StandardFields }\n"
        "    sink: { type: sqlite, path: h.db, table: h, columns: { pid: ProfileId, first: CustomerName.FirstName } "
        "}\n");
    auto r = w.prefsync(h5, "check-config");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.err, HasSubstr("jobs.h.sink.key: history StandardFields answers have no top-level ProfileId"));
}

}  // namespace
}  // namespace prefsync

namespace prefsync {
namespace {

std::size_t count_lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

TEST(PullRoundTrip, ThousandsOfPushedProfilesComeBackIdenticalToCsvJsonlAndSqliteAndSurviveKill9) {
    // 10,000; instrumented (ten times slower), 3,000, still some 3 MB of output to kill a pull in.
    constexpr int n = PREFSYNC_SANITIZED ? 3000 : 10000;
    const auto count = std::to_string(n);
    PullWorkspace w;
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " " + count);
    ASSERT_EQ(gen.exit_code, 0);
    w.dir.write("profiles.csv", gen.out);
    // The bundled example's push job, with pull jobs that read it back.
    auto example = testing::read_file(std::string(PREFSYNC_SOURCE_DIR) + "/examples/prefsync.yaml");
    example +=
        "  back-jsonl:\n    pull: { reconcile: crm-nightly }\n    sink: { type: jsonl, path: out/profiles.jsonl }\n"
        "  back-csv:\n    pull: { reconcile: crm-nightly }\n"
        "    sink:\n      type: csv\n      path: out/profiles.csv\n"
        "      columns: { profile_id: ProfileId, customer_id: \"AlternateIds[AlternateIdType=CRMID].AlternateId\","
        " first_name: CustomerName.FirstName, email: \"Emails[EmailAddressType=Personal].EmailAddress\" }\n"
        "  back-sqlite:\n    pull: { reconcile: crm-nightly }\n"
        "    sink: { type: sqlite, path: out/pulled.db, table: profiles,"
        " columns: { profile_id: ProfileId, last_name: CustomerName.LastName, locale: DefaultLocale } }\n";
    auto cfg = w.dir.write("prefsync.yaml", example);
    auto run = [&](const std::string& args) {
        return testing::run("PREFSYNC_TOKEN=emulator-token PREFSYNC_BASE_URL=" + w.emu.base_url() +
                            " PREFSYNC_RATE=4000 " + quote(PREFSYNC_BINARY) + " -c " + quote(cfg) + " " + args);
    };
    auto r = run("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    for (std::string job : {"back-jsonl", "back-csv", "back-sqlite"}) {
        r = run("pull " + job);
        ASSERT_EQ(r.exit_code, 0) << job << "\n" << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr("identical " + count + ", differing 0, missing 0")) << job;
    }
    auto jsonl = w.jsonl_ids("out/profiles.jsonl");
    EXPECT_EQ(jsonl.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(std::set<std::int64_t>(jsonl.begin(), jsonl.end()).size(), static_cast<std::size_t>(n));
    auto csv = testing::read_file(w.dir.file("out/profiles.csv"));
    EXPECT_EQ(count_lines(csv), static_cast<std::size_t>(n) + 1) << "header + one row per profile";
    EXPECT_THAT(csv, HasSubstr(",C00000001,"));
    auto db = testing::run("sqlite3 " + quote(w.dir.file("out/pulled.db")) +
                           " 'SELECT count(*), count(DISTINCT profile_id) FROM profiles'");
    EXPECT_EQ(db.out, count + "|" + count + "\n");

    // A changed profile shows up as differing, with the field named.
    w.emu.store.upsert({"CRMID", "C00000007"}, json::parse(R"({"CustomerName":{"FirstName":"Changed"}})").as_object());
    r = run("pull back-jsonl");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out, HasSubstr("identical " + std::to_string(n - 1) + ", differing 1"));
    EXPECT_THAT(testing::read_file(w.dir.file("state/reports/back-jsonl.reconcile.jsonl")),
                HasSubstr("\"fields\":\"CustomerName.FirstName\""));

    // kill -9 in the middle of a pull; the next pull completes the same output, no line twice.
    w.emu.set_faults(R"({"latency_ms": 2})");
    setenv("PREFSYNC_TOKEN", "emulator-token", 1);
    setenv("PREFSYNC_BASE_URL", w.emu.base_url().c_str(), 1);
    setenv("PREFSYNC_RATE", "4000", 1);
    auto partial = w.dir.file("out/profiles.jsonl.partial");
    {
        testing::ChildProcess pull({PREFSYNC_BINARY, "-c", cfg, "pull", "back-jsonl"});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (pull.running() && std::chrono::steady_clock::now() < deadline &&
               (!std::filesystem::exists(partial) || std::filesystem::file_size(partial) < 500000))
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
        ASSERT_TRUE(pull.running()) << "the pull ended before it could be killed";
        pull.signal(SIGKILL);
        EXPECT_EQ(pull.wait(), 128 + SIGKILL);
    }
    w.emu.set_faults(R"({"latency_ms": 0})");
    r = run("pull back-jsonl");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;  // the one differing profile
    EXPECT_THAT(r.out, HasSubstr("(resumed)"));
    EXPECT_THAT(r.out, HasSubstr("identical " + std::to_string(n - 1) + ", differing 1, missing 0"));
    EXPECT_FALSE(std::filesystem::exists(partial));
    jsonl = w.jsonl_ids("out/profiles.jsonl");
    EXPECT_EQ(jsonl.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(std::set<std::int64_t>(jsonl.begin(), jsonl.end()).size(), static_cast<std::size_t>(n))
        << "no duplicate lines";
}

// The reconcile report holds personal data: 0600 even under umask 022, replaced whole (no
// temporary left behind), and a symbolic link at its path is refused, its target untouched.
TEST(PullReconcile, ReportIsPrivateReplacedWholeAndASymlinkAtItsPathIsRefused) {
    PullWorkspace w;
    w.seed("C1", R"({"CustomerName":{"FirstName":"Ann"}})");
    w.seed("C2", R"({"CustomerName":{"FirstName":"Bob"}})");
    w.dir.write("crm.csv", "customer_id,first\nC1,Ann\nC2,Bobby\n");
    auto cfg = w.config(
        "  crm:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    mapping: { CustomerName.FirstName: first }\n"
        "  back:\n    pull: { reconcile: crm }\n    sink: { type: jsonl, path: back.jsonl }\n");
    auto report = w.dir.file("state/reports/back.reconcile.jsonl");
    auto pull = [&] {
        return testing::run("umask 022; PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " + quote(cfg) +
                            " pull back");
    };
    auto r = pull();
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("identical 1, differing 1, missing 0"));
    EXPECT_THAT(testing::read_file(report), HasSubstr("\"fields\":\"CustomerName.FirstName\""));
    EXPECT_EQ(std::filesystem::status(report).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    EXPECT_FALSE(std::filesystem::exists(report + ".tmp"));

    std::filesystem::remove(report);
    auto target = w.dir.write("elsewhere.txt", "untouched\n");
    std::filesystem::create_symlink(target, report);
    r = pull();
    EXPECT_EQ(r.exit_code, 3) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("cannot write the reconcile report " + report + ": it is a symbolic link"));
    EXPECT_EQ(testing::read_file(target), "untouched\n");
    EXPECT_TRUE(std::filesystem::is_symlink(report));
}

// A push sends the last of several rows with one id; the round trip compares with that one,
// whether the rows are in one batch of the source or a thousand rows apart (the earlier row's
// item is then fetched already: it is fetched again). The run counts distinct ids as items
// and reports the repeated ones.
TEST(PullReconcile, TheLastOfDuplicateRowsIsComparedAsThePushSendsItAndCountedOnce) {
    PullWorkspace w;
    std::string csv = "customer_id,last\nR1,Old\nR1,New\nR2,Old\n";
    for (int i = 0; i < 1500; ++i) csv += "X" + std::to_string(i) + ",Filler\n";
    csv += "R2,New\n";
    w.dir.write("crm.csv", csv);
    auto cfg = w.config(
        "  rpush:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    mapping: { CustomerName.LastName: last }\n"
        "  rpull:\n    pull: { reconcile: rpush }\n    sink: { type: jsonl, path: back.jsonl }\n");
    auto r = w.prefsync(cfg, "sync rpush");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto r2 = w.emu.store.get(*w.emu.store.find({"CRMID", "R2"}), false).body;
    ASSERT_EQ(r2.as_object().at("CustomerName").as_object().at("LastName"), "New") << "the push sent the last row";

    r = w.prefsync(cfg, "pull rpull");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("pull rpull: 1502 item(s): done 1502, missing 0, failed 0"));
    EXPECT_THAT(r.out, HasSubstr("2 duplicate id(s) (last occurrence wins)"));
    EXPECT_THAT(r.out, HasSubstr("identical 1502, differing 0, missing 0, failed 0"));
    auto ids = w.jsonl_ids("back.jsonl");
    EXPECT_EQ(std::set<std::int64_t>(ids.begin(), ids.end()).size(), ids.size()) << "each profile written once";
    EXPECT_EQ(ids.size(), 1502u);

    // The profile changed behind the push's back: the last row is what it is compared with.
    w.emu.store.upsert({"CRMID", "R2"}, json::parse(R"({"CustomerName":{"LastName":"Old"}})").as_object());
    r = w.prefsync(cfg, "pull rpull");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("identical 1501, differing 1, missing 0"));
    EXPECT_THAT(testing::read_file(w.dir.file("state/reports/rpull.reconcile.jsonl")),
                HasSubstr("crm.csv:1505\",\"fields\":\"CustomerName.LastName\""))
        << "named by the last row";
}

// A profile a search wrote first is still compared with the push job's body for its row,
// and written once.
TEST(PullReconcile, AProfileASearchAlreadyWroteIsStillCompared) {
    PullWorkspace w;
    w.seed("C1", R"({"CustomerName":{"FirstName":"Ann"},"Emails":[{"EmailAddress":"ann@example.com"}]})");
    w.seed("C2", R"({"CustomerName":{"FirstName":"Bob"},"Emails":[{"EmailAddress":"bob@example.com"}]})");
    w.dir.write("crm.csv", "customer_id,first\nC1,Ann\nC2,Bobby\n");
    // One request at a time: the search (the first item) is answered before Bob's read.
    auto cfg = w.config(
        "  crm:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    mapping: { CustomerName.FirstName: first }\n"
        "  back:\n    pull:\n      reconcile: crm\n"
        "      searches: [ { endpoint: Email, params: { emailAddress: bob@example.com } } ]\n"
        "    sink: { type: jsonl, path: back.jsonl }\n",
        kRate + ", max_in_flight: 1");
    auto r = w.prefsync(cfg, "pull back");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("identical 1, differing 1, missing 0"));
    EXPECT_THAT(r.out, HasSubstr("3 item(s): done 3"));
    EXPECT_THAT(w.jsonl_ids("back.jsonl"), UnorderedElementsAreArray({w.ids["C2"], w.ids["C1"]}));
    EXPECT_THAT(testing::read_file(w.dir.file("state/reports/back.reconcile.jsonl")),
                HasSubstr("crm.csv:3\",\"fields\":\"CustomerName.FirstName\""));
}

// `implied=true` goes only to the searches whose reference lists it: not the custom field
// (S2, S3) and attribute (S8) searches.
TEST(Pull, ImpliedIsSentOnlyToTheSearchesThatTakeIt) {
    PullWorkspace w(true);
    w.seed_people();
    auto cfg = w.config(
        "  s:\n    pull:\n      implied: true\n      searches:\n"
        "        - { endpoint: CustomFields, params: { \"customFields[0].Name\": LoyaltyTier, "
        "\"customFields[0].Value\": Silver } }\n"
        "        - { endpoint: CustomFields/SelectList, params: { \"customFields[0].OperatorId\": \"3\", "
        "\"customFields[0].Name\": Colors, \"customFields[0].Value\": \"blue:green\" } }\n"
        "        - { endpoint: Attributes, params: { \"attributes[0].Key\": Color, \"attributes[0].Value\": Blue } }\n"
        "        - { endpoint: Email, params: { emailAddress: ann@example.com } }\n"
        "        - { endpoint: Tags, params: { \"tag[0]\": vip } }\n"
        "    sink: { type: jsonl, path: s.jsonl }\n",
        kRate + ", max_in_flight: 1");
    auto r = w.prefsync(cfg, "pull s");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto targets = w.request_targets();
    ASSERT_EQ(targets.size(), 5u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_THAT(targets[i], Not(HasSubstr("implied"))) << targets[i];
    for (std::size_t i = 3; i < 5; ++i) EXPECT_THAT(targets[i], HasSubstr("implied=true")) << targets[i];
}

// A 200 that is not a profile fails the item: logged once with where the id came from and
// why, listed by `failures` (and --csv), and in the reconcile report.
TEST(PullReconcile, FailedItemsAreLoggedListedByFailuresAndReported) {
    PullWorkspace w;
    testing::FixedAnswerServer html({"text/html", "<html><body>Down for maintenance</body></html>", true});
    w.dir.write("crm.csv", "customer_id,first\nC1,Ann\nC2,Bob\n");
    auto cfg = w.config(
        "  crm:\n    source: { type: csv, path: crm.csv }\n    identity: { alternate_id_type: CRMID, column: "
        "customer_id }\n"
        "    mapping: { CustomerName.FirstName: first }\n"
        "  back:\n    pull: { reconcile: crm }\n    sink: { type: jsonl, path: back.jsonl }\n",
        kRate, html.base_url());
    auto r = w.prefsync(cfg, "pull back");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("2 item(s): done 0, missing 0, failed 2"));
    EXPECT_THAT(r.out, HasSubstr("identical 0, differing 0, missing 0, failed 2"));
    for (std::string row : {"crm.csv:2", "crm.csv:3"}) {
        auto line = r.err.find(row);
        ASSERT_NE(line, std::string::npos) << r.err;
        EXPECT_EQ(r.err.find(row, line + 1), std::string::npos) << "logged once\n" << r.err;
    }
    EXPECT_THAT(r.err, HasSubstr("warning: Fetch failed. identity=CRMID:C1 origin="));
    EXPECT_THAT(r.err, HasSubstr("reason=\"unreadable answer: not JSON"));
    EXPECT_THAT(r.err, Not(HasSubstr("maintenance"))) << "the answer's body is not logged";
    EXPECT_THAT(testing::read_file(w.dir.file("state/reports/back.reconcile.jsonl")),
                HasSubstr("{\"state\":\"failed\",\"origin\":"));

    auto f = w.prefsync(cfg, "failures back");
    EXPECT_EQ(f.exit_code, 0) << f.err;
    EXPECT_THAT(f.out, HasSubstr("CRMID:C1\t"));
    EXPECT_THAT(f.out, HasSubstr("crm.csv:3\t200\tfailed\tunreadable answer: not JSON"));
    f = w.prefsync(cfg, "failures back --csv " + quote(w.dir.file("failures.csv")));
    EXPECT_EQ(f.exit_code, 0) << f.err;
    auto text = testing::read_file(w.dir.file("failures.csv"));
    EXPECT_THAT(text, ::testing::StartsWith("identity,source_row,status,outcome,error\r\nCRMID:C1,"));
    EXPECT_EQ(count_lines(text), 3u);
}

}  // namespace
}  // namespace prefsync
