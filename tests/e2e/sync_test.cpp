// End to end: the real prefsync binary pushing to an emulator on 127.0.0.1, checked
// against the emulator's state and counters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon/emulator/server.hpp"
#include "tests/support/in_process_emulator.hpp"
#include "tests/support/push_workspace.hpp"
#include "daemon/journal/journal.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;
using testing::quote;

emulator::ApiOptions oauth_options() {
    emulator::ApiOptions o;
    o.oauth = true;
    o.token_ttl = std::chrono::seconds(600);
    return o;
}

using testing::http_get;
using Workspace = testing::PushWorkspace;

// The stored profile without what the server adds.
json::object client_fields(json::object p) {
    for (auto key : {"ProfileId", "UpdateStatus", "Edited", "AlternateIds"}) p.erase(key);
    return p;
}

// Each stored profile is, once, exactly the body `dry-run` maps its row to; `rows` rows.
// A macro, so a failure names the test's line and stops the test.
#define EXPECT_STORED_AS_MAPPED(w, rows)                                             \
    do {                                                                             \
        auto dry = (w).prefsync("dry-run crm");                                      \
        ASSERT_EQ(dry.exit_code, 0);                                                 \
        auto stored = (w).profiles_by_alt_id();                                      \
        std::istringstream lines(dry.out);                                           \
        int compared = 0;                                                            \
        for (std::string line; std::getline(lines, line);) {                         \
            auto v = json::parse(line).as_object();                                  \
            if (v.contains("summary")) continue;                                     \
            auto id = std::string(v.at("identity").at("alternate_id").as_string());  \
            ASSERT_EQ(stored[id].size(), 1u) << id;                                  \
            ASSERT_EQ(client_fields(stored[id][0]), v.at("body").as_object()) << id; \
            ++compared;                                                              \
        }                                                                            \
        EXPECT_EQ(compared, rows);                                                   \
    } while (false)

TEST(Sync, DeliversExactlyTheMappedBodiesOnceAndThenOnlyWhatChanged) {
    Workspace w(10000);
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("queued 10000"));
    EXPECT_EQ(w.emu.store.size(), 10000u);

    // Every stored profile equals the body dry-run shows for its row.
    EXPECT_STORED_AS_MAPPED(w, 10000);

    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 10000"));
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing changed, nothing sent";

    // Change 500 rows: exactly those are sent.
    std::ifstream in(w.csv, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    in.close();
    std::string changed;
    std::istringstream rows(text);
    int line_no = 0, edits = 0;
    for (std::string row; std::getline(rows, row); ++line_no) {
        if (line_no > 0 && line_no % 20 == 0) {
            auto comma = row.find(',');
            row.insert(comma + 1, "X");  // first_name gains a prefix
            ++edits;
        }
        changed += row + "\n";
    }
    ASSERT_EQ(edits, 500);
    w.dir.write("profiles.csv", changed);
    before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("queued 500, unchanged 9500"));
    EXPECT_EQ(w.emu.requests_counter() - before, 500);
    EXPECT_EQ(w.emu.store.size(), 10000u);

    auto status = w.prefsync("status crm --json");
    ASSERT_EQ(status.exit_code, 0);
    auto s = json::parse(status.out).at("crm");
    EXPECT_EQ(s.at("accepted").as_int64(), 10000) << "identities whose last write was answered 202";
    EXPECT_EQ(s.at("runs").as_array().size(), 3u);
}

void deliver_under_faults(const std::string& mode) {
    Workspace w(2000, mode);
    w.emu.set_faults(R"({"error_503": 0.05, "reset": 0.02, "ambiguous": 0.02, "seed": 11})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto stored = w.profiles_by_alt_id();
    EXPECT_EQ(stored.size(), 2000u) << "every row delivered";
    EXPECT_EQ(w.emu.store.size(), 2000u) << "no duplicate profile";
    for (auto& [id, profiles] : stored) ASSERT_EQ(profiles.size(), 1u) << id;
    auto stats = json::parse(http_get(w.emu.server.port(), "/__admin/stats")).at("faults");
    EXPECT_GT(stats.at("503").as_int64(), 0);
    EXPECT_GT(stats.at("reset").as_int64(), 0);
    EXPECT_GT(stats.at("ambiguous").as_int64(), 0);
    auto status = w.prefsync("status crm --json");
    auto runs = json::parse(status.out).at("crm").at("runs").as_array();
    EXPECT_GT(runs[0].at("retries").as_int64(), 0) << "retries are visible in status";
}

TEST(Sync, AlternateIdsWithPlusSpacesAndAmpersandsReachTheServerAsTheyAre) {
    // The server reads a query string as a form ('+' is a space): an e-mail address with a
    // '+' used as the alternate id once named another identity.
    Workspace w(1);
    w.dir.write("profiles.csv",
                "customer_id,first_name,last_name,email,tags,loyalty_tier\n"
                "ann+news@example.com,Ann,Lee,ann+news@example.com,,Gold\n"
                "bob jones,Bob,Jones,bob@example.com,,Gold\n"
                "c&d=e+f,Cid,Doe,cid@example.com,,Gold\n");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto stored = w.profiles_by_alt_id();
    EXPECT_EQ(stored.size(), 3u);
    for (auto id : {"ann+news@example.com", "bob jones", "c&d=e+f"}) EXPECT_EQ(stored[id].size(), 1u) << id;
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 3"));
    EXPECT_EQ(w.emu.requests_counter(), before);
}

TEST(Sync, AFinishedRunLeavesNoBodyItSentInTheJournalFile) {
    // The journal holds each row's body while it is in flight and deletes it with its answer.
    // Freed pages are not zeroed as they are freed (secure_delete=FAST: that doubled a push's
    // disk writes), but deleted cells are, and the run's end returns every free page to the
    // file system and empties the write-ahead log: no sent body stays in either file.
    Workspace w(1);
    std::string csv = "customer_id,first_name,last_name,email,tags,loyalty_tier\n";
    for (int i = 1; i <= 2500; ++i) {
        auto n = std::to_string(i);
        csv += "C" + n + ",Qzxsecret" + n + ",Lee,q" + n + "@example.com,,Gold\n";
    }
    w.dir.write("profiles.csv", csv);
    ASSERT_EQ(w.prefsync("status").exit_code, 0);  // creates the journal
    // Open (idle) across the run, as a daemon's metrics endpoint may be: the run is then not
    // the last connection, and its log stays to be read rather than being deleted on close.
    journal::Journal idle(w.dir.file("state/journal.db"));
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    ASSERT_EQ(w.emu.store.size(), 2500u);
    ASSERT_TRUE(std::filesystem::exists(w.dir.file("state/journal.db-wal")));
    EXPECT_EQ(std::filesystem::file_size(w.dir.file("state/journal.db-wal")), 0u);
    for (auto name : {"journal.db", "journal.db-wal"}) {
        std::ifstream in(w.dir.file(std::string("state/") + name), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        EXPECT_EQ(bytes.find("Qzxsecret"), std::string::npos) << name << " still holds a body sent";
    }
}

TEST(Sync, AReplaceByAlternateIdKeepsThatIdSoTheNextReplaceAndUpsertFindTheProfile) {
    // A PUT blanks every collection it is not sent (API reference, "Update profile (PUT)"):
    // sent without its AlternateIds, the profile lost the id the job finds it by, the next
    // replace answered 404 and the next upsert created a second profile.
    Workspace w(1);
    w.dir.write("profiles.csv",
                "customer_id,first_name,last_name,email,tags,loyalty_tier\nR1,Rae,Lee,r@example.com,,Gold\n");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    // The second time with a mapping that sends an alternate id of another type: the job's
    // own is added to it.
    const std::string loyalty =
        "      AlternateIds:\n        - { AlternateIdType: { const: LOYALTY }, AlternateId: loyalty_tier }\n";
    for (auto name : {"Raelyn", "Rachel"}) {
        w.write_config("replace", std::string(name) == "Rachel" ? loyalty : "");
        w.dir.write("profiles.csv", std::string("customer_id,first_name,last_name,email,tags,loyalty_tier\nR1,") +
                                        name + ",Lee,r@example.com,,Gold\n");
        auto r = w.prefsync("sync crm");
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr("failed 0")) << name;
        auto stored = w.profiles_by_alt_id();
        ASSERT_EQ(stored["R1"].size(), 1u) << name;
        EXPECT_EQ(stored["R1"][0].at("CustomerName").at("FirstName"), name);
        if (std::string(name) == "Rachel") {
            EXPECT_EQ(stored["Gold"].size(), 1u) << "the mapping's LOYALTY id too";
        }
    }
    w.write_config("upsert");
    w.dir.write("profiles.csv",
                "customer_id,first_name,last_name,email,tags,loyalty_tier\nR1,Rae,Lee,r@example.com,,Gold\n");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    EXPECT_EQ(w.emu.store.dump().size(), 1u) << "one profile: the upsert found it by its id";
}

TEST(Sync, AJobThatTakesUpIdentityNormalizeRemovesNoProfileAsMissing) {
    // With normalize added, "MiXeD1" is read as "mixed1": a new identity. The one known as
    // "MiXeD1" is the same person under the id the job now makes of it, not one who left
    // the source: on_missing must not delete its profile.
    Workspace w(1, "upsert", "    on_missing: delete\n");
    w.dir.write(
        "profiles.csv",
        "customer_id,first_name,last_name,email,tags,loyalty_tier\n"
        "MiXeD1,Ann,Lee,a@example.com,,Gold\nlower2,Bo,Ng,b@example.com,,Gold\nUPPER3,Cy,Li,c@example.com,,Gold\n");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto text = testing::read_file(w.config);
    text.replace(text.find("column: customer_id }"), 21, "column: customer_id, normalize: lowercase }");
    w.dir.write("prefsync.yaml", text);
    auto plan = w.prefsync("plan crm");
    ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
    EXPECT_THAT(plan.out, Not(HasSubstr("delete"))) << plan.out;
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto stored = w.profiles_by_alt_id();
    for (auto id : {"MiXeD1", "UPPER3", "lower2"}) EXPECT_EQ(stored[id].size(), 1u) << id << " kept";
    EXPECT_EQ(stored["mixed1"].size(), 1u) << "sent under the id the job now makes";
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("unchanged 3"));
    EXPECT_EQ(w.profiles_by_alt_id()["MiXeD1"].size(), 1u) << "on every later run too";
}

