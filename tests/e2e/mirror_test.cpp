// Mirror mode end to end: the real binary, the example mapping, the emulator. Day 1 syncs
// a file; another client changes some profiles; day 2 changes, adds and drops rows; every
// profile's mapping-owned fields then equal day 2's source exactly, the other client's
// additions are still there, dropped profiles are handled per on_missing, and a third run
// sends nothing. `plan` shows what the sync then sends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/in_process_emulator.hpp"
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
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) out.push_back(line);
    }
    return out;
}

// Splits a CSV line of the generator's output (quoted fields may hold commas).
std::vector<std::string> fields(const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
                out.back() += '"', ++i;
            else if (c == '"')
                quoted = false;
            else
                out.back() += c;
        } else if (c == '"')
            quoted = true;
        else if (c == ',')
            out.emplace_back();
        else
            out.back() += c;
    }
    return out;
}

std::string join(const std::vector<std::string>& f) {
    std::string out;
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (i) out += ',';
        bool quote_it = f[i].find_first_of(",\"\n") != std::string::npos;
        if (!quote_it) {
            out += f[i];
            continue;
        }
        out += '"';
        for (char c : f[i]) out += c == '"' ? std::string("\"\"") : std::string(1, c);
        out += '"';
    }
    return out;
}

// A profile's part that a body can be compared with: server fields, inactive elements and
// the given foreign parts left out, arrays in a canonical order.
json::value canonical(json::value v) {
    if (v.is_object()) {
        json::object out;
        for (auto& [k, x] : v.as_object())
            if (k != "Edited") out[k] = canonical(x);  // the server's own, on elements too
        return out;
    }
    if (v.is_array()) {
        std::vector<std::pair<std::string, json::value>> items;
        for (auto& x : v.as_array()) {
            if (x.is_object() && x.as_object().contains("IsActive") &&
                x.as_object().at("IsActive") == json::value(false))
                continue;  // deactivated: not part of what the profile shows as current
            auto c = canonical(x);
            items.emplace_back(json::serialize(c), c);
        }
        std::sort(items.begin(), items.end(), [](auto& a, auto& b) { return a.first < b.first; });
        json::array out;
        for (auto& [_, x] : items) out.push_back(x);
        return out;
    }
    return v;
}

json::value owned_view(json::object p) {
    for (auto key : {"ProfileId", "UpdateStatus", "Edited", "AlternateIds", "IsActive"}) p.erase(key);
    // The other client's additions are not the mapping's.
    if (auto* cf = p.if_contains("CustomFields")) {
        auto& a = cf->as_array();
        a.erase(std::remove_if(a.begin(), a.end(),
                               [](auto& e) {
                                   auto* name = e.as_object().if_contains("Name");
                                   return name && *name == "ForeignField";
                               }),
                a.end());
        if (a.empty()) p.erase("CustomFields");
    }
    if (auto* em = p.if_contains("Emails")) {
        auto& a = em->as_array();
        a.erase(std::remove_if(a.begin(), a.end(),
                               [](auto& e) {
                                   auto* address = e.as_object().if_contains("EmailAddress");
                                   return address && *address == "foreign@other.example";
                               }),
                a.end());
    }
    for (auto key : {"Emails", "PhoneNumbers", "Addresses", "ProfileTags", "CustomFields", "ProfilePreferences"})
        if (auto* x = p.if_contains(key); x && canonical(*x).as_array().empty()) p.erase(key);
    return canonical(p);
}

struct MirrorWorkspace {
    testing::TempDir dir;
    emulator::ServerOptions server_options = [this] {
        emulator::ServerOptions o;
        o.request_log = dir.file("requests.jsonl");
        o.log_bodies = true;
        return o;
    }();
    testing::InProcessEmulator emu{{}, server_options};
    std::string config;

