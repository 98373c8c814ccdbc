// Which API a push job's journal state belongs to (push/target_guard.hpp).
#include "daemon/push/target_guard.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace prefsync::push {
namespace {

using ::testing::HasSubstr;

config::Config api(const std::string& base_url, const std::string& client_id = "12345") {
    config::Config c;
    c.api.base_url = base_url;
    c.api.client_id = client_id;
    return c;
}

TEST(TargetOf, TheSameApiWrittenAnotherWayIsTheSameTarget) {
    auto base = target_of(api("https://api.example.com/Profiles/v2"));
    EXPECT_EQ(target_of(api("https://api.example.com/Profiles/v2/")), base);
    EXPECT_EQ(target_of(api("HTTPS://API.Example.COM/Profiles/v2")), base);
    EXPECT_EQ(target_of(api("https://api.example.com:443/Profiles/v2")), base);
    EXPECT_NE(target_of(api("https://sandbox.example.com/Profiles/v2")), base);
    EXPECT_NE(target_of(api("https://api.example.com:8443/Profiles/v2")), base);
    EXPECT_NE(target_of(api("http://api.example.com/Profiles/v2")), base);
    EXPECT_NE(target_of(api("https://api.example.com/Profiles/v3")), base);
    EXPECT_NE(target_of(api("https://api.example.com/Profiles/v2", "999")), base) << "another client";
}

TEST(GuardTarget, AJobsStateIsUsedOnlyWithTheApiItBelongsTo) {
    testing::TempDir dir;
    journal::Journal journal(dir.file("journal.db"));
    config::JobConfig job;
    job.name = "crm";
    auto sandbox = api("https://sandbox.example.com/Profiles/v2");
    auto production = api("https://api.example.com/Profiles/v2");

    // Nothing recorded: nothing refused; recorded once a run's write was accepted.
    guard_target(journal, sandbox, job, TargetUse::Check, 1);
    EXPECT_FALSE(journal.targets.get("crm"));
    record_target(journal, sandbox, job, 2);
    ASSERT_TRUE(journal.targets.get("crm"));
    EXPECT_EQ(journal.targets.get("crm")->shown, "https://sandbox.example.com/Profiles/v2 (client_id 12345)");
    record_target(journal, production, job, 3);
    EXPECT_EQ(journal.targets.get("crm")->target, target_of(sandbox)) << "recorded once, not replaced";
    guard_target(journal, api("https://sandbox.example.com/Profiles/v2/"), job, TargetUse::Check, 3);

    journal::NewUpdate u;
    u.identity = "CRMID:1";
    u.alt_type = "CRMID";
    u.alt_id = "1";
    u.hash = "00112233445566778899aabbccddeeff";
    u.body = "{}";
    journal.updates.enqueue("crm", u, 4, false);
    {
        try {
            guard_target(journal, production, job, TargetUse::Check, 5);
            ADD_FAILURE() << "another API's state was used";
        } catch (const TargetMoved& e) {
            EXPECT_THAT(e.what(), HasSubstr("sandbox.example.com"));
            EXPECT_THAT(e.what(), HasSubstr("api.example.com"));
            EXPECT_THAT(e.what(), HasSubstr("prefsync backfill crm --new-target"));
        }
    }
    EXPECT_EQ(journal.updates.counts("crm").pending(), 1) << "nothing forgotten by a refusal";
    EXPECT_THROW(guard_target(journal, sandbox, job, TargetUse::Adopt, 6), TargetMoved) << "the same API: kept";
    EXPECT_EQ(journal.updates.counts("crm").pending(), 1);

    guard_target(journal, production, job, TargetUse::Adopt, 7);
    EXPECT_EQ(journal.updates.counts("crm").pending(), 0) << "the sandbox's state is forgotten";
    EXPECT_EQ(journal.targets.get("crm")->target, target_of(production));
    guard_target(journal, production, job, TargetUse::Check, 8);
    EXPECT_THROW(guard_target(journal, sandbox, job, TargetUse::Check, 9), TargetMoved) << "and back is a move too";
}

// A journal without a record for the job (written before version 11): --new-target is how a
// job moved in the same step as the upgrade takes up its new API.
TEST(GuardTarget, ANewTargetIsTakenUpWhereNoneIsRecorded) {
    testing::TempDir dir;
    journal::Journal journal(dir.file("journal.db"));
    config::JobConfig job;
    job.name = "crm";
    journal::NewUpdate u{"CRMID:1", "CRMID", "1", std::nullopt, "in.csv:2", "{}", "00112233445566778899aabbccddeeff"};
    journal.updates.enqueue("crm", u, 4, false);
    auto production = api("https://api.example.com/Profiles/v2");
    guard_target(journal, production, job, TargetUse::Adopt, 5);
    EXPECT_EQ(journal.updates.counts("crm").pending(), 0);
    ASSERT_TRUE(journal.targets.get("crm"));
    EXPECT_EQ(journal.targets.get("crm")->target, target_of(production));
}

}  // namespace
}  // namespace prefsync::push