TEST(Explain, NamesAnIdentityAsTheMapperReadsItFromTheSource) {
    Workspace w(5);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto r = w.prefsync("explain crm ' C00000002 ' --json");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto out = json::parse(r.out).as_object();
    EXPECT_EQ(out.at("identity"), "CRMID:C00000002") << "trimmed, as a row's id is";
    EXPECT_EQ(out.at("source_rows").as_array().size(), 1u);
}

TEST(Sync, UnderFaultsEveryRowIsDeliveredOnceInUpsertMode) {
    deliver_under_faults("upsert");
}
TEST(Sync, UnderFaultsEveryRowIsDeliveredOnceInCreateMode) {
    deliver_under_faults("create");
}

TEST(Sync, RejectedUpdatesEndInFailuresWithTheServerMessageAndRetryResendsThem) {
    Workspace w(300);
    // Every 10th row gets an invalid email, which the API answers with 400.
    std::ifstream in(w.csv, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), {}), out;
    in.close();
    std::istringstream rows(text);
    int n = 0;
    for (std::string row; std::getline(rows, row); ++n) {
        if (n > 0 && n % 10 == 0) {
            auto at = row.find('@');
            if (at != std::string::npos) row[at] = '#';
        }
        out += row + "\n";
    }
    w.dir.write("profiles.csv", out);
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    auto f = w.prefsync("failures crm --csv " + quote(w.dir.file("failures.csv")));
    ASSERT_EQ(f.exit_code, 0) << f.err;
    auto failures = testing::read_file(w.dir.file("failures.csv"));
    EXPECT_THAT(failures, HasSubstr("identity,source_row,status,attempts,error"));
    EXPECT_THAT(failures, HasSubstr("not an email address"));
    EXPECT_THAT(failures, HasSubstr("profiles.csv:11,400,1,"));
    auto listed = w.prefsync("failures crm");
    auto count = std::count(listed.out.begin(), listed.out.end(), '\n');
    EXPECT_GE(count, 25);
    EXPECT_LE(count, 30) << "rows without an email have nothing to break";

    auto before = w.emu.requests_counter();
    r = w.prefsync("retry crm --status 400");
    EXPECT_EQ(r.exit_code, 2) << "still invalid";
    EXPECT_THAT(r.err, HasSubstr("Re-queued failed updates. job=crm updates=" + std::to_string(count)));
    EXPECT_EQ(w.emu.requests_counter() - before, count) << "each re-sent once";
}

// The source's CSV with the email (fourth column) of some customers broken ('@' → '#'), the
// first name of others changed, and `extra` rows appended.
std::string edited_csv(const std::string& original, const std::vector<std::string>& bad_email,
                       const std::vector<std::string>& renamed = {}, const std::string& extra = "") {
    std::istringstream in(original);
    std::string out;
    for (std::string row; std::getline(in, row);) {
        for (const auto& id : bad_email)
            if (row.starts_with(id + ",")) row[row.find('@')] = '#';
        for (const auto& id : renamed)
            if (row.starts_with(id + ",")) row.insert(id.size() + 1, "Z");
        out += row + "\n";
    }
    return out + extra;
}

std::string row_of(const std::string& csv, const std::string& id) {
    std::istringstream in(csv);
    for (std::string row; std::getline(in, row);)
        if (row.starts_with(id + ",")) return row + "\n";
    return "";
}

// A row's write that may have landed (sent, every answer lost, given up), and then the row
// leaves the source: its profile is removed per on_missing like a synced one, and the failure
// ends, so `retry` does not bring the row back. Before, neither was known to on_missing: the
// profile stayed, and `retry` sent the removed row. A failure the API refused (nothing
// landed) of a row that left is dropped, without a request. A row that comes back is
// reactivated (or made again), once.
class LeftWhileUnsettled : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};
INSTANTIATE_TEST_SUITE_P(Sync, LeftWhileUnsettled,
                         ::testing::Values(std::pair{"upsert", "delete"}, std::pair{"upsert", "deactivate"},
                                           std::pair{"create", "delete"}, std::pair{"create", "deactivate"}),
                         [](const auto& info) { return info.param.first + "_" + info.param.second; });

TEST_P(LeftWhileUnsettled, ARowThatLeftTheSourceWhileItsWriteWasUnsettledIsRemovedAndNotRetried) {
    const auto& [mode, on_missing] = GetParam();
    Workspace w(6, mode, "    on_missing: " + on_missing + "\n    max_missing: 50%\n");
    w.edit_config("max_attempts: 30", "max_attempts: 2");
    const std::string original = testing::read_file(w.csv);
    auto without = [&](std::initializer_list<std::string> ids) {
        std::istringstream in(original);
        std::string out;
        for (std::string row; std::getline(in, row);) {
            bool drop = false;
            for (const auto& id : ids) drop = drop || row.starts_with(id + ",");
            if (!drop) out += row + "\n";
        }
        return out;
    };
    // C00000005 refused (400, nothing landed); C00000006 not in the source yet.
    w.dir.write("profiles.csv", edited_csv(without({"C00000006"}), {"C00000005"}));
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 2);
    // C00000006 arrives; its write lands every time, and every answer is lost.
    w.dir.write("profiles.csv", edited_csv(original, {"C00000005"}));
    w.emu.set_faults(R"({"ambiguous": 1.0, "accept_duplicates": true})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    ASSERT_EQ(w.profiles_by_alt_id()["C00000006"].size(), 1u) << "the write landed";
    w.emu.set_faults(R"({"ambiguous": 0})");
    ASSERT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 2);

    // Both leave the source.
    w.dir.write("profiles.csv", without({"C00000005", "C00000006"}));
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, Not(HasSubstr("CRMID:C00000005"))) << "never made: nothing to remove";
    EXPECT_THAT(plan.out, HasSubstr("CRMID:C00000006")) << plan.out;
    EXPECT_THAT(plan.out, HasSubstr("dropped: the writes of 1 row(s) no longer in the source (or marked deleted)"))
        << "C00000005's";
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("1 profile(s) no longer in the source"));
    EXPECT_LE(w.emu.requests_counter() - before, 2) << "C00000006's removal (and its lookup), nothing for C00000005";
    auto stored = w.profiles_by_alt_id();
    if (on_missing == "delete") {
        EXPECT_EQ(stored.count("C00000006"), 0u) << "deleted";
    } else {
        ASSERT_EQ(stored["C00000006"].size(), 1u);
        EXPECT_EQ(stored["C00000006"][0].at("IsActive"), json::value(false)) << "deactivated";
    }
    EXPECT_EQ(stored.count("C00000005"), 0u) << "never made, and not made now";
    EXPECT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 0);

    before = w.emu.requests_counter();
    r = w.prefsync("retry crm");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("unchanged 4"));
    EXPECT_EQ(w.emu.requests_counter() - before, 0) << "nothing sent again for the rows that left";
    EXPECT_EQ(w.profiles_by_alt_id().count("C00000005"), 0u);

    // C00000006 comes back: one active profile, on this run and after.
    w.dir.write("profiles.csv", without({"C00000005"}));
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    stored = w.profiles_by_alt_id();
    ASSERT_EQ(stored["C00000006"].size(), 1u) << "one profile, not two";
    auto* active = stored["C00000006"][0].if_contains("IsActive");
    EXPECT_TRUE(!active || *active == json::value(true)) << "active again";
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("unchanged 5"));
}

// A job pointed at another API (the sandbox, then production): the journal's profile ids
// and change detection are the first one's. Used there they skipped every row sent before
// (an outside-in test: 0 sent, exit 0) and could update or remove other profiles under those
// ids. Every command that would use them refuses, naming both APIs, until `backfill
// --new-target` forgets the old state and sends every row.
TEST(Sync, AJobPointedAtAnotherApiSendsNothingUntilABackfillTakesUpTheNewOne) {
    Workspace w(10);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    testing::InProcessEmulator production;
    const std::string old_url = "http://127.0.0.1:" + std::to_string(w.emu.server.port()) + "/Profiles/v2";
    const std::string new_url = "http://127.0.0.1:" + std::to_string(production.server.port()) + "/Profiles/v2";
    w.edit_config(old_url, new_url);

    auto before = w.emu.requests_counter();
    for (auto command : {"sync crm", "backfill crm", "backfill crm --resume", "retry crm", "verify crm", "plan crm"}) {
        auto r = w.prefsync(command);
        EXPECT_EQ(r.exit_code, 3) << command << ": " << r.out << r.err;
        EXPECT_THAT(r.err, HasSubstr(old_url + " (client_id 12345)")) << command;
        EXPECT_THAT(r.err, HasSubstr(new_url + " (client_id 12345)")) << command;
        EXPECT_THAT(r.err, HasSubstr("prefsync backfill crm --new-target")) << command;
    }
    EXPECT_EQ(w.emu.requests_counter() - before, 0);
    EXPECT_EQ(production.requests_counter(), 0) << "nothing sent";

    auto r = w.prefsync("backfill crm --new-target");
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(production.requests_counter(), 10) << "every row, to the new API";
    EXPECT_EQ(production.store.size(), 10u);
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 10"));
    r = w.prefsync("backfill crm --new-target");
    EXPECT_EQ(r.exit_code, 3) << "nothing to forget: " << r.out;
    EXPECT_THAT(r.err, HasSubstr("nothing to forget"));
    EXPECT_EQ(production.requests_counter(), 10);
    EXPECT_EQ(w.emu.requests_counter() - before, 0) << "the old API untouched";
}