    explicit MirrorWorkspace(const std::string& job_extra = "on_missing: deactivate") {
        auto example = testing::read_file(std::string(PREFSYNC_SOURCE_DIR) + "/examples/prefsync.yaml");
        example.replace(example.find("mode: upsert"), 12, "mode: mirror\n    " + job_extra);
        example.replace(example.find("    schedule: \"0 2 * * *\"\n"), 26, "");
        config = dir.write("prefsync.yaml", example);
    }
    testing::RunResult prefsync(const std::string& args) {
        return testing::run("PREFSYNC_TOKEN=emulator-token PREFSYNC_BASE_URL=" + emu.base_url() +
                            " PREFSYNC_RATE=5000 PREFSYNC_JOURNAL=" + dir.file("state/journal.db") + " " +
                            quote(PREFSYNC_BINARY) + " -c " + quote(config) + " " + args);
    }
    std::map<std::string, json::object> profiles() {
        std::map<std::string, json::object> out;
        for (auto& p : emu.store.dump())
            for (auto& a : p.at("AlternateIds").as_array())
                out[std::string(a.at("AlternateId").as_string())] = p.as_object();
        return out;
    }
    // identity → body, from dry-run.
    std::map<std::string, json::object> desired() {
        auto r = prefsync("dry-run crm-nightly");
        EXPECT_EQ(r.exit_code, 0) << r.err;
        std::map<std::string, json::object> out;
        for (auto& line : lines_of(r.out)) {
            auto v = json::parse(line).as_object();
            if (v.contains("summary")) continue;
            out[std::string(v.at("identity").at("alternate_id").as_string())] = v.at("body").as_object();
        }
        return out;
    }
    std::vector<json::object> requests_since(std::size_t& seen) {
        std::vector<json::object> out;
        auto all = lines_of(testing::read_file(dir.file("requests.jsonl")));
        for (auto i = seen; i < all.size(); ++i) out.push_back(json::parse(all[i]).as_object());
        seen = all.size();
        return out;
    }
};

// Against the forgiving emulator, and against one that writes its own `Edited` into every
// element as the reference's profiles show (every whole-array test then fails, nested
// elements read back with fields we never sent).
class MirrorDayTwo : public ::testing::TestWithParam<bool> {};