// A run stopped by throttling leaves writes to send; their rows then leave the source. The
// next sync sent them first (making the profiles of people no longer in the source, then
// deactivating them: an outside-in test found 100 such profiles). They wait for the end of
// the read now, where the rows that left have their writes dropped, even when max_missing
// refuses the removals.
TEST(Sync, WritesAnEarlierRunLeftAreNotSentForRowsThatLeftTheSource) {
    Workspace w(25, "upsert", "    on_missing: deactivate\n");
    w.edit_config("max_delay: 200ms }", "max_delay: 200ms, max_throttled: 1s }");
    const std::string all = testing::read_file(w.csv);
    std::string first_five, first_three;
    {
        std::istringstream in(all);
        std::string line;
        for (int i = 0; i < 6 && std::getline(in, line); ++i) {
            first_five += line + "\n";
            if (i < 4) first_three += line + "\n";
        }
    }
    w.dir.write("profiles.csv", first_five);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    w.dir.write("profiles.csv", all);
    w.emu.set_faults(R"({"error_429": 1.0})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 4) << r.err << r.out;
    w.emu.set_faults(R"({"error_429": 0})");
    ASSERT_EQ(w.emu.store.size(), 5u);

    // Two of the five synced rows gone too: over max_missing (5%), nothing is deactivated.
    w.dir.write("profiles.csv", first_three);
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("max_missing"));
    EXPECT_EQ(w.emu.requests_counter() - before, 0) << "nothing for the 20 rows that left";
    EXPECT_EQ(w.emu.store.size(), 5u);
    auto status = json::parse(w.prefsync("status crm --json").out).at("crm");
    EXPECT_EQ(status.at("queued").as_int64() + status.at("retry").as_int64(), 0) << "dropped";

    // Rows still in the source take over what waited for them: sent once, at the end.
    w.dir.write("profiles.csv", all);
    w.emu.set_faults(R"({"error_429": 1.0})");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 4);
    w.emu.set_faults(R"({"error_429": 0})");
    before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.requests_counter() - before, 20);
    EXPECT_EQ(w.emu.store.size(), 25u);
}

// Writes a killed run left in flight (all 30 sent or claimed, none answered), then rows leave
// the source: the next sync holds those writes for its read like any other an earlier run
// left, so only the rows still there are sent again (a reviewer saw the others upserted
// first, then deactivated). While a rejected row's identity is unknown, or twenty gone is over
// max_missing, the writes of the rows not seen stay held, not sent, by `retry` either; ten
// come back and are sent, the other ten may have landed and are deactivated.
TEST(Sync, WritesAKilledRunLeftInFlightAreNotSentAgainForRowsThatLeftTheSource) {
    Workspace w(30, "upsert", "    on_missing: deactivate\n    max_missing: 50%\n");
    const std::string all = testing::read_file(w.csv);
    w.emu.set_faults(R"({"slow_ms": 30000})");
    auto p = w.start_until({"sync", "crm"}, 1);
    ASSERT_TRUE(p->running());
    ASSERT_GE(w.emu.requests_counter(), 1);
    p->signal(SIGKILL);
    ASSERT_EQ(p->wait(), 128 + SIGKILL);
    w.emu.set_faults(R"({"slow_ms": 0})");

    auto first = [&](int rows) {
        std::istringstream in(all);
        std::string out, line;
        for (int i = 0; i <= rows && std::getline(in, line); ++i) out += line + "\n";
        return out;
    };
    auto requests = [&](const char* endpoint) { return w.endpoint_requests(endpoint); };
    auto upserts = requests("W4 upsert"), deactivations = requests("W5 patch-by-alternate-id");
    // `plan` counts the writes still in the killed run's batches as profiles that may exist,
    // as the sync will (it said "nothing to send", and the sync then refused or removed).
    w.dir.write("profiles.csv", first(10));
    // Counted by deactivations: the killed run's upserts may still be reaching the emulator.
    auto before_plan = requests("W5 patch-by-alternate-id");
    auto plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 2) << plan.err << plan.out;
    EXPECT_THAT(plan.out + plan.err, HasSubstr("20 of 30 known profiles")) << plan.out;
    plan = w.prefsync("plan crm --allow-mass-delete");
    EXPECT_THAT(plan.out, HasSubstr("20 deactivate")) << plan.out;
    EXPECT_EQ(requests("W5 patch-by-alternate-id"), before_plan) << "plan sends nothing";
    // A row without its id: which rows left cannot be told.
    auto last = first(30).substr(first(29).size());
    w.dir.write("profiles.csv", first(10) + last.substr(last.find(',')));
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_EQ(requests("W4 upsert") - upserts, 10) << "none for the rows not seen";
    upserts = requests("W4 upsert");
    EXPECT_EQ(w.prefsync("retry crm").exit_code, 0);
    EXPECT_EQ(requests("W4 upsert") - upserts, 0) << "retry sends none of them either";

    w.dir.write("profiles.csv", first(10));
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("20 of 30 known profiles"));
    EXPECT_THAT(r.err, HasSubstr("Writes of rows not in the source held until a complete read settles them"));
    EXPECT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("held").as_int64(), 20);
    EXPECT_EQ(w.prefsync("retry crm").exit_code, 0);
    EXPECT_EQ(requests("W4 upsert") - upserts, 0) << "none for the twenty rows that left";
    EXPECT_EQ(requests("W5 patch-by-alternate-id") - deactivations, 0);

    w.dir.write("profiles.csv", first(20));
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(requests("W4 upsert") - upserts, 10) << "the ten rows back";
    EXPECT_EQ(requests("W5 patch-by-alternate-id") - deactivations, 10);
    for (auto& [id, profiles] : w.profiles_by_alt_id()) {
        ASSERT_EQ(profiles.size(), 1u) << id;
        auto* active = profiles[0].if_contains("IsActive");
        EXPECT_EQ(!active || active->as_bool(), id <= "C00000020") << id;
    }
}

// A job switched from upsert to mirror: its unchanged rows teach it what the API accepted
// (same hash, same body), so a later clear in the source is patched away. Before, mirror had
// no diff base for them: the change went out whole, as a merge that kept the cleared e-mail
// active for ever (an outside-in test: 20 profiles).
TEST(Sync, AJobSwitchedToMirrorRemovesWhatTheSourceClearsLater) {
    Workspace w(5, "upsert");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    w.edit_config("mode: upsert", "mode: mirror");
    auto before = w.emu.requests_counter();
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing changed: nothing sent";
    auto text = testing::read_file(w.csv);
    const std::string email = "wei.li1@example.org";
    ASSERT_NE(text.find(email), std::string::npos);
    w.dir.write("profiles.csv", text.replace(text.find(email), email.size(), ""));
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.requests_counter() - before, 1);
    EXPECT_EQ(w.endpoint_requests("W4 upsert"), 5) << "the change is a patch, not a whole body";
    auto profiles = w.profiles_by_alt_id()["C00000001"];
    ASSERT_EQ(profiles.size(), 1u);
    for (const auto& e : profiles[0].at("Emails").as_array()) {
        auto* active = e.as_object().if_contains("IsActive");
        EXPECT_FALSE(e.at("EmailAddress").as_string() == email && (!active || active->as_bool()))
            << boost::json::serialize(e);
    }
}

// Rows back at their last accepted version while a killed run's writes of a change to them
// may have landed: the sync sends them again (looking first where it must), and `plan` says
// so (it called them unchanged: "unchanged 10 ... 10 deactivate", then the sync sent 20).
TEST(Sync, PlanShowsRowsBackAtTheirSyncedVersionWhoseChangeAKilledRunLeftInFlight) {
    Workspace w(20, "upsert", "    on_missing: deactivate\n    max_missing: 100%\n");
    const std::string all = testing::read_file(w.csv);
    std::string day0, changed;
    {
        std::istringstream in(all);
        std::string line;
        for (int i = 0; std::getline(in, line); ++i) {
            if (i <= 10) day0 += line + "\n";
            if (i >= 1 && i <= 10) line.replace(line.find('@'), 1, "+new@");
            changed += line + "\n";
        }
    }
    w.dir.write("profiles.csv", day0);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    w.dir.write("profiles.csv", changed);
    w.emu.set_faults(R"({"slow_ms": 30000})");
    auto p = w.start_until({"sync", "crm"}, w.emu.requests_counter() + 1);
    ASSERT_TRUE(p->running());
    p->signal(SIGKILL);
    ASSERT_EQ(p->wait(), 128 + SIGKILL);
    w.emu.set_faults(R"({"slow_ms": 0})");
    w.dir.write("profiles.csv", day0);
    auto plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_THAT(plan.out, HasSubstr("10 upsert")) << plan.out;
    EXPECT_THAT(plan.out, HasSubstr("10 deactivate")) << plan.out;
    auto upserts = w.endpoint_requests("W4 upsert");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.endpoint_requests("W4 upsert") - upserts, 10);
    EXPECT_EQ(w.endpoint_requests("W5 patch-by-alternate-id"), 10);
}

// Writes a run stopped by throttling left wait for the read in every job, not only in one
// that judges removals: a row back at what the API has supersedes its write. Sent first,
// 5 stale values reached the API and the read then reverted them (outside-in tester). In a
// job that judges removals, the write of a row that left is dropped, not counted as sent.
class EarlierWrites : public ::testing::TestWithParam<bool> {};

TEST_P(EarlierWrites, AWriteAnEarlierRunLeftIsNotSentForARowBackAtWhatTheApiHasNorForOneThatLeft) {
    const bool judges = GetParam();
    Workspace w(10, "upsert", judges ? "    on_missing: deactivate\n" : "");
    w.edit_config("max_delay: 200ms }", "max_delay: 200ms, max_throttled: 1s }");
    const std::string day0 = testing::read_file(w.csv);
    std::string changed, next;
    {
        std::istringstream in(day0);
        std::string line;
        for (int i = 0; std::getline(in, line); ++i) {
            auto original = line;
            if (i >= 1 && i <= 6) line.replace(line.find('@'), 1, "+new@");
            changed += line + "\n";
            // Rows 1-3 back at what the API has, rows 4-6 still changed; row 4 left the
            // source, where removals are judged.
            if (!(judges && i == 4)) next += (i <= 3 ? original : line) + "\n";
        }
    }
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    w.dir.write("profiles.csv", changed);
    w.emu.set_faults(R"({"error_429": 1.0})");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 4);
    w.emu.set_faults(R"({"error_429": 0})");
    w.dir.write("profiles.csv", next);
    auto before = w.endpoint_requests("W4 upsert");
    auto r = w.prefsync(judges ? "sync crm --allow-mass-delete" : "sync crm");  // 1 of 10 left
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const int still_changed = judges ? 2 : 3;
    EXPECT_EQ(w.endpoint_requests("W4 upsert") - before, still_changed) << "only the rows still changed";
    EXPECT_THAT(r.out, HasSubstr(judges ? "queued 1, unchanged 7" : "queued 0, unchanged 7"));
    EXPECT_THAT(r.out, HasSubstr(std::to_string(still_changed) +
                                 " update(s) left by earlier runs, released to be sent besides those queued"))
        << "sent without being queued by this run; a dropped one is not";
    for (const auto& [id, profiles] : w.profiles_by_alt_id())
        for (const auto& p : profiles) {
            bool changed_value = json::serialize(p).find("+new@") != std::string::npos;
            bool still = id == "C00000005" || id == "C00000006" || (!judges && id == "C00000004");
            EXPECT_EQ(changed_value, still) << id;
            if (judges && id == "C00000004") {
                EXPECT_EQ(p.at("IsActive"), json::value(false)) << "it left";
            }
        }
}

INSTANTIATE_TEST_SUITE_P(Sync, EarlierWrites, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "JudgingRemovals" : "NotJudgingRemovals"; });

// `plan` counts what a sync sends besides its actions: pending updates of rows it did not
// read. Pending updates of rows read again are replaced by those rows' actions (60 actions
// beside "already pending: 60" read as 120 requests to an outside-in tester).
TEST(Sync, PlanCountsPendingUpdatesOnlyBesidesTheActionsThatReplaceThem) {
    Workspace w(10, "upsert", "    on_missing: ignore\n");
    w.edit_config("max_delay: 200ms }", "max_delay: 200ms, max_throttled: 1s }");
    const std::string all = testing::read_file(w.csv);
    w.emu.set_faults(R"({"error_429": 1.0})");
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 4);
    w.emu.set_faults(R"({"error_429": 0})");
    auto plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_THAT(plan.out, HasSubstr("10 upsert | besides, already pending in the journal: 0")) << plan.out;
    // Four rows left out of the file: their writes are still sent (on_missing: ignore).
    std::string first_six;
    {
        std::istringstream in(all);
        std::string line;
        for (int i = 0; i < 7 && std::getline(in, line); ++i) first_six += line + "\n";
    }
    w.dir.write("profiles.csv", first_six);
    plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, HasSubstr("6 upsert | besides, already pending in the journal: 4")) << plan.out;
    auto json_plan = w.prefsync("plan crm --json");
    EXPECT_THAT(json_plan.out, HasSubstr("\"pending\":4")) << json_plan.out;
    auto before = w.endpoint_requests("W4 upsert");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.endpoint_requests("W4 upsert") - before, 10) << "the 6 actions and the 4 besides them";
}

// Rows marked deleted whose only writes are in a killed run's batch: `plan` counts them as
// profiles that may exist, known and removed, as the sync does once it has taken the batch
// over; both give the same verdict on max_missing, also when a row without an id leaves
// which rows left unknown (plan said nothing of them, and the sync then refused or removed).
TEST(Sync, PlanAndSyncAgreeOnDeletedRowsAKilledRunLeftInFlight) {
    Workspace w(20, "upsert", "    on_missing: deactivate\n    max_missing: 5\n    deleted_column: gone\n");
    const std::string all = testing::read_file(w.csv);
    std::string none_deleted;
    {
        std::istringstream in(all);
        std::string line;
        for (int i = 0; std::getline(in, line); ++i) {
            if (line.ends_with('\r')) line.pop_back();
            none_deleted += line + (i == 0 ? ",gone" : ",") + "\n";
        }
    }
    w.dir.write("profiles.csv", none_deleted);
    w.emu.set_faults(R"({"slow_ms": 30000})");
    auto p = w.start_until({"sync", "crm"}, 1);
    ASSERT_TRUE(p->running());
    p->signal(SIGKILL);
    ASSERT_EQ(p->wait(), 128 + SIGKILL);
    w.emu.set_faults(R"({"slow_ms": 0})");
    // Rows after the tenth marked deleted; `extra` appended as is.
    auto rows = [&](const std::string& extra) {
        std::istringstream in(all);
        std::string out, line;
        for (int i = 0; std::getline(in, line); ++i) {
            if (line.ends_with('\r')) line.pop_back();
            out += line + (i == 0 ? ",gone" : i > 10 ? ",yes" : ",") + "\n";
        }
        return out + extra;
    };
    auto verdict = [](const testing::RunResult& r) {
        std::smatch m;
        auto text = r.out + r.err;
        return std::regex_search(text, m, std::regex("[0-9]+ of [0-9]+ known profiles")) ? m.str() : std::string();
    };
    // Counted by deactivations: the killed run's upserts may still be reaching the emulator
    // (under ASan, five arrived after the kill).
    auto before = w.endpoint_requests("W5 patch-by-alternate-id");
    // A row without its id: which rows left cannot be told, but the deleted ones are known.
    auto last = all.substr(all.rfind('\n', all.size() - 2) + 1);
    w.dir.write("profiles.csv", rows(last.substr(last.find(','))));
    auto plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
    EXPECT_THAT(verdict(plan), HasSubstr("10 of 10")) << plan.out << plan.err;
    w.dir.write("profiles.csv", rows(""));
    plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 2) << plan.out << plan.err;
    EXPECT_THAT(verdict(plan), HasSubstr("10 of 20")) << plan.out << plan.err;
    EXPECT_EQ(w.endpoint_requests("W5 patch-by-alternate-id"), before) << "plan sends nothing";
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_EQ(verdict(r), verdict(plan)) << r.err;
    EXPECT_EQ(w.endpoint_requests("W5 patch-by-alternate-id"), 0);

    w.edit_config("max_missing: 5", "max_missing: 100%");
    plan = w.prefsync("plan crm");
    EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_THAT(plan.out, HasSubstr("10 deactivate")) << plan.out;
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.endpoint_requests("W5 patch-by-alternate-id"), 10);
}

// Rows the source marks deleted (deleted_column): a synced profile is deactivated, and so is
// one known only by a write that may have landed; writes that never reached the API are
// dropped, not left for `retry` (which made the profile of a row the source had deleted).
TEST(Sync, ARowMarkedDeletedRemovesAProfileThatMayExistAndDropsWritesThatNeverReachedTheApi) {
    Workspace w(12, "upsert", "    on_missing: deactivate\n    max_missing: 100%\n    deleted_column: gone\n");
    w.edit_config("max_attempts: 30", "max_attempts: 1");
    const std::string all = testing::read_file(w.csv);
    // The first `rows` rows, with a `gone` column set for `deleted`.
    auto rows = [&](int count, std::set<std::string> deleted) {
        std::istringstream in(all);
        std::string out, line;
        for (int i = 0; i <= count && std::getline(in, line); ++i) {
            if (line.ends_with('\r')) line.pop_back();  // the generator writes CRLF
            auto id = line.substr(0, line.find(','));
            out += line + (i == 0 ? ",gone" : deleted.contains(id) ? ",yes" : ",") + "\n";
        }
        return out;
    };
    w.dir.write("profiles.csv", rows(10, {}));
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    // C00000011 refused (403: nothing landed); C00000012 landed, its answer lost, given up.
    w.dir.write("profiles.csv", rows(12, {}));
    w.emu.set_faults(R"({"forbid_target": "alternateId=C00000011", "ambiguous": 1.0})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    ASSERT_EQ(w.emu.store.size(), 11u);
    auto requests = [&](const char* endpoint) { return w.endpoint_requests(endpoint); };
    // C00000012 marked deleted while max_missing refuses every removal: its write that may
    // have landed is held, sent neither by the sync nor by `retry`.
    w.emu.set_faults(R"({"ambiguous": 0})");
    w.edit_config("max_missing: 100%", "max_missing: 0");
    w.dir.write("profiles.csv", rows(12, {"C00000012"}));
    auto upserts = requests("W4 upsert");
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("max_missing"));
    // (C00000011's requests, answered 403 by the fault, count as "forbidden".)
    EXPECT_EQ(requests("W4 upsert") - upserts, 0);
    EXPECT_EQ(w.prefsync("retry crm").exit_code, 2);
    EXPECT_EQ(requests("W4 upsert") - upserts, 0) << "C00000012's write is not retried";
    w.edit_config("max_missing: 0", "max_missing: 100%");
    w.emu.set_faults(R"({"forbid_target": ""})");

    w.dir.write("profiles.csv", rows(12, {"C00000002", "C00000011", "C00000012"}));
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, HasSubstr("2 deactivate")) << plan.out;
    EXPECT_THAT(plan.out, HasSubstr("dropped: the writes of 1 row(s)")) << plan.out;
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.requests_counter() - before, 2) << "C00000002's and C00000012's deactivations";
    EXPECT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 0);
    before = w.emu.requests_counter();
    EXPECT_EQ(w.prefsync("retry crm").exit_code, 0);
    EXPECT_EQ(w.emu.requests_counter() - before, 0) << "nothing of the deleted rows is sent";
    auto stored = w.profiles_by_alt_id();
    EXPECT_EQ(stored.count("C00000011"), 0u);
    for (const char* id : {"C00000002", "C00000012"}) {
        ASSERT_EQ(stored[id].size(), 1u) << id;
        auto* active = stored[id][0].if_contains("IsActive");
        EXPECT_TRUE(active && !active->as_bool()) << id;
    }
}