TEST_P(MirrorDayTwo, ConvergesKeepsOtherClientsAdditionsHandlesDroppedRowsAndDayThreeSendsNothing) {
    MirrorWorkspace w;
    if (GetParam()) w.emu.set_faults(R"({"stamp_elements": true})");
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 10300");
    auto all = lines_of(gen.out);
    auto header = all[0];
    std::vector<std::string> day1(all.begin() + 1, all.begin() + 1 + 10000);
    w.dir.write(
        "profiles.csv", header + "\n" + [&] {
            std::string s;
            for (auto& l : day1) s += l + "\n";
            return s;
        }());
    std::size_t seen = 0;
    auto r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    ASSERT_EQ(w.emu.store.size(), 10000u);
    w.requests_since(seen);

    // Another client adds a field and an email to 50 profiles between the runs.
    for (int i = 0; i < 50; ++i) {
        auto id = fields(day1[static_cast<std::size_t>(i * 7)])[0];
        auto reply =
            w.emu.store.upsert({"CRMID", id}, json::parse(R"({"CustomFields":[{"Name":"ForeignField","Value":"kept"}],
            "Emails":[{"EmailAddress":"foreign@other.example","EmailAddressType":"Other"}]})")
                                                  .as_object());
        ASSERT_LT(reply.status, 300);
    }

    // Day 2: 10% changed (cleared fields, changed emails and phones, emptied lists), 100 new, 200 dropped.
    auto cols = fields(header);
    auto col = [&](const char* name) {
        auto i = static_cast<std::size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
        EXPECT_LT(i, cols.size()) << name;
        return i;
    };
    std::vector<std::string> day2;
    std::set<std::string> dropped;
    int changed = 0;
    for (std::size_t i = 0; i < day1.size(); ++i) {
        auto f = fields(day1[i]);
        if (i % 50 == 3) {  // 200 rows leave the source
            dropped.insert(f[0]);
            continue;
        }
        if (i % 10 == 5) {
            switch (changed++ % 5) {
                case 0:
                    f[col("city")] = "";
                    f[col("address2")] = "";
                    f[col("locale")] = "";
                    break;                                                                        // cleared fields
                case 1: f[col("email")] = "new" + std::to_string(i) + "@changed.example"; break;  // changed email
                case 2: f[col("mobile_phone")] = "555" + std::to_string(1000000 + i); break;      // changed phone
                case 3:
                    f[col("tags")] = "";
                    f[col("work_email")] = "";
                    f[col("home_phone")] = "";  // emptied lists
                    f[col("last_name")] = "Changed";
                    break;
                case 4:
                    f[col("loyalty_tier")] = "";
                    f[col("first_name")] = "Renamed";
                    break;
            }
        }
        day2.push_back(join(f));
    }
    for (std::size_t i = 10000; i < 10100; ++i) day2.push_back(all[1 + i]);  // new identities
    w.dir.write(
        "profiles.csv", header + "\n" + [&] {
            std::string s;
            for (auto& l : day2) s += l + "\n";
            return s;
        }());

    auto plan = w.prefsync("plan crm-nightly --json");
    ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
    std::map<std::string, std::string> planned_action, planned_body;
    for (auto& line : lines_of(plan.out)) {
        auto v = json::parse(line).as_object();
        if (v.contains("summary")) continue;
        auto id = std::string(v.at("identity").as_string()).substr(6);  // "CRMID:"
        planned_action[id] = std::string(v.at("action").as_string());
        planned_body[id] = json::serialize(v.contains("operations") ? v.at("operations") : v.at("body"));
    }
    std::map<std::string, int> by_action;
    for (auto& [id, a] : planned_action) ++by_action[a];
    EXPECT_EQ(by_action["patch"], 1000) << "every changed row";
    EXPECT_EQ(by_action["upsert"], 100);
    EXPECT_EQ(by_action["deactivate"], 200);

    r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto sent = w.requests_since(seen);
    std::map<std::string, std::vector<json::object>> per_id;
    for (auto& q : sent) per_id[std::string(q.at("alternate_id").as_string())].push_back(q);
    int reads = 0;
    for (auto& [id, qs] : per_id) {
        ASSERT_TRUE(planned_action.count(id)) << id << " was sent but not planned";
        // The last write is what plan showed (a guard that failed adds a read and a re-planned patch).
        const auto& last = qs.back();
        ASSERT_TRUE(last.contains("body")) << id << ": the last request of an identity is a write";
        auto body = json::parse(std::string(last.at("body").as_string()));
        auto shown = json::parse(planned_body[id]);
        if (planned_action[id] == "patch" && qs.size() == 1) {
            EXPECT_EQ(body.at("Operations"), shown) << id;
        }
        if (planned_action[id] == "deactivate") {
            EXPECT_EQ(body.at("Operations"), shown) << id;
        }
        for (auto& q : qs) reads += q.at("method") == "GET";
    }
    EXPECT_EQ(per_id.size(), planned_action.size()) << "every planned identity was sent";
    EXPECT_LE(sent.size(), 1300u + 2u * static_cast<unsigned>(reads))
        << "one request per changed row, plus a read and a patch per failed guard";

    // Every present profile's owned fields equal day 2's source; the other client's additions stay.
    auto want = w.desired();
    auto have = w.profiles();
    int compared = 0;
    for (auto& [id, body] : want) {
        ASSERT_TRUE(have.count(id)) << id;
        EXPECT_EQ(owned_view(have[id]), canonical(body)) << id;
        ++compared;
    }
    EXPECT_EQ(compared, 9900);
    for (int i = 0; i < 50; ++i) {
        auto id = fields(day1[static_cast<std::size_t>(i * 7)])[0];
        auto text = json::serialize(have[id]);
        EXPECT_THAT(text, HasSubstr("ForeignField")) << id;
        EXPECT_THAT(text, HasSubstr("foreign@other.example")) << id;
    }
    for (auto& id : dropped)
        EXPECT_EQ(have[id].at("IsActive"), json::value(false)) << id << " left the source: deactivated";

    // Day 3: nothing changed, nothing sent.
    r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(w.requests_since(seen).empty());
}

INSTANTIATE_TEST_SUITE_P(Servers, MirrorDayTwo, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "StampingElements" : "Forgiving"; });