// A file that marks a row deleted and lists it again further down unmarked (a delta file:
// deleted, then re-added): the last row decides, as for any repeated id. The deleted row's
// removal was kept and sent after the row's write, deactivating a profile the source has.
// A body the API refused stays refused through such a pair; marked, unmarked, marked still
// removes. `plan` says what the sync does each time.
TEST(Sync, ARowMarkedDeletedThenListedAgainKeepsItsProfileAndTheLastRowDecides) {
    Workspace w(11, "upsert", "    on_missing: deactivate\n    max_missing: 100%\n    deleted_column: gone\n");
    std::vector<std::string> lines;
    {
        std::istringstream in(testing::read_file(w.csv));
        for (std::string line; std::getline(in, line);) {
            if (line.ends_with('\r')) line.pop_back();  // the generator writes CRLF
            lines.push_back(line);
        }
    }
    const std::string id = "C00000002";
    const std::string row = lines[2];
    ASSERT_TRUE(row.starts_with(id + ","));
    std::string changed = row, refused = row;
    changed.insert(id.size() + 1, "Z");  // its first name
    refused[refused.find('@')] = '#';    // an email the API refuses (400)
    // The first ten rows but C00000002 unmarked, and `rows` (with their `gone` value) behind
    // them.
    auto file = [&](const std::vector<std::string>& rows) {
        std::string out = lines[0] + ",gone\n";
        for (std::size_t i = 1; i <= 10; ++i)
            if (i != 2) out += lines[i] + ",\n";
        for (const auto& r : rows) out += r + "\n";
        return out;
    };
    auto plan_of = [&](const std::vector<std::string>& rows) {
        w.dir.write("profiles.csv", file(rows));
        return w.prefsync("plan crm").out;
    };
    // Requests the sync of `rows` sent.
    auto sync = [&](const std::vector<std::string>& rows, int exit_code) {
        w.dir.write("profiles.csv", file(rows));
        auto before = w.emu.requests_counter();
        auto r = w.prefsync("sync crm");
        EXPECT_EQ(r.exit_code, exit_code) << r.err << r.out;
        return w.emu.requests_counter() - before;
    };
    auto stored = [&] {
        auto p = w.profiles_by_alt_id()[id];
        return p.size() == 1u ? p[0] : json::object();
    };
    auto active = [&] {
        auto profile = stored();
        auto* a = profile.if_contains("IsActive");
        return !profile.empty() && (!a || a->as_bool());
    };
    ASSERT_EQ(sync({row + ","}, 0), 10);
    ASSERT_TRUE(active());

    EXPECT_THAT(plan_of({row + ",yes", row + ","}), HasSubstr("nothing to send"));
    EXPECT_EQ(sync({row + ",yes", row + ","}, 0), 0) << "as the API has it";
    EXPECT_TRUE(active());

    EXPECT_THAT(plan_of({row + ",yes", changed + ","}), HasSubstr("| 1 upsert |"));
    EXPECT_EQ(sync({row + ",yes", changed + ","}, 0), 1) << "the change";
    EXPECT_TRUE(active());
    EXPECT_THAT(json::serialize(stored()), HasSubstr("\"Z"));

    // Refused (400), then the same body behind a row marked deleted: still refused, not sent.
    EXPECT_EQ(sync({refused + ","}, 2), 1);
    EXPECT_THAT(plan_of({refused + ",yes", refused + ","}),
                HasSubstr("not sent: 1 row(s) unchanged since the API refused them"));
    EXPECT_EQ(sync({refused + ",yes", refused + ","}, 2), 0) << "a refused body is not sent again";
    EXPECT_TRUE(active());

    EXPECT_THAT(plan_of({changed + ",yes", changed + ",", changed + ",yes"}), HasSubstr("| 1 deactivate |"));
    EXPECT_EQ(sync({changed + ",yes", changed + ",", changed + ",yes"}, 0), 1) << "its deactivation";
    EXPECT_FALSE(active());
    EXPECT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 0)
        << "the refused write went with the profile";

    // A profile never made, whose body the API refused: the same through such a pair.
    std::string never = lines[11];
    never[never.find('@')] = '#';
    EXPECT_EQ(sync({changed + ",yes", never + ","}, 2), 1);
    auto plan = plan_of({changed + ",yes", never + ",yes", never + ","});
    EXPECT_THAT(plan, HasSubstr("not sent: 1 row(s) unchanged since the API refused them"));
    EXPECT_THAT(plan, Not(HasSubstr("dropped"))) << "the sync keeps the refused failure";
    EXPECT_EQ(sync({changed + ",yes", never + ",yes", never + ","}, 2), 0) << "a refused body is not sent again";
    EXPECT_EQ(sync({changed + ",yes", never + ",yes"}, 0), 0) << "nothing to remove; the failure dropped";
    EXPECT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 0);
}

// A daemon on a one-minute schedule sent every row the API had refused, unchanged, again
// every minute. A body answered 400 is not sent again while its row is unchanged (counted per
// identity, exit 2, listed by plan and explain); a 403 is no verdict on the body and is sent;
// so are a changed row, a row of another mode, and `retry`.
TEST(Sync, RowsTheApiRefusedAreNotSentAgainUntilTheyChangeOrAreRetried) {
    Workspace w(30);
    const std::string original = testing::read_file(w.csv);
    auto report = [&] { return json::parse(testing::read_file(w.dir.file("report.json"))).as_object(); };
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    // Day 2: three emails broken, C00000005 changed but not permitted (403).
    w.dir.write("profiles.csv", edited_csv(original, {"C00000002", "C00000004", "C00000008"}, {"C00000005"}));
    w.emu.set_faults(R"({"forbid_target": "alternateId=C00000005"})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 2) << r.err;
    ASSERT_EQ(json::parse(w.prefsync("status crm --json").out).at("crm").at("failed").as_int64(), 4);

    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm --report " + quote(w.dir.file("report.json")));
    EXPECT_EQ(r.exit_code, 2) << "the failures stand";
    EXPECT_EQ(w.emu.requests_counter() - before, 1) << "only the 403 is sent again";
    EXPECT_THAT(r.out, HasSubstr("3 row(s) unchanged since the API refused them"));
    EXPECT_EQ(report().at("still_refused").as_int64(), 3);
    EXPECT_EQ(report().at("failed").as_int64(), 1);
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, HasSubstr("not sent: 3 row(s) unchanged since the API refused them"));
    EXPECT_THAT(plan.out, HasSubstr("CRMID:C00000005")) << "the 403 is planned";
    EXPECT_THAT(plan.out, Not(HasSubstr("CRMID:C00000002")));
    EXPECT_THAT(w.prefsync("explain crm C00000002").out, HasSubstr("the API refused this body"));
    EXPECT_THAT(w.prefsync("explain crm C00000005").out, Not(HasSubstr("the API refused this body")));

    // C00000002 fixed; C00000004 twice, its last row fine; C00000008 twice, its good row (the
    // one the API has) first: that ends the failure, so the refused row after it is sent (as
    // plan says; the last row wins); the permission granted.
    w.emu.set_faults(R"({"forbid_target": ""})");
    const std::string day3 =
        edited_csv(original, {"C00000004", "C00000008"}, {"C00000005"}, row_of(original, "C00000004"));
    {
        // C00000008's good row moved ahead of its bad one.
        std::string text = row_of(original, "C00000008") + day3.substr(day3.find('\n') + 1);
        w.dir.write("profiles.csv", day3.substr(0, day3.find('\n') + 1) + text);
    }
    plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, HasSubstr("CRMID:C00000008")) << plan.out;
    EXPECT_THAT(plan.out, Not(HasSubstr("not sent:")));
    before = w.emu.requests_counter();
    r = w.prefsync("sync crm --report " + quote(w.dir.file("report.json")));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(w.emu.requests_counter() - before, 2)
        << "C00000005 and C00000008's last row; C00000002 and C00000004 are back at what the API has";
    EXPECT_EQ(report().at("still_refused").as_int64(), 0) << "per identity: C00000004's last row is fine";
    EXPECT_EQ(report().at("failed").as_int64(), 1) << "C00000008";

    // Another mode: the refusal was of an upsert; a replace is sent.
    w.dir.write("profiles.csv", edited_csv(original, {"C00000008"}, {"C00000005"}));
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 2);
    before = w.emu.requests_counter();
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 2);
    EXPECT_EQ(w.emu.requests_counter() - before, 0);
    w.write_config("replace");
    before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(w.emu.requests_counter() - before, 1) << r.out;

    before = w.emu.requests_counter();
    r = w.prefsync("retry crm");
    EXPECT_EQ(r.exit_code, 2) << "refused again";
    EXPECT_EQ(w.emu.requests_counter() - before, 1);
    w.dir.write("profiles.csv", original);
    before = w.emu.requests_counter();
    r = w.prefsync("sync crm --report " + quote(w.dir.file("report.json")));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.requests_counter() - before, 1) << "C00000005 back; C00000008 is at what the API has";
    EXPECT_EQ(report().at("still_refused").as_int64(), 0);
    EXPECT_EQ(w.emu.store.size(), 30u);
}

// Before the API accepted any write of the job, a refusal says nothing about the bodies (a
// gateway, a wrong endpoint may refuse every write): such rows are sent again by the next sync.
TEST(Sync, RefusalsBeforeTheApiAcceptedAnyWriteOfTheJobAreSentAgain) {
    Workspace w(3);
    const std::string original = testing::read_file(w.csv);
    w.dir.write("profiles.csv", edited_csv(original, {"C00000001", "C00000002", "C00000003"}));
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 2);
    auto before = w.emu.requests_counter();
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(w.emu.requests_counter() - before, 3) << r.out;
    EXPECT_THAT(r.out, Not(HasSubstr("unchanged since the API refused them")));
}

TEST(Sync, AWrongTokenAbortsAtOnceAndMarksNothingFailed) {
    Workspace w(200);
    auto r = w.prefsync("sync crm", "wrong-token");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("401"));
    EXPECT_LE(w.emu.requests_counter(), 16) << "stops after the requests already in flight";
    auto s = json::parse(w.prefsync("status crm --json").out).at("crm");
    EXPECT_EQ(s.at("failed").as_int64(), 0);
    EXPECT_EQ(s.at("queued").as_int64() + s.at("retry").as_int64(), 200);
    r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << "resumes with the right token";
    EXPECT_EQ(w.emu.store.size(), 200u);
}

TEST(Verify, AcceptedUpdatesAreVerifiedOnceCompleteAndReportedWhileStillPending) {
    Workspace w(100);
    w.emu.store.set_processing_delay(std::chrono::hours(1));
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto r = w.prefsync("verify crm");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out, HasSubstr("checked 100, complete 0, still pending 100"));
    EXPECT_THAT(r.err, HasSubstr("Still pending. identity=CRMID:C00000001"));
    // Two hours later processing is done: verify records every update as verified.
    w.emu.offset_ms += 2 * 3600 * 1000;
    r = w.prefsync("verify crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("checked 100, complete 100, still pending 0"));
    auto s = json::parse(w.prefsync("status crm --json").out).at("crm");
    EXPECT_EQ(s.at("verified").as_int64(), 100);
    EXPECT_EQ(s.at("accepted").as_int64(), 0);
}

// A profile larger than http.max_response_bytes cannot be read back: each is read once per
// run and named, not read again every round until --wait runs out.
TEST(Verify, AProfileTooLargeToReadBackIsReadOnceAndNamed) {
    Workspace w(20);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    auto text = testing::read_file(w.config);
    text.replace(text.find("request_timeout: 10s"), 20, "request_timeout: 10s, max_response_bytes: 100");
    w.dir.write("prefsync.yaml", text);
    auto before = w.emu.requests_counter();
    auto r = w.prefsync("verify crm --wait 30s");
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out, HasSubstr("checked 20, complete 0, still pending 0, missing 0, too large to read 20"));
    EXPECT_THAT(r.err, HasSubstr("Accepted update cannot be read back. identity=CRMID:C00000001 reason=\"the answer "
                                 "is larger than http.max_response_bytes (100 bytes)\""));
    EXPECT_EQ(w.emu.requests_counter() - before, 20) << "each read once";
    auto s = json::parse(w.prefsync("status crm --json").out).at("crm");
    EXPECT_EQ(s.at("accepted").as_int64(), 20) << "still to verify, once it can be read";
}

TEST(Sync, TheDailyQuotaPausesTheRunInsteadOfFailingIt) {
    Workspace w(200);
    w.write_config("upsert", "", "requests_per_second: 1000, burst: 100, daily_quota: 50");
    auto p = w.start_until({"sync", "crm"}, 50);
    ASSERT_TRUE(p->running()) << "paused, not finished or failed";
    p->signal(SIGTERM);
    EXPECT_EQ(p->wait(), 4) << "interrupted, resumable";
    EXPECT_EQ(w.emu.requests_counter(), 50) << "not one request over the quota";
    auto s = json::parse(w.prefsync("status crm --json").out).at("crm");
    EXPECT_EQ(s.at("accepted").as_int64(), 50);
    EXPECT_EQ(s.at("queued").as_int64(), 150);
    EXPECT_EQ(s.at("failed").as_int64(), 0);
}

TEST(OAuth, BearerTokensAreFetchedAndRefreshedWhenTheyExpireMidRun) {
    Workspace w(400, "upsert", "", oauth_options());
    auto oauth =
        "  oauth: { token_url: \"http://127.0.0.1:" + std::to_string(w.emu.server.port()) + "/oauth/token\" }\n";
    w.write_config("upsert", "", "requests_per_second: 200, burst: 1", oauth);
    testing::ChildProcess p(
        {"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", w.config, "sync", "crm"});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    // The store, read in-process: polling the emulator over HTTP took its threads and the
    // CPU from the run it watched, on a loaded machine for longer than the token lived.
    while (p.running() && w.emu.store.size() < 100 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
    ASSERT_TRUE(p.running());
    w.emu.offset_ms += 3600 * 1000;  // an hour later: every issued token has expired
    EXPECT_EQ(p.wait(), 0) << "the run outlived its token";
    EXPECT_EQ(w.emu.store.size(), 400u);
    auto stats = json::parse(http_get(w.emu.server.port(), "/__admin/stats"));
    EXPECT_GE(stats.at("by_endpoint").at("oauth").at("200").as_int64(), 2) << "fetched, then refreshed";
    EXPECT_GE(stats.at("by_endpoint").at("auth").at("401").as_int64(), 1) << "the expiry was seen";
}

TEST(OAuth, AClientSecretWithFormCharactersIsSentAsItIs) {
    // A base64 secret has '+', '/' and '='; a token endpoint reads its form with '+' as a space.
    auto options = oauth_options();
    options.token = "Zm9v+YmFy/cXV4=&% x";
    Workspace w(20, "upsert", "", options);
    auto oauth =
        "  oauth: { token_url: \"http://127.0.0.1:" + std::to_string(w.emu.server.port()) + "/oauth/token\" }\n";
    w.write_config("upsert", "", "requests_per_second: 200, burst: 1", oauth);
    auto r = w.prefsync("sync crm", quote(options.token));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.store.size(), 20u);
}

TEST(OAuth, ARefusedClientSecretAbortsTheRun) {
    Workspace w(50, "upsert", "", oauth_options());
    auto oauth =
        "  oauth: { token_url: \"http://127.0.0.1:" + std::to_string(w.emu.server.port()) + "/oauth/token\" }\n";
    w.write_config("upsert", "", "requests_per_second: 200, burst: 1", oauth);
    auto r = w.prefsync("sync crm", "not-the-secret");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("token endpoint refused the client secret"));
    EXPECT_EQ(w.emu.store.size(), 0u);
}

namespace {
std::string first_name(const boost::json::object& profile) {
    return std::string(profile.at("CustomerName").at("FirstName").as_string());
}
// The CSV's line of `id` with its first name replaced (the generator's second column).
std::string renamed(const std::string& csv, const std::string& id, const std::string& name) {
    auto at = csv.find("\n" + id + ",");
    auto from = csv.find(',', at + 1) + 1;
    auto to = csv.find(',', from);
    auto end = csv.find('\n', at + 1);
    return csv.substr(at + 1, from - at - 1) + name + csv.substr(to, end - to);
}
}  // namespace

// A create job meets an identity it created again: a changed row the next day, a later row
// of the same id in the file, a changed row whose profile was deleted on the server. Against a server that makes a second profile for a known
// alternate id (the reference allows it), a second create would show as one; against the
// emulator's default it would be a 409 and a failure. Either way: the profile it created is
// updated, and `plan` says so.
TEST(Sync, ACreateJobUpdatesTheProfileItCreatedWhenItsRowChangesOrComesAgain) {
    Workspace w(1500, "create");
    w.emu.set_faults(R"({"accept_duplicates": true})");
    auto csv = testing::read_file(w.csv);
    // A later row of an id, a batch or more after its first (1,000 rows a batch).
    w.dir.write("profiles.csv", csv + renamed(csv, "C00000005", "Late") + "\n");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto stored = w.profiles_by_alt_id();
    ASSERT_EQ(stored["C00000005"].size(), 1u) << "not created twice";
    EXPECT_EQ(first_name(stored["C00000005"][0]), "Late") << "the last row of an id wins";
    EXPECT_EQ(w.emu.store.size(), 1500u);

    // The next day: one row changed.
    w.dir.write("profiles.csv", csv.substr(0, csv.find("\nC00000001,") + 1) + renamed(csv, "C00000001", "Changed") +
                                    csv.substr(csv.find("\nC00000002,")));
    auto plan = w.prefsync("plan crm");
    ASSERT_EQ(plan.exit_code, 0) << plan.err;
    EXPECT_THAT(plan.out, ::testing::ContainsRegex("update +CRMID:C00000001 "));
    EXPECT_THAT(plan.out, Not(HasSubstr("create ")));
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    stored = w.profiles_by_alt_id();
    ASSERT_EQ(stored["C00000001"].size(), 1u) << "not created twice";
    EXPECT_EQ(first_name(stored["C00000001"][0]), "Changed");
    EXPECT_EQ(w.emu.store.size(), 1500u);
    // C00000005's row changed back to its first value too (the file no longer has "Late").
    EXPECT_EQ(w.emu.requests_counter() - before, 2) << "the two changed rows, one request each";
    ASSERT_EQ(stored["C00000005"].size(), 1u);
    EXPECT_NE(first_name(stored["C00000005"][0]), "Late");

    // The profile it created for C00000003 was deleted on the server, and its row changes:
    // the update answers 404, the lookup finds nothing, and the profile is created again.
    auto gone = w.emu.store.find({"CRMID", "C00000003"});
    ASSERT_TRUE(gone);
    w.emu.store.remove(*gone);
    w.dir.write("profiles.csv", csv.substr(0, csv.find("\nC00000003,") + 1) + renamed(csv, "C00000003", "Again") +
                                    csv.substr(csv.find("\nC00000004,")));
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    stored = w.profiles_by_alt_id();
    ASSERT_EQ(stored["C00000003"].size(), 1u);
    EXPECT_EQ(first_name(stored["C00000003"][0]), "Again");
    EXPECT_EQ(w.emu.store.size(), 1500u);
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("unchanged 1500")) << "its new profile id is the one kept";
}