TEST(Mirror, DroppingMoreThanTheLimitRemovesNothingUntilAllowed) {
    MirrorWorkspace w;
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 300");
    auto all = lines_of(gen.out);
    std::string text;
    for (auto& l : all) text += l + "\n";
    w.dir.write("profiles.csv", text);
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    text.clear();
    for (std::size_t i = 0; i < all.size(); ++i)
        if (i == 0 || i % 10 >= 3) text += all[i] + "\n";  // 30% dropped
    w.dir.write("profiles.csv", text);
    std::size_t seen = 0;
    w.requests_since(seen);
    auto r = w.prefsync("sync crm-nightly");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("max_missing (5%)"));
    EXPECT_THAT(r.err, HasSubstr("--allow-mass-delete"));
    EXPECT_TRUE(w.requests_since(seen).empty()) << "no removal sent";
    r = w.prefsync("sync crm-nightly --allow-mass-delete");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    auto removals = w.requests_since(seen);
    EXPECT_EQ(removals.size(), 90u);
    int inactive = 0;
    for (auto& [id, p] : w.profiles()) inactive += p.contains("IsActive") && p.at("IsActive") == json::value(false);
    EXPECT_EQ(inactive, 90);
}

TEST(Mirror, ARowRejectedForItsBodyIsStillInTheSourceAndOneWithoutAnIdentityStopsAllRemovals) {
    MirrorWorkspace w("on_missing: delete");
    auto all = lines_of(testing::run(quote(PREFSYNC_GEN_PROFILES) + " 100").out);
    auto write = [&](const std::vector<std::string>& lines) {
        std::string text;
        for (auto& l : lines) text += l + "\n";
        w.dir.write("profiles.csv", text);
    };
    write(all);
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    ASSERT_EQ(w.profiles().size(), 100u);

    // Row C00000005's date no longer parses (its identity does); C00000010 left the source.
    auto day2 = all;
    static const std::regex date(R"(\d\d/\d\d/\d{4})");
    ASSERT_TRUE(day2[5].starts_with("C00000005,"));
    day2[5] = std::regex_replace(day2[5], date, "99/99/2025", std::regex_constants::format_first_only);
    // C00000007's first name is not UTF-8 (the source refuses the row; its identity reads).
    ASSERT_TRUE(day2[7].starts_with("C00000007,"));
    auto f7 = fields(day2[7]);
    f7[1] = "Caf\xC3";
    day2[7] = join(f7);
    ASSERT_TRUE(day2[10].starts_with("C00000010,"));
    day2.erase(day2.begin() + 10);
    write(day2);
    auto r = w.prefsync("sync crm-nightly");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;  // rejected rows
    auto profiles = w.profiles();
    EXPECT_EQ(profiles.count("C00000005"), 1u) << "rejected for its date, still in the source: not deleted";
    EXPECT_EQ(profiles.count("C00000007"), 1u) << "rejected for its name's bytes, still in the source: not deleted";
    EXPECT_EQ(profiles.count("C00000010"), 0u) << "left the source: deleted";
    EXPECT_EQ(profiles.size(), 99u);

    // A row whose identity is empty may be any profile's: nothing is removed while it is there.
    auto day3 = day2;
    ASSERT_TRUE(day3[20].starts_with("C00000021,"));
    day3[20] = day3[20].substr(day3[20].find(','));
    auto dropped = day3[30].substr(0, day3[30].find(','));
    day3.erase(day3.begin() + 30);
    write(day3);
    auto plan = w.prefsync("plan crm-nightly --json");
    EXPECT_EQ(plan.exit_code, 2) << plan.err << plan.out;
    EXPECT_THAT(plan.out, HasSubstr("no readable identity")) << "the plan says what the sync will do";
    EXPECT_THAT(plan.out, Not(HasSubstr(dropped))) << "and plans no removal";
    std::size_t seen = 0;
    w.requests_since(seen);
    r = w.prefsync("sync crm-nightly");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("left alone"));
    EXPECT_THAT(r.err, HasSubstr("no readable identity"));
    EXPECT_EQ(w.profiles().size(), 99u) << "neither C00000021 nor the dropped row deleted";
    for (auto& req : w.requests_since(seen)) EXPECT_NE(req.at("method"), "DELETE") << json::serialize(req);
}