// Creates whose writes all land unanswered, given up (failed) after two attempts; the fault
// gone, the next sync reads the rows again: each is looked up first, found and updated, as
// the failed row would have been by `retry`, never created a second time.
// With max_attempts 1 the one attempt is the unanswered one: its mark was lost as it was
// given up (found by a review), and the next sync created every profile again.
class GivenUpUnanswered : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Sync, GivenUpUnanswered, ::testing::Values("2", "1"));

TEST_P(GivenUpUnanswered, ARowWhoseCreateWasGivenUpUnansweredIsLookedUpNotCreatedAgainByTheNextSync) {
    Workspace w(3, "create");  // few: the breaker must not take it for an outage
    w.edit_config("max_attempts: 30", std::string("max_attempts: ") + GetParam());
    w.emu.set_faults(R"({"ambiguous": 1.0, "accept_duplicates": true})");
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    ASSERT_EQ(w.emu.store.size(), 3u) << "every create landed, unanswered";
    w.emu.set_faults(R"({"ambiguous": 0})");
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.store.size(), 3u) << "none created twice";
    for (auto& [id, profiles] : w.profiles_by_alt_id()) EXPECT_EQ(profiles.size(), 1u) << id;
    r = w.prefsync("sync crm");
    EXPECT_THAT(r.out, HasSubstr("unchanged 3"));
}

// The worst answer the reference allows a write: applied, then answered 500 or above (its
// 500 and 503 are "an unexpected condition"; a gateway's 502 or 504 can follow an applied
// write). Each create is looked up before it is sent again, never made twice, also by the
// next sync once the fault has passed.
class AnsweredAfterApplying : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Sync, AnsweredAfterApplying, ::testing::Values("500", "502", "503", "504"));

TEST_P(AnsweredAfterApplying, ACreateAnsweredWithAServerErrorAfterItLandedIsNotSentAgain) {
    Workspace w(3, "create");
    w.edit_config("max_attempts: 30", "max_attempts: 2");
    w.emu.set_faults(std::string(R"({"ambiguous": 1.0, "accept_duplicates": true, "ambiguous_status": )") + GetParam() +
                     "}");
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_EQ(w.emu.store.size(), 3u) << "every create landed once, and was then answered " << GetParam();
    w.emu.set_faults(R"({"ambiguous": 0})");
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.store.size(), 3u) << "none created twice";
    for (auto& [id, profiles] : w.profiles_by_alt_id()) EXPECT_EQ(profiles.size(), 1u) << id;
}

// A backfill that ended with failures is continued by --resume without sending its failed
// rows again; until they are mended or retried the backfill is not complete (exit 2), and
// the resumed run says why. Once it is, --resume starts a new backfill.
TEST(Backfill, AResumedBackfillCountsTheRowsItGaveUpOnUntilTheyAreMended) {
    Workspace w(20);
    const std::string original = testing::read_file(w.csv);
    w.dir.write("profiles.csv", edited_csv(original, {"C00000002", "C00000004", "C00000008"}, {}));
    auto report = [&] { return json::parse(testing::read_file(w.dir.file("report.json"))).as_object(); };
    const std::string with_report = " --report " + quote(w.dir.file("report.json"));
    auto r = w.prefsync("backfill crm" + with_report);
    ASSERT_EQ(r.exit_code, 2) << r.err << r.out;
    auto backfill = report().at("run_id").as_int64();
    EXPECT_EQ(report().at("failed_in_backfill").as_int64(), 3);

    auto before = w.emu.requests_counter();
    r = w.prefsync("backfill crm --resume" + with_report);
    EXPECT_EQ(r.exit_code, 2) << "the backfill still has failed rows: " << r.out;
    EXPECT_EQ(w.emu.requests_counter() - before, 0) << "nothing of the backfill is sent again";
    EXPECT_EQ(report().at("run_id").as_int64(), backfill);
    EXPECT_EQ(report().at("failed").as_int64(), 0);
    EXPECT_EQ(report().at("failed_in_backfill").as_int64(), 3);
    EXPECT_THAT(r.out, HasSubstr("3 row(s) this backfill gave up on before it was resumed"));

    // Two mended in the source: sent by the resumed backfill, which ends the failures.
    w.dir.write("profiles.csv", edited_csv(original, {"C00000008"}, {}));
    before = w.emu.requests_counter();
    r = w.prefsync("backfill crm --resume" + with_report);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_EQ(w.emu.requests_counter() - before, 2);
    EXPECT_EQ(report().at("failed_in_backfill").as_int64(), 1);
    EXPECT_THAT(r.out, HasSubstr("1 row(s) this backfill gave up on before it was resumed"));

    w.dir.write("profiles.csv", original);
    r = w.prefsync("backfill crm --resume" + with_report);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(report().at("run_id").as_int64(), backfill);
    EXPECT_EQ(report().at("failed_in_backfill").as_int64(), 0);

    // Complete: --resume now starts a new backfill, which sends every row.
    before = w.emu.requests_counter();
    r = w.prefsync("backfill crm --resume" + with_report);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(report().at("run_id").as_int64(), backfill);
    EXPECT_EQ(w.emu.requests_counter() - before, 20);
}

TEST(Backfill, KilledFiveTimesThenResumedDeliversEveryRowExactlyOnce) {
    Workspace w(3000, "create");
    w.write_config("create", "", "requests_per_second: 3000, burst: 100");
    // A server that creates another profile for a known alternate id (the reference allows
    // it): a create sent twice shows as a second profile, not as a 409.
    w.emu.set_faults(R"({"latency_ms": 1, "accept_duplicates": true})");
    std::set<std::int64_t> runs;
    for (int kill = 1; kill <= 5; ++kill) {
        // Kill -9 once this run has sent some hundreds of requests (the emulator counts them),
        // at a different point each time.
        auto p = w.start_until({"backfill", "crm", "--resume"}, w.emu.requests_counter() + 100 + 80 * kill);
        ASSERT_TRUE(p->running()) << "the backfill finished before kill " << kill;
        {
            // What `status` shows meanwhile: the one backfill run, running (no end, no exit
            // code), not the end the previous kill was recorded with.
            journal::Journal j(w.dir.file("state/journal.db"), journal::Access::read_only);
            auto run = j.runs.last("crm", "backfill");
            ASSERT_TRUE(run);
            EXPECT_EQ(run->ended_at, 0) << "kill " << kill;
            EXPECT_EQ(run->exit_code, -1) << "kill " << kill;
            runs.insert(run->id);
        }
        p->signal(SIGKILL);
        EXPECT_EQ(p->wait(), 128 + SIGKILL);
    }
    auto r = w.prefsync("backfill crm --resume");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(runs.size(), 1u) << "every resumption takes up the same run";
    auto stored = w.profiles_by_alt_id();
    EXPECT_EQ(stored.size(), 3000u);
    EXPECT_EQ(w.emu.store.size(), 3000u) << "no profile created twice";
    for (auto& [id, profiles] : stored) ASSERT_EQ(profiles.size(), 1u) << id;
    journal::Journal j(w.dir.file("state/journal.db"));
    EXPECT_TRUE(j.db.integrity_ok());
    EXPECT_EQ(j.updates.counts("crm").pending(), 0);
    auto run = j.runs.last("crm", "backfill");
    ASSERT_TRUE(run);
    EXPECT_EQ(runs.count(run->id), 1u);
    EXPECT_EQ(run->exit_code, 0);
    EXPECT_GT(run->ended_at, 0);
}

// Rows in random identity order: most answers are staged before they reach change detection
// (synced_store.hpp). A kill leaves some staged and unmerged; the next run merges them
// before it reads anything, or it would create those profiles again.
TEST(Backfill, CreatesInRandomIdentityOrderKilledThenResumedAreEachSentOnceAndThenNothingIsSent) {
    Workspace w(3000, "create");
    w.shuffle_rows();
    w.write_config("create", "", "requests_per_second: 3000, burst: 100");
    w.emu.set_faults(R"({"latency_ms": 1, "accept_duplicates": true})");
    for (int kill = 1; kill <= 3; ++kill) {
        auto p = w.start_until({"backfill", "crm", "--resume"}, w.emu.requests_counter() + 200 + 150 * kill);
        ASSERT_TRUE(p->running()) << "the backfill finished before kill " << kill;
        p->signal(SIGKILL);
        EXPECT_EQ(p->wait(), 128 + SIGKILL);
    }
    auto r = w.prefsync("backfill crm --resume");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto stored = w.profiles_by_alt_id();
    EXPECT_EQ(stored.size(), 3000u);
    EXPECT_EQ(w.emu.store.size(), 3000u) << "no profile created twice";
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 3000"));
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing changed, nothing sent";
}