TEST(Mirror, DuplicateIdsTheLastOccurrenceWinsOnEveryRunAndAResyncSendsNothing) {
    MirrorWorkspace w("on_missing: ignore");
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 200");
    auto all = lines_of(gen.out);
    std::string text = all[0] + "\n";
    for (std::size_t i = 1; i < all.size(); ++i) text += all[i] + "\n";
    // 20 ids again, later, with another first name: these later rows must win, every run.
    for (std::size_t i = 1; i <= 20; ++i) {
        auto f = fields(all[i]);
        f[1] = "Later";
        text += join(f) + "\n";
    }
    w.dir.write("profiles.csv", text);
    for (int run = 0; run < 3; ++run) {
        std::size_t seen = 0;
        w.requests_since(seen);
        auto r = w.prefsync("sync crm-nightly");
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr("20 duplicate id(s) (last occurrence wins)"));
        auto have = w.profiles();
        for (std::size_t i = 1; i <= 20; ++i)
            EXPECT_EQ(have[fields(all[i])[0]].at("CustomerName").at("FirstName"), "Later") << "run " << run;
        if (run > 0) {
            EXPECT_TRUE(w.requests_since(seen).empty()) << "run " << run << ": an unchanged file is quiet";
        }
    }
}

// Sending overlaps reading: here the first rows of the 20 ids are sent long before their
// later rows are read (batches of 1,000). The later rows still win, an unchanged file is
// quiet, and a change to the later rows is one request per id.
TEST(Mirror, DuplicateIdsFarApartInALargeFileAreHeldUntilTheReadEnds) {
    MirrorWorkspace w("on_missing: ignore");
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 3000");
    auto all = lines_of(gen.out);
    auto file = [&](const std::string& later) {
        std::string text;
        for (auto& l : all) text += l + "\n";
        for (std::size_t i = 1; i <= 20; ++i) {
            auto f = fields(all[i]);
            f[1] = later;
            text += join(f) + "\n";
        }
        return text;
    };
    auto later_wins = [&](const std::string& later) {
        auto have = w.profiles();
        for (std::size_t i = 1; i <= 20; ++i)
            if (have[fields(all[i])[0]].at("CustomerName").at("FirstName") != json::value(later)) return false;
        return true;
    };
    w.dir.write("profiles.csv", file("Later"));
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    EXPECT_TRUE(later_wins("Later"));
    std::size_t seen = 0;
    w.requests_since(seen);
    auto r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_TRUE(w.requests_since(seen).empty()) << "an unchanged file is quiet";
    w.dir.write("profiles.csv", file("Changed"));
    r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.requests_since(seen).size(), 20u) << "one request per changed id, never its earlier row";
    EXPECT_TRUE(later_wins("Changed"));
}

TEST(Mirror, AProfileChangedByAnotherClientMakesTheGuardFailAndIsReadAndPatchedOnce) {
    for (int status : {409, 400}) {
        MirrorWorkspace w("on_missing: ignore");
        w.emu.set_faults("{\"patch_test_status\": " + std::to_string(status) + "}");
        auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 5");
        auto all = lines_of(gen.out);
        std::string text;
        for (auto& l : all) text += l + "\n";
        w.dir.write("profiles.csv", text);
        ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
        auto id = fields(all[1])[0];
        // Someone puts an email before ours: our indices are off by one.
        auto pid = w.profiles()[id].at("ProfileId").to_number<std::int64_t>();
        auto reply = w.emu.store.patch(
            pid,
            json::parse(
                R"([{"op":"add","path":"/Emails/0","value":{"EmailAddress":"first@other.example","EmailAddressType":"Other"}}])")
                .as_array());
        ASSERT_LT(reply.status, 300);
        auto f = fields(all[1]);
        f[3] = "changed@new.example";  // email
        all[1] = join(f);
        text.clear();
        for (auto& l : all) text += l + "\n";
        w.dir.write("profiles.csv", text);
        std::size_t seen = 0;
        w.requests_since(seen);
        auto r = w.prefsync("sync crm-nightly");
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        auto sent = w.requests_since(seen);
        ASSERT_EQ(sent.size(), 3u) << "patch (guard fails), read, patch";
        EXPECT_EQ(sent[0].at("status"), status);
        EXPECT_EQ(sent[1].at("method"), "GET");
        auto emails = json::serialize(w.profiles()[id].at("Emails"));
        EXPECT_THAT(emails, HasSubstr("first@other.example")) << "the other client's email stays";
        EXPECT_THAT(emails, HasSubstr("changed@new.example"));
    }
}

TEST(Mirror, AnElementDeactivatedInPlaceKeepsItsIndexSoTheNextPatchIsRightFirstTime) {
    // The server deactivates an element where it is and appends new ones; the journal once
    // kept the wanted elements first and the deactivated ones after, so every later patch
    // of the profile guarded the wrong index: a 409, a read and a second patch each time.
    MirrorWorkspace w("on_missing: ignore");
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 3");
    auto all = lines_of(gen.out);
    auto write = [&] {
        std::string text;
        for (auto& l : all) text += l + "\n";
        w.dir.write("profiles.csv", text);
    };
    write();
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    auto id = fields(all[1])[0];
    std::size_t seen = 0;
    for (auto email : {"second@new.example", "third@new.example"}) {
        auto f = fields(all[1]);
        f[3] = email;
        all[1] = join(f);
        write();
        w.requests_since(seen);
        auto r = w.prefsync("sync crm-nightly");
        ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
        auto sent = w.requests_since(seen);
        ASSERT_EQ(sent.size(), 1u) << email << ": one patch, its guards right";
        EXPECT_EQ(sent[0].at("method"), "PATCH");
        EXPECT_EQ(sent[0].at("status"), 200);
    }
    // The row's personal email (then its work email): deactivated where it was, the new
    // ones appended.
    auto emails = w.profiles()[id].at("Emails").as_array();
    ASSERT_EQ(emails.size(), 4u) << emails;
    EXPECT_EQ(emails[0].at("IsActive"), false) << emails;
    EXPECT_EQ(emails[1].at("EmailAddressType"), "Work") << emails;
    EXPECT_EQ(emails[2].at("EmailAddress"), "second@new.example");
    EXPECT_EQ(emails[2].at("IsActive"), false);
    EXPECT_EQ(emails[3].at("EmailAddress"), "third@new.example");
}

TEST(Mirror, ByProfileIdAChangedProfileIsReadWithItsInactiveElements) {
    // Read by profile id (R2), a profile shows no inactive elements, so the indices of a
    // patch planned from it are off wherever one was deactivated: the patch failed twice and
    // the row was failed for good. Read again by one of its alternate ids with matchInactive
    // (R1), they are the server's.
    MirrorWorkspace w;
    w.config =
        w.dir.write("pid.yaml",
                    "api: { base_url: \"${PREFSYNC_BASE_URL}\", client_id: \"12345\", token_env: PREFSYNC_TOKEN }\n"
                    "journal: { path: \"${PREFSYNC_JOURNAL}\" }\n"
                    "jobs:\n  by-pid:\n    mode: mirror\n    source: { type: csv, path: pid.csv }\n"
                    "    identity: { profile_id_column: pid }\n    mapping:\n"
                    "      CustomerName.FirstName: first\n"
                    "      Emails: [ { EmailAddress: email, EmailAddressType: { const: Personal } } ]\n");
    auto created = w.emu.store.upsert({"CRMID", "C1"}, json::object{{"CustomerType", "Retail"}});
    ASSERT_LT(created.status, 300);
    auto pid = w.emu.store.dump().at(0).at("ProfileId").to_number<std::int64_t>();
    auto sync = [&](const std::string& first, const std::string& email) {
        w.dir.write("pid.csv", "pid,first,email\n" + std::to_string(pid) + "," + first + "," + email + "\n");
        return w.prefsync("sync by-pid");
    };
    ASSERT_EQ(sync("Zed", "e1@example.com").exit_code, 0);
    ASSERT_EQ(sync("Zed", "e2@example.com").exit_code, 0);  // e1 deactivated in place, e2 appended
    // Another client adds an email first: every index of ours is off by one.
    ASSERT_LT(
        w.emu.store
            .patch(pid, json::parse(R"([{"op":"add","path":"/Emails/0","value":{"EmailAddress":"other@x.example",)"
                                    R"("EmailAddressType":"Other"}}])")
                            .as_array())
            .status,
        300);
    std::size_t seen = 0;
    w.requests_since(seen);
    auto r = sync("Zeddy", "e3@example.com");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    auto sent = w.requests_since(seen);
    ASSERT_EQ(sent.size(), 4u) << "patch (guard fails), R2, R1 with matchInactive, patch";
    EXPECT_EQ(sent[0].at("status"), 409);
    EXPECT_THAT(std::string(sent[2].at("target").as_string()), HasSubstr("matchInactive=true"));
    EXPECT_EQ(sent[3].at("status"), 200);
    auto p = w.emu.store.dump().at(0).as_object();
    EXPECT_EQ(p.at("CustomerName").at("FirstName"), "Zeddy");
    auto emails = json::serialize(p.at("Emails"));
    EXPECT_THAT(emails, HasSubstr("other@x.example"));
    EXPECT_THAT(emails, HasSubstr("e3@example.com"));
}