// What a process killed with every answer still staged leaves: the next run merges them
// before it reads anything. Unmerged, every row would look new, and be created again.
// `status` and `plan` before that run read them as merged.
TEST(Sync, AnswersAKilledProcessLeftStagedAreMergedBeforeTheNextRunReadsAnything) {
    Workspace w(500, "create");
    w.shuffle_rows();
    w.write_config("create", "", "requests_per_second: 3000, burst: 100");
    w.emu.set_faults(R"({"accept_duplicates": true})");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    {
        journal::Journal j(w.dir.file("state/journal.db"));
        journal::Database::Transaction tx(j.db);
        j.db.exec(
            "INSERT INTO synced_staged(job, identity, hash, profile_id, synced_at, body, run_id, verify) "
            "SELECT job, identity, hash, profile_id, synced_at, body, run_id, verify FROM synced");
        j.db.exec("DELETE FROM synced");
        tx.commit();
    }
    auto before = w.emu.requests_counter();
    // A look before that run (read-only: it cannot merge) reads them as merged.
    r = w.prefsync("status crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("identities: done 0, accepted 500"));
    r = w.prefsync("plan crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 500"));
    EXPECT_THAT(r.out, Not(HasSubstr("create CRMID")));
    {
        journal::Journal j(w.dir.file("state/journal.db"));
        auto left = j.db.prepare("SELECT count(*) FROM synced_staged");
        ASSERT_TRUE(left.step());
        EXPECT_EQ(left.i64(0), 500) << "looks write nothing";
    }
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 500"));
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing changed, nothing sent";
    EXPECT_EQ(w.emu.store.size(), 500u);
}

// A backfill of 2,500 rows in `mode` against a server that answers nothing for 30 s, killed
// with -9 once its first request arrived: what the journal holds then (nothing, after a
// failure saying why).
std::optional<journal::StateCounts> killed_before_any_answer(const std::string& mode) {
    Workspace w(2500, mode);
    w.write_config(mode, "", "requests_per_second: 3000, burst: 100");
    w.emu.set_faults(R"({"slow_ms": 30000})");
    auto p = w.start_until({"backfill", "crm"}, 1);
    if (!p->running()) {
        ADD_FAILURE() << "the backfill ended before its first request arrived: " << p->wait();
        return std::nullopt;
    }
    if (w.emu.requests_counter() < 1) {
        ADD_FAILURE() << "no request arrived within a minute";
        return std::nullopt;
    }
    p->signal(SIGKILL);
    EXPECT_EQ(p->wait(), 128 + SIGKILL);
    journal::Journal j(w.dir.file("state/journal.db"));
    return j.updates.counts("crm");
}

// Creates are resolved first when a crash leaves them in flight (a lookup each), so no more
// of them are claimed at once than the request loop can use: a kill -9 before any answer
// leaves the rest of the batch queued, not in flight.
// Several batches: creates are never read ahead (that would leave more to look up first).
TEST(Backfill, AKillBeforeAnyAnswerLeavesNoMoreCreatesInFlightThanOneClaim) {
    auto killed = killed_before_any_answer("create");
    ASSERT_TRUE(killed);
    auto& counts = *killed;
    EXPECT_EQ(counts.inflight, 256) << "one claim's worth (4 x 8 connections, at least 256)";
    EXPECT_EQ(counts.queued, 1000 - 256) << "the first batch of 1,000 rows only";
}

// A job that reads ahead journals smaller batches (250 rows): each is read on the request
// loop's thread while answers wait. Its first request leaves once the first and the one read
// ahead are journaled, and reading stops once twice a claim's worth (2 x 256 at 8
// connections; a fourth batch would fit from about 84 connections) waits to be sent, so a
// kill -9 before any answer finds 500 or 750 rows journaled, fewer than one batch of a
// create job, all of them in flight.
TEST(Backfill, AnUpsertJournalsQuarterBatchesSoAKillBeforeAnyAnswerFindsFewerThanAThousand) {
    auto killed = killed_before_any_answer("upsert");
    ASSERT_TRUE(killed);
    auto& counts = *killed;
    EXPECT_EQ(counts.pending(), counts.inflight) << "an upsert's rows are journaled in flight";
    EXPECT_GE(counts.inflight, 500) << "the first batch and the one read ahead";
    EXPECT_LT(counts.inflight, 1000) << "batches of 250, read ahead until 512 wait: 1000 was one batch";
    EXPECT_EQ(counts.inflight % 250, 0) << "whole batches";
}

// Upserts killed mid-run: the next run takes over what was left in flight and sends it
// again (an upsert needs no lookup first). Nothing may be lost, and once a run finishes the
// API holds exactly the mapped bodies and a further run sends nothing.
TEST(Sync, UpsertsKilledThreeTimesThenFinishedDeliverEveryRowAndThenSendNothing) {
    Workspace w(3000, "upsert");
    w.write_config("upsert", "", "requests_per_second: 3000, burst: 100");
    w.emu.set_faults(R"({"latency_ms": 1})");
    for (int kill = 1; kill <= 3; ++kill) {
        auto p = w.start_until({"sync", "crm"}, w.emu.requests_counter() + 150 + 100 * kill);
        ASSERT_TRUE(p->running()) << "the sync finished before kill " << kill;
        p->signal(SIGKILL);
        EXPECT_EQ(p->wait(), 128 + SIGKILL);
    }
    {
        journal::Journal j(w.dir.file("state/journal.db"));
        EXPECT_GT(j.updates.counts("crm").inflight, 0) << "the kill left rows in flight";
    }
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_STORED_AS_MAPPED(w, 3000);
    {
        journal::Journal j(w.dir.file("state/journal.db"));
        EXPECT_TRUE(j.db.integrity_ok());
        EXPECT_EQ(j.updates.counts("crm").pending(), 0);
    }
    auto before = w.emu.requests_counter();
    r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("unchanged 3000"));
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing changed, nothing sent";
}

// --- settle: an export still being written is not read to a premature end ---------------

// The profiles the emulator holds as inactive.
std::size_t inactive_profiles(testing::PushWorkspace& w) {
    std::size_t n = 0;
    for (auto& [id, profiles] : w.profiles_by_alt_id())
        for (auto& p : profiles)
            if (auto* active = p.if_contains("IsActive"); active && *active == json::value(false)) ++n;
    return n;
}

// An export paused half-way (its last row cut mid-field, no line end) was read to that end:
// the cut row was sent and the rows not yet written were deactivated. A file modified less
// than `settle` ago is waited for now: nothing is read, sent or removed meanwhile, and a stop
// ends the wait as an interrupted run (exit 4) naming the file. Once written (and quiet for
// `settle`) it is read at once, whole.
TEST(Sync, AnExportStillBeingWrittenIsWaitedForNotJudgedForRemovals) {
    Workspace w(20, "upsert", "    on_missing: deactivate\n    max_missing: 100%\n");
    w.edit_config("source: { type: csv, path: profiles.csv }",
                  "source: { type: csv, path: profiles.csv, settle: 30m }");
    const std::string all = testing::read_file(w.csv);
    ASSERT_EQ(w.prefsync("sync crm").exit_code, 0);
    ASSERT_EQ(w.emu.store.size(), 20u);

    // The writer, paused: the header, nine rows and the tenth cut in its last field (CRLF).
    auto cut = all.substr(0, all.find('\n', all.find("C00000010")) - 2);
    w.dir.write("profiles.csv", cut);
    testing::TempDir::touch(w.csv, std::chrono::milliseconds(0));  // written just now
    auto before = w.emu.requests_counter();
    auto log = w.dir.file("sync.log");
    auto report = w.dir.file("report.json");
    testing::ChildProcess run({"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", w.config, "sync",
                               "crm", "--report", report},
                              log);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (run.running() && testing::read_file(log).find("Waiting for the source to settle") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling an observable condition
    ASSERT_TRUE(run.running()) << testing::read_file(log);
    EXPECT_EQ(w.emu.requests_counter(), before) << "nothing sent while the file settles";
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(), 4) << testing::read_file(log);
    auto err = testing::read_file(log);
    EXPECT_THAT(err, HasSubstr(w.csv + " was modified"));
    EXPECT_THAT(err, HasSubstr("rename it into place"));
    EXPECT_EQ(w.emu.requests_counter(), before);
    EXPECT_EQ(inactive_profiles(w), 0u) << "no row taken for removed";
    auto r_report = json::parse(testing::read_file(report)).as_object();
    EXPECT_EQ(r_report.at("exit_code").as_int64(), 4);
    EXPECT_THAT(std::string(r_report.at("error").as_string()), HasSubstr(w.csv));

    // Written whole, and quiet since (dated back by the test's write): read at once.
    w.dir.write("profiles.csv", all);
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, Not(HasSubstr("Waiting for the source to settle")));
    EXPECT_THAT(r.out, HasSubstr("read 20, queued 0, unchanged 20"));
    EXPECT_EQ(inactive_profiles(w), 0u);
}

// Many exports leave the final newline out: the last record is read, and the log and the
// report say where it is (a cut would look the same), never what it holds.
TEST(Sync, ALastRecordWithoutALineEndIsSentAndWarnedOfInTheLogAndReport) {
    Workspace w(5);
    auto all = testing::read_file(w.csv);
    ASSERT_EQ(all.substr(all.size() - 2), "\r\n");  // the generator's line ends
    all.resize(all.size() - 2);
    w.dir.write("profiles.csv", all);
    auto report = w.dir.file("report.json");
    auto r = w.prefsync("sync crm --report " + quote(report));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(w.emu.store.size(), 5u);
    auto warning =
        w.csv + ":6: the last record has no line end: it may have been cut if the file was still being written";
    EXPECT_THAT(r.err, HasSubstr(warning));
    auto last_row = all.substr(all.rfind('\n') + 1);
    EXPECT_THAT(r.err, Not(HasSubstr(last_row.substr(last_row.find(',') + 1)))) << "no row contents";
    auto rep = json::parse(testing::read_file(report)).as_object();
    EXPECT_THAT(std::string(rep.at("source_warning").as_string()), HasSubstr(warning));

    w.dir.write("profiles.csv", all + "\r\n");
    auto again = w.prefsync("sync crm --report " + quote(report));
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_THAT(again.err, Not(HasSubstr("no line end")));
    EXPECT_EQ(json::parse(testing::read_file(report)).at("source_warning").as_string(), "");
}

}  // namespace
}  // namespace prefsync