TEST(Mirror, APatchWhoseAnswerWasLostIsNeverAppliedTwice) {
    MirrorWorkspace w("on_missing: ignore");
    auto gen = testing::run(quote(PREFSYNC_GEN_PROFILES) + " 3");
    auto all = lines_of(gen.out);
    std::string text;
    for (auto& l : all) text += l + "\n";
    w.dir.write("profiles.csv", text);
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    auto f = fields(all[1]);
    f[3] = "appended@new.example";
    all[1] = join(f);
    text.clear();
    for (auto& l : all) text += l + "\n";
    w.dir.write("profiles.csv", text);
    // Every write lands and goes unanswered: a blind re-send would append the email again.
    w.emu.set_faults(R"({"ambiguous": 1.0})");
    auto r = w.prefsync("sync crm-nightly");
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    auto emails = w.profiles()[f[0]].at("Emails").as_array();
    int count = 0;
    for (auto& e : emails) count += e.at("EmailAddress") == "appended@new.example";
    EXPECT_EQ(count, 1);
}

int count_emails(const json::object& profile, std::string_view address) {
    int count = 0;
    if (const auto* emails = profile.if_contains("Emails"))
        for (auto& e : emails->as_array()) count += e.at("EmailAddress") == json::value(address);
    return count;
}

std::string csv_text(const std::vector<std::string>& lines) {
    std::string text;
    for (auto& l : lines) text += l + "\n";
    return text;
}

// A sync of `lines` (the header first) as the source, and the requests it sent.
struct Synced {
    testing::RunResult result;
    std::vector<json::object> sent;
};
Synced sync_of(MirrorWorkspace& w, const std::vector<std::string>& lines) {
    w.dir.write("profiles.csv", csv_text(lines));
    std::size_t seen = 0;
    w.requests_since(seen);
    Synced out{w.prefsync("sync crm-nightly"), {}};
    out.sent = w.requests_since(seen);
    return out;
}

TEST(Mirror, AnEmailAnotherClientAddedIsTakenOverWhenTheSourceListsItNotAddedTwice) {
    MirrorWorkspace w("on_missing: ignore");
    auto all = lines_of(testing::run(quote(PREFSYNC_GEN_PROFILES) + " 3").out);
    w.dir.write("profiles.csv", csv_text(all));
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    auto f = fields(all[1]);
    auto pid = w.profiles()[f[0]].at("ProfileId").to_number<std::int64_t>();
    // Another client adds the address the source is about to list: our last accepted body
    // does not know it, and an append on its word would put it there twice.
    auto reply = w.emu.store.patch(
        pid,
        json::parse(R"([{"op":"add","path":"/Emails/-","value":{"EmailAddress":"shared@other.example"}}])").as_array());
    ASSERT_LT(reply.status, 300);
    f[3] = "shared@other.example";
    all[1] = join(f);
    auto [r, sent] = sync_of(w, all);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    ASSERT_EQ(sent.size(), 3u) << "patch (the array's test fails), read, patch";
    EXPECT_EQ(sent[0].at("status"), 409);
    EXPECT_EQ(sent[1].at("method"), "GET");
    EXPECT_EQ(count_emails(w.profiles()[f[0]], "shared@other.example"), 1);
    // And the next run, planned from the body kept after the read, sends nothing.
    auto next = sync_of(w, all);
    ASSERT_EQ(next.result.exit_code, 0);
    EXPECT_EQ(next.sent.size(), 0u);
}

// A server that writes its own `Edited` into every element (as the reference's profiles show)
// fails every test of a whole array as the client last sent it, so each append cost a failed
// patch, a read and a patch. After three such failures and no pass, the run reads before it
// appends: two requests. One request in flight, so the rows after the switch are known.
TEST(Mirror, AServerThatStampsElementsMakesTheRunReadBeforeItAppends) {
    MirrorWorkspace w("on_missing: ignore");
    auto config = testing::read_file(w.config);
    config.replace(config.find("connections: 16"), 15, "connections: 1");
    w.dir.write("prefsync.yaml", config);
    w.emu.set_faults(R"({"stamp_elements": true})");
    auto all = lines_of(testing::run(quote(PREFSYNC_GEN_PROFILES) + " 10").out);
    w.dir.write("profiles.csv", csv_text(all));
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    ASSERT_THAT(json::serialize(w.profiles()[fields(all[1])[0]]), HasSubstr("\"CreatedBy\""));
    for (std::size_t i = 1; i < all.size(); ++i) {
        auto f = fields(all[i]);
        f[3] = "new" + std::to_string(i) + "@example.org";
        all[i] = join(f);
    }
    auto [r, sent] = sync_of(w, all);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    int failed = 0, reads = 0;
    for (const auto& s : sent) {
        failed += s.at("status") == json::value(409);
        reads += s.at("method") == json::value("GET");
    }
    EXPECT_EQ(failed, 3) << "then the appends are read first";
    EXPECT_EQ(reads, 10) << "one per row";
    EXPECT_EQ(sent.size(), 3u * 3 + 7 * 2);
    EXPECT_THAT(r.err, HasSubstr("Appends to a collection are read first"));
    EXPECT_THAT(r.err, HasSubstr("collection=/Emails"));
    for (std::size_t i = 1; i < all.size(); ++i) {
        auto f = fields(all[i]);
        EXPECT_EQ(count_emails(w.profiles()[f[0]], f[3]), 1) << f[0];
    }
    // The bodies kept after the reads are the next run's base: it sends nothing.
    auto next = sync_of(w, all);
    ASSERT_EQ(next.result.exit_code, 0);
    EXPECT_EQ(next.sent.size(), 0u);
}

TEST(Mirror, AJobSwitchedToMirrorInARunThatClearsAnEmailSaysItStaysAndNeverAddsItTwiceLater) {
    MirrorWorkspace w("on_missing: ignore");
    auto mirror_config = testing::read_file(w.config);
    auto upsert_config = mirror_config;
    upsert_config.replace(upsert_config.find("mode: mirror"), 12, "mode: upsert");
    w.dir.write("prefsync.yaml", upsert_config);
    auto all = lines_of(testing::run(quote(PREFSYNC_GEN_PROFILES) + " 3").out);
    w.dir.write("profiles.csv", csv_text(all));
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    auto f = fields(all[1]);
    const std::string email = f[3];
    ASSERT_FALSE(email.empty());
    // Switched to mirror in the run that clears the email: no diff base, so it goes out
    // whole, as a merge that cannot clear anything. Said by plan and by the sync.
    w.dir.write("prefsync.yaml", mirror_config);
    f[3] = "";
    all[1] = join(f);
    // Twice, as a duplicate id: one profile goes out, and is counted once.
    auto twice = all;
    twice.push_back(all[1]);
    w.dir.write("profiles.csv", csv_text(twice));
    auto plan = w.prefsync("plan crm-nightly");
    EXPECT_THAT(plan.out, HasSubstr("warning: 1 changed profile(s) this job synced in another mode go out whole"))
        << plan.out << plan.err;
    auto r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("1 changed profile(s) this job synced in another mode go out whole"));
    EXPECT_THAT(r.err, Not(HasSubstr(email))) << "no personal data in the warning";
    EXPECT_EQ(count_emails(w.profiles()[f[0]], email), 1) << "the limit the warning states";
    // The source lists it again: the profile has it already, so it is taken over, not
    // appended a second time.
    f[3] = email;
    all[1] = join(f);
    w.dir.write("profiles.csv", csv_text(all));
    r = w.prefsync("sync crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.err, Not(HasSubstr("go out whole")));
    EXPECT_EQ(count_emails(w.profiles()[f[0]], email), 1);
    // Cleared again, now with a diff base that owns it: it goes.
    f[3] = "";
    all[1] = join(f);
    w.dir.write("profiles.csv", csv_text(all));
    ASSERT_EQ(w.prefsync("sync crm-nightly").exit_code, 0);
    auto emails = w.profiles()[f[0]].at("Emails").as_array();
    for (auto& e : emails) {
        if (e.at("EmailAddress") != json::value(email)) continue;
        EXPECT_EQ(e.as_object().if_contains("IsActive") ? e.at("IsActive") : json::value(true), json::value(false))
            << json::serialize(e);
    }
}

}  // namespace
}  // namespace prefsync
