#include "daemon/journal/journal.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "tests/support/temp_dir.hpp"

namespace prefsync::journal {
namespace {

NewUpdate update(const std::string& id, const std::string& hash, const std::string& body = "{}") {
    NewUpdate u;
    u.identity = "CRMID:" + id;
    u.alt_type = "CRMID";
    u.alt_id = id;
    u.origin = "in.csv:" + id;
    u.body = body;
    u.hash = hash;
    return u;
}

struct JournalTest : ::testing::Test {
    testing::TempDir dir;
    Journal j{dir.file("state/journal.db")};
};

TEST_F(JournalTest, FileIsPrivateAndIntact) {
    struct stat st {};
    ASSERT_EQ(stat(dir.file("state/journal.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
    EXPECT_TRUE(j.db.integrity_ok());
}

TEST_F(JournalTest, ClaimLeasesCompleteRecordsAndChangeDetectionSkipsUnchanged) {
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h2"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 1000, false), EnqueueResult::AlreadyPending);
    auto claimed = j.updates.claim("crm", 10, 2000, 60000);
    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].identity, "CRMID:1");
    EXPECT_EQ(claimed[0].body, "{}");
    EXPECT_TRUE(j.updates.claim("crm", 10, 3000, 60000).empty()) << "leased";
    EXPECT_EQ(j.updates.counts("crm").inflight, 2);

    j.updates.complete("crm",
                       {{claimed[0].id, State::Done, 200, "", 0, false, true, 77},
                        {claimed[1].id, State::Accepted, 202, "", 0, false, true, 78}},
                       4000);
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.done, 1);
    EXPECT_EQ(c.accepted, 1);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 5000, false), EnqueueResult::Unchanged);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 5000, true), EnqueueResult::Queued) << "forced (backfill)";
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h2b"), 5000, false), EnqueueResult::Queued) << "changed";
    auto again = j.updates.claim("crm", 10, 6000, 60000);
    ASSERT_EQ(again.size(), 2u);
    EXPECT_EQ(again[1].profile_id, 78) << "the profile id learned from the API is kept";
    EXPECT_EQ(j.updates.enqueue("other", update("1", "h1"), 5000, false), EnqueueResult::Queued) << "per job";
}

TEST_F(JournalTest, NewerChangeSupersedesAQueuedOne) {
    j.updates.enqueue("crm", update("1", "old", R"({"v":1})"), 1000, false);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "new", R"({"v":2})"), 1001, false), EnqueueResult::Queued);
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.queued, 1);
    EXPECT_EQ(j.updates.history("crm", "CRMID:1", 10).size(), 1u) << "the superseded update is gone";
    auto claimed = j.updates.claim("crm", 10, 2000, 60000);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].body, R"({"v":2})");
}

TEST_F(JournalTest, RetryWaitsUntilDueAndExpiredLeasesComeBackToBeResolved) {
    j.updates.enqueue("crm", update("1", "h"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    Completion retry{claimed[0].id, State::Retry, 503, "503 service unavailable", 5000, false, true, {}};
    j.updates.complete("crm", {retry}, 1100);
    EXPECT_TRUE(j.updates.claim("crm", 10, 4999, 500).empty());
    EXPECT_EQ(j.updates.next_due("crm"), 5000);
    auto due = j.updates.claim("crm", 10, 5000, 500);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].attempts, 1);
    EXPECT_FALSE(due[0].resolve);
    EXPECT_TRUE(j.updates.claim("crm", 10, 5501, 500).empty()) << "never re-claimed by the process holding it";
    // The process dies with it inflight: after the lease another process claims it, to resolve.
    Journal restarted(dir.file("state/journal.db"));
    EXPECT_TRUE(restarted.updates.claim("crm", 10, 5499, 500).empty()) << "leased";
    auto after_crash = restarted.updates.claim("crm", 10, 5501, 500);
    ASSERT_EQ(after_crash.size(), 1u);
    EXPECT_TRUE(after_crash[0].resolve);
}

TEST_F(JournalTest, HeldRowsAreRenewedSoNoOtherProcessTakesThemDuringALongPause) {
    j.updates.enqueue("crm", update("1", "h"), 1000, false);
    ASSERT_EQ(j.updates.claim("crm", 10, 1000, 500).size(), 1u);
    Journal other(dir.file("state/journal.db"));
    // A Retry-After longer than the lease: the holder renews while it waits.
    j.updates.renew("crm", 1400, 500);
    EXPECT_TRUE(other.updates.claim("crm", 10, 1600, 500).empty()) << "renewed until 1900";
    EXPECT_TRUE(j.updates.claim("crm", 10, 5000, 500).empty()) << "its own rows, even expired";
    EXPECT_EQ(other.updates.claim("crm", 10, 1901, 500).size(), 1u) << "the holder stopped renewing (it died)";
}

TEST_F(JournalTest, ASupersededWriteOfUnknownOutcomeHandsItsResolveMarkToItsSuccessor) {
    j.updates.enqueue("crm", update("1", "old"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    // Sent without an answer: retry, resolve first.
    j.updates.complete("crm", {{claimed[0].id, State::Retry, 0, "no answer", 2000, true, true, {}}}, 1100);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "new"), 1200, false), EnqueueResult::Queued);
    auto next = j.updates.claim("crm", 10, 3000, 500);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].hash, "new");
    EXPECT_TRUE(next[0].resolve) << "the old write may have landed";
    // Released unsent (a stop): the mark stays.
    j.updates.complete("crm", {{next[0].id, State::Queued, 0, "", 0, true, false, {}}}, 3100);
    Journal other(dir.file("state/journal.db"));
    auto again = other.updates.claim("crm", 10, 3200, 500);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_TRUE(again[0].resolve);
    EXPECT_EQ(again[0].attempts, 0) << "a release is not an attempt";
}

// A create sent without an answer, looked up (found: profile 77), its merge unanswered too,
// then given up: the row read again from the source must look before it writes, or it is
// created a second time.
TEST_F(JournalTest, AFailureThatGaveUpWithItsOutcomeUnknownHandsItsMarkAndProfileIdToTheNextRow) {
    j.updates.enqueue("crm", update("1", "h"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm", {{claimed[0].id, State::Retry, 0, "no answer", 1100, true, true, 77}}, 1050);
    auto again = j.updates.claim("crm", 10, 1200, 500);
    ASSERT_EQ(again.size(), 1u);
    j.updates.complete("crm", {{again[0].id, State::Failed, 0, "gave up: no answer", 0, false, true, {}}}, 1300);
    ASSERT_EQ(j.updates.counts("crm").failed, 1);
    EXPECT_EQ(j.updates.history("crm", "CRMID:1", 1).at(0).profile_id, 77) << "explain labels it an update";
    // The next sync reads the row again (unchanged: nothing was recorded as accepted).
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h"), 2000, false), EnqueueResult::Queued);
    auto next = j.updates.claim("crm", 10, 2000, 500);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_TRUE(next[0].resolve) << "its predecessor's write may have landed";
    EXPECT_EQ(next[0].profile_id, 77) << "and the profile it found";
    EXPECT_EQ(j.updates.counts("crm").failed, 0) << "replaced";
}

// The API had h0; h1 was sent without an answer (it may have landed). The source goes back
// to h0: not "unchanged", since the API may hold h1 now. Sent again, looking first.
TEST_F(JournalTest, ARowBackAtTheSyncedHashIsSentWhenAWriteThatMayHaveLandedIsUnresolved) {
    j.synced.record("crm", "CRMID:1", "h0", 5, 500);
    j.synced.record("crm", "CRMID:2", "h0", 6, 500);
    j.updates.enqueue("crm", update("1", "h1"), 1000, false);
    j.updates.enqueue("crm", update("2", "h1"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    ASSERT_EQ(claimed.size(), 2u);
    std::vector<Completion> retries;
    for (auto& c : claimed) retries.push_back({c.id, State::Retry, 0, "no answer", 1100, true, true, {}});
    j.updates.complete("crm", retries, 1050);
    // CRMID:2 is given up (failed, its mark kept); CRMID:1 still waits to retry.
    for (auto& c : j.updates.claim("crm", 10, 1200, 500))
        if (c.identity == "CRMID:2")
            j.updates.complete("crm", {{c.id, State::Failed, 0, "gave up: no answer", 0, false, true, {}}}, 1300);
        else
            j.updates.complete("crm", {{c.id, State::Retry, 0, "no answer", 1400, true, true, {}}}, 1300);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h0"), 2000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h0"), 2000, false), EnqueueResult::Queued);
    auto next = j.updates.claim("crm", 10, 3000, 500);
    ASSERT_EQ(next.size(), 2u);
    for (auto& c : next) {
        EXPECT_EQ(c.hash, "h0") << c.identity;
        EXPECT_TRUE(c.resolve) << c.identity << ": the lost write may have landed";
    }
    EXPECT_EQ(j.updates.counts("crm").failed, 0);
}

// A body the API refused for what it is (Completion::refused) is not queued again while its
// row is unchanged, under the same refusal scope, for kRefusalHeld: it would be refused by
// every sync. A failure the producer did not mark (a 403, no answer), a changed row, a forced
// one (backfill), another scope (a mode or base_url changed) and `retry` are sent.
Completion refused_answer(std::int64_t id) {
    Completion c{id, State::Failed, 400, "400 bad request", 0, false, true, {}};
    c.refused = true;
    return c;
}

TEST_F(JournalTest, ABodyTheApiRefusedIsNotQueuedAgainWhileItsRowIsUnchanged) {
    j.updates.scope_refusals("crm", 7);
    for (auto id : {"1", "2", "3"}) j.updates.enqueue("crm", update(id, std::string("h") + id), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    ASSERT_EQ(claimed.size(), 3u);
    j.updates.complete("crm",
                       {refused_answer(claimed[0].id),
                        {claimed[1].id, State::Failed, 403, "403 forbidden", 0, false, true, {}},
                        {claimed[2].id, State::Failed, 0, "gave up: no answer", 0, false, true, {}}},
                       1100);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2000, false), EnqueueResult::StillRefused);
    EXPECT_TRUE(j.updates.refused("crm", "CRMID:1", "h1", 7, 2000)) << "as plan sees it";
    EXPECT_FALSE(j.updates.refused("crm", "CRMID:1", "other", 7, 2000));
    EXPECT_FALSE(j.updates.refused("crm", "CRMID:1", "h1", 8, 2000)) << "another scope";
    EXPECT_FALSE(j.updates.refused("crm", "CRMID:1", "h1", 7, 1100 + UpdateQueue::kRefusalHeld)) << "held no longer";
    ASSERT_EQ(j.updates.history("crm", "CRMID:1", 5).size(), 1u);
    EXPECT_EQ(j.updates.history("crm", "CRMID:1", 5)[0].refused_scope, 7) << "for explain";
    EXPECT_EQ(j.updates.history("crm", "CRMID:2", 5)[0].refused_scope, 0);
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h2"), 2000, false), EnqueueResult::Queued)
        << "a 403 is no verdict on the body: sent again";
    EXPECT_EQ(j.updates.enqueue("crm", update("3", "h3"), 2000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").failed, 1) << "the refused one stays failed";

    // Another scope (the job's mode or base_url changed): sent. So is it after kRefusalHeld.
    j.updates.scope_refusals("crm", 8);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2000, false), EnqueueResult::Queued);
    auto sent = j.updates.claim("crm", 10, 2000, 500);
    std::vector<Completion> answers;
    for (auto& c : sent)
        answers.push_back(c.identity == "CRMID:1" ? refused_answer(c.id)
                                                  : Completion{c.id, State::Done, 200, "", 0, false, true, {}});
    ASSERT_EQ(answers.size(), 3u);
    j.updates.complete("crm", answers, 2200);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 3000, false), EnqueueResult::StillRefused);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2200 + UpdateQueue::kRefusalHeld, false),
              EnqueueResult::Queued)
        << "sent again once a refusal is kRefusalHeld old: the server may have changed";
    auto again = j.updates.claim("crm", 10, 2200 + UpdateQueue::kRefusalHeld, 500);
    ASSERT_EQ(again.size(), 1u);
    j.updates.complete("crm", {refused_answer(again[0].id)}, 3300);

    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 4000, true), EnqueueResult::Queued) << "a backfill sends it";
    auto forced = j.updates.claim("crm", 10, 4000, 500);
    ASSERT_EQ(forced.size(), 1u);
    j.updates.complete("crm", {refused_answer(forced[0].id)}, 4100);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "changed"), 5000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 5000, false), EnqueueResult::Queued)
        << "the changed row superseded the failure: a later row back at the refused body is sent";
    EXPECT_EQ(j.updates.counts("crm").failed, 0);
    auto last = j.updates.claim("crm", 10, 5000, 500);
    ASSERT_EQ(last.size(), 1u);
    j.updates.complete("crm", {refused_answer(last[0].id)}, 5100);
    EXPECT_EQ(j.updates.retry_failed("crm", std::nullopt, 6000), 1) << "retry sends it";
    EXPECT_EQ(j.updates.counts("crm").queued, 1);
    EXPECT_EQ(j.updates.history("crm", "CRMID:1", 1)[0].refused_scope, 0) << "re-queued: no longer a refusal";
}

// A refused write that followed a lost one (its row marked "resolve first") is refused all
// the same: the lost write was of the same body, so it did not land either. The row is not
// sent again, and the mark stays for the row that replaces the failure.
TEST_F(JournalTest, ARefusalOfAWriteThatFollowedALostOneOfTheSameBodyHoldsAndKeepsTheMark) {
    j.updates.scope_refusals("crm", 7);
    j.updates.enqueue("crm", update("1", "h1"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm", {{claimed[0].id, State::Retry, 0, "no answer", 1100, true, true, {}}}, 1050);
    auto again = j.updates.claim("crm", 10, 1200, 500);
    ASSERT_EQ(again.size(), 1u);
    j.updates.complete("crm", {refused_answer(again[0].id)}, 1300);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2000, false), EnqueueResult::StillRefused);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h2"), 2000, false), EnqueueResult::Queued);
    auto next = j.updates.claim("crm", 10, 2000, 500);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_TRUE(next[0].resolve) << "the changed row looks first";
}

// Without a scope (a journal used by something other than a push run), nothing is skipped.
// Which writes of identities not in `synced` may have reached the API (their row leaving the
// source is then a removal) and which never did (dropped): an unanswered attempt or a 5xx may
// have landed; a 4xx or nothing sent did not.
TEST_F(JournalTest, AWriteThatMayHaveLandedIsToldFromOneThatNeverReachedTheApi) {
    auto add = [&](const std::string& id) {
        NewUpdate u{"CRMID:" + id, "CRMID", id, std::nullopt, "in.csv:2", "{}", "00112233445566778899aabbccddeeff"};
        j.updates.enqueue("crm", u, 100, false);
    };
    for (auto id : {"A", "B", "C", "D", "E"}) add(id);
    auto claimed = j.updates.claim("crm", 10, 200, 60'000);
    ASSERT_EQ(claimed.size(), 5u);
    std::vector<Completion> done;
    auto answer = [&](std::size_t i, State state, int status, bool resolve) {
        Completion c;
        c.id = claimed[i].id;
        c.state = state;
        c.status = status;
        c.resolve = resolve;
        c.due_at = 10'000;
        c.error = "x";
        done.push_back(c);
    };
    answer(0, State::Failed, 400, false);  // A: refused
    answer(1, State::Retry, 502, false);   // B: a bad gateway, to retry
    answer(2, State::Failed, 0, true);     // C: given up unanswered
    answer(3, State::Retry, 429, false);   // D: throttled
    // E stays in flight
    j.updates.complete("crm", done, 300);
    std::map<std::string, bool> seen;
    j.updates.for_each_unsettled("crm", [&](const KnownIdentity& k, bool may_exist) { seen[k.identity] = may_exist; });
    EXPECT_EQ(seen,
              (std::map<std::string, bool>{
                  {"CRMID:A", false}, {"CRMID:B", true}, {"CRMID:C", true}, {"CRMID:D", false}, {"CRMID:E", true}}));
    EXPECT_EQ(j.updates.drop_unsent_writes("crm", "CRMID:A"), 1);
    EXPECT_EQ(j.updates.drop_unsent_writes("crm", "CRMID:E"), 0) << "never one in flight";
}

// What a run holds for its read (hold_pending) is released by a read cut short or a run that
// does not judge missing rows, not only by a complete read; a duplicate id's held row is not.
TEST_F(JournalTest, WritesHeldForAReadAreReleasedWhenTheReadCannotJudgeWhichRowsLeft) {
    NewUpdate a{"CRMID:A", "CRMID", "A", std::nullopt, "in.csv:2", "{}", "00112233445566778899aabbccddeeff"};
    NewUpdate b{"CRMID:B", "CRMID", "B", std::nullopt, "in.csv:3", "{}", "00112233445566778899aabbccddeeff"};
    b.held = true;  // a duplicate id's row: waits for the end of the read
    j.updates.enqueue("crm", a, 100, false);
    j.updates.enqueue("crm", b, 100, false);
    EXPECT_EQ(j.updates.hold_pending("crm"), 1);
    EXPECT_TRUE(j.updates.claim("crm", 10, 200, 60'000).empty()) << "both held";
    EXPECT_FALSE(j.updates.next_due("crm")) << "held rows are due at no time (a loop waiting for them spun)";
    EXPECT_EQ(j.updates.release_held("crm", UpdateQueue::Held::ForRead), 1);
    auto claimed = j.updates.claim("crm", 10, 400, 60'000);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].identity, "CRMID:A");
    EXPECT_EQ(j.updates.held("crm"), 1) << "the duplicate's row stays held";
}

// A write held for the read keeps its retry's due time: released, a throttled row waits out
// its Retry-After (a hold written into the due time made it due at the read's end, so only
// jobs that judge removals could hold, and the others sent stale values first).
TEST_F(JournalTest, AWriteHeldForTheReadKeepsItsRetrysDueTime) {
    j.updates.enqueue("crm", update("A", "h1"), 100, false);
    auto claimed = j.updates.claim("crm", 10, 200, 60'000);
    ASSERT_EQ(claimed.size(), 1u);
    Completion c;
    c.id = claimed[0].id;
    c.state = State::Retry;
    c.status = 429;
    c.due_at = 10'000;
    j.updates.complete("crm", {c}, 300);
    EXPECT_EQ(j.updates.hold_pending("crm"), 1);
    EXPECT_FALSE(j.updates.next_due("crm")) << "held";
    EXPECT_EQ(j.updates.counts("crm").held, 1);
    EXPECT_EQ(j.updates.release_held("crm", UpdateQueue::Held::ForRead), 1);
    EXPECT_TRUE(j.updates.claim("crm", 10, 500, 60'000).empty()) << "its Retry-After still stands";
    EXPECT_EQ(j.updates.next_due("crm"), Millis{10'000});
    EXPECT_EQ(j.updates.claim("crm", 10, 10'000, 60'000).size(), 1u);
}

// A row read again as its held write sends it confirms that write: released at once (at its
// own due time), not at the read's end (a resumed backfill's retries waited for the whole
// source). A duplicate id's row confirms nothing: a later row may still come.
TEST_F(JournalTest, ARowThatConfirmsAWriteHeldForTheReadReleasesIt) {
    j.updates.enqueue("crm", update("A", "h1"), 100, false);
    j.updates.enqueue("crm", update("B", "h1"), 100, false);
    auto claimed = j.updates.claim("crm", 10, 200, 60'000);
    ASSERT_EQ(claimed.size(), 2u);
    std::vector<Completion> answers(2);
    for (std::size_t i = 0; i < 2; ++i) {
        answers[i].id = claimed[i].id;
        answers[i].state = State::Retry;
        answers[i].status = 429;
        answers[i].due_at = 10'000;
    }
    j.updates.complete("crm", answers, 300);
    EXPECT_EQ(j.updates.hold_pending("crm"), 2);
    EXPECT_EQ(j.updates.enqueue("crm", update("A", "h1"), 400, false), EnqueueResult::AlreadyPendingFromEarlier);
    auto b = update("B", "h1");
    b.held = true;
    EXPECT_EQ(j.updates.enqueue("crm", b, 400, false), EnqueueResult::AlreadyPending);
    EXPECT_EQ(j.updates.next_due("crm"), Millis{10'000}) << "A, at its Retry-After";
    auto due = j.updates.claim("crm", 10, 10'000, 60'000);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].identity, "CRMID:A");
    EXPECT_EQ(j.updates.release_held("crm", UpdateQueue::Held::ForRead), 1) << "B, still held for the read";
}

// Writes a stopped process left in flight are held for the read like the writes it left
// queued (sent first, a killed run's upserts made the profiles of people no longer in the
// source, then removed them), as writes that may have landed: a row leaving the source is a
// removal, and a row still there takes its write over, looking first. Whatever their lease
// says: under the job's lock no other process holds rows of the job (a container restarts
// its process as the same pid, and the lease may still run).
TEST_F(JournalTest, WritesAStoppedProcessLeftInFlightAreHeldForTheReadAsWritesThatMayHaveLanded) {
    Journal killed(dir.file("state/journal.db"));
    killed.updates.enqueue("crm", update("1", "h1"), 100, false);
    killed.updates.enqueue("crm", update("2", "h2"), 100, false);
    ASSERT_EQ(killed.updates.claim("crm", 1, 100, 500).size(), 1u);     // lease until 600
    ASSERT_EQ(killed.updates.claim("crm", 1, 100, 50'000).size(), 1u);  // until 50,100
    EXPECT_EQ(j.updates.release_dead_claims("crm"), 2) << "the same pid, another claim token";
    EXPECT_EQ(j.updates.hold_pending("crm"), 2);
    EXPECT_TRUE(j.updates.claim("crm", 10, 800, 500).empty()) << "held";
    EXPECT_FALSE(j.updates.next_due("crm"));
    std::map<std::string, bool> unsettled;
    j.updates.for_each_unsettled("crm",
                                 [&](const KnownIdentity& k, bool may_exist) { unsettled[k.identity] = may_exist; });
    EXPECT_EQ(unsettled, (std::map<std::string, bool>{{"CRMID:1", true}, {"CRMID:2", true}}));
    EXPECT_EQ(j.updates.release_held("crm"), 2);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_TRUE(claimed[0].resolve && claimed[1].resolve) << "they may have landed";
}

TEST_F(JournalTest, WithoutARefusalScopeNothingIsSkipped) {
    j.updates.enqueue("crm", update("1", "h1"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm", {refused_answer(claimed[0].id)}, 1100);
    EXPECT_EQ(j.updates.history("crm", "CRMID:1", 1)[0].refused_scope, 0);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2000, false), EnqueueResult::Queued);
}

// A deactivation given up unanswered (it may have landed) of a row that comes back: the row
// is sent as a reactivation, or the profile could stay deactivated while `synced` says active.
TEST_F(JournalTest, ARowBackAfterADeactivationGivenUpUnansweredIsSentAsAReactivation) {
    j.synced.record("crm", "CRMID:1", "h1", 5, 500);
    auto removal = update("1", "missing:deactivate", R"([{"op":"add","path":"/IsActive","value":false}])");
    removal.op = "deactivate";
    ASSERT_EQ(j.updates.enqueue("crm", removal, 1000, true), EnqueueResult::Queued);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    ASSERT_EQ(claimed.size(), 1u);
    Completion gave_up{claimed[0].id, State::Failed, 0, "gave up after 1 attempts: no answer", 0, true, true, {}};
    j.updates.complete("crm", {gave_up}, 1100);
    EXPECT_TRUE(j.updates.marked_failure("crm", "CRMID:1"));
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2000, false), EnqueueResult::Queued)
        << "not unchanged: the deactivation may have landed";
    auto next = j.updates.claim("crm", 10, 2000, 500);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].op, "reactivate");
    EXPECT_TRUE(next[0].resolve);
}

TEST_F(JournalTest, FailuresAndRetry) {
    j.updates.enqueue("crm", update("1", "a"), 1000, false);
    j.updates.enqueue("crm", update("2", "b"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm",
                       {{claimed[0].id, State::Failed, 400, "400 bad request: Emails[0]", 0, false, true, {}},
                        {claimed[1].id, State::Failed, 404, "404 not found", 0, false, true, {}}},
                       1100);
    auto f = j.updates.failures("crm");
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].identity, "CRMID:1");
    EXPECT_EQ(f[0].origin, "in.csv:1");
    EXPECT_EQ(f[0].status, 400);
    EXPECT_EQ(f[0].attempts, 1);
    EXPECT_EQ(f[0].error, "400 bad request: Emails[0]");
    EXPECT_EQ(j.updates.retry_failed("crm", 400, 2000), 1);
    EXPECT_EQ(j.updates.counts("crm").failed, 1);
    auto again = j.updates.claim("crm", 10, 2000, 500);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempts, 0) << "a fresh set of attempts";
    EXPECT_EQ(again[0].body, "{}") << "failed updates keep their body";
    EXPECT_EQ(j.updates.retry_failed("crm", std::nullopt, 2000), 1);
}

TEST_F(JournalTest, RetryOfTwoFailedChangesOfOneIdentitySendsOnlyTheNewer) {
    j.updates.enqueue("crm", update("1", "old", "{\"v\":1}"), 1000, false);
    auto first = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm", {{first[0].id, State::Failed, 404, "404", 0, false, true, {}}}, 1100);
    j.updates.enqueue("crm", update("1", "new", "{\"v\":2}"), 1200, false);
    auto second = j.updates.claim("crm", 10, 1200, 500);
    ASSERT_EQ(second.size(), 1u);
    j.updates.complete("crm", {{second[0].id, State::Failed, 400, "400", 0, false, true, {}}}, 1300);
    ASSERT_EQ(j.updates.failures("crm").size(), 1u) << "a newer change supersedes an older failure";
    EXPECT_EQ(j.updates.retry_failed("crm", std::nullopt, 2000), 1);
    auto again = j.updates.claim("crm", 10, 2000, 500);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].body, "{\"v\":2}") << "the newer change is the one the source holds";
    EXPECT_TRUE(j.updates.failures("crm").empty());
}

TEST_F(JournalTest, ANewerRowOfAnIdentityInFlightHereWaitsForTheAnswerNeverSupersedingIt) {
    j.updates.enqueue("crm", update("1", "v1", "{\"v\":1}"), 1000, false);
    auto first = j.updates.claim("crm", 10, 1000, 60000);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "v2", "{\"v\":2}"), 1100, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").waiting, 1);
    EXPECT_TRUE(j.updates.claim("crm", 10, 1200, 60000).empty()) << "never two requests of one identity";
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "v3", "{\"v\":3}"), 1300, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").waiting, 1) << "only the newest waits";
    j.updates.complete("crm", {{first[0].id, State::Done, 200, "", 0, false, true, 55}}, 1400);
    auto next = j.updates.claim("crm", 10, 1500, 60000);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].body, "{\"v\":3}");
    EXPECT_TRUE(next[0].resolve) << "the profile exists now: looked up, never created again";
    EXPECT_EQ(next[0].profile_id, 55);
}

TEST_F(JournalTest, ARowEqualToWhatWasSyncedIsNotJudgedUnchangedWhileAnotherIsInFlight) {
    auto c = j.updates.enqueue("crm", update("1", "v0"), 1000, false);
    ASSERT_EQ(c, EnqueueResult::Queued);
    auto v0 = j.updates.claim("crm", 10, 1000, 60000);
    j.updates.complete("crm", {{v0[0].id, State::Done, 200, "", 0, false, true, 7}}, 1100);
    j.updates.enqueue("crm", update("1", "v1"), 1200, false);
    auto v1 = j.updates.claim("crm", 10, 1200, 60000);
    ASSERT_EQ(v1.size(), 1u);
    // Back to v0 while v1 is out: once v1 lands, v0 must be sent again.
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "v0"), 1300, false), EnqueueResult::Queued);
    j.updates.complete("crm", {{v1[0].id, State::Done, 200, "", 0, false, true, 7}}, 1400);
    auto again = j.updates.claim("crm", 10, 1500, 60000);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].hash, "v0");
}

TEST_F(JournalTest, AWaitingRowTakesTheRetryOrFailureOfItsPredecessorAndASupersededRowNeverComesBack) {
    j.updates.enqueue("crm", update("1", "a"), 1000, false);
    j.updates.enqueue("crm", update("2", "b"), 1000, false);
    auto out = j.updates.claim("crm", 10, 1000, 60000);
    ASSERT_EQ(out.size(), 2u);
    j.updates.enqueue("crm", update("1", "a2"), 1100, false);
    j.updates.enqueue("crm", update("2", "b2"), 1100, false);
    j.updates.complete("crm",
                       {{out[0].id, State::Retry, 503, "503", 5000, true, true, {}},
                        {out[1].id, State::Failed, 400, "400", 0, false, true, {}}},
                       1200);
    EXPECT_TRUE(j.updates.failures("crm").empty()) << "the newer row replaces the failed one";
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.retry, 1);
    EXPECT_EQ(c.queued, 1);
    EXPECT_EQ(c.waiting, 0);
    auto now = j.updates.claim("crm", 10, 1300, 60000);
    ASSERT_EQ(now.size(), 1u);
    EXPECT_EQ(now[0].hash, "b2");
    auto later = j.updates.claim("crm", 10, 5000, 60000);
    ASSERT_EQ(later.size(), 1u);
    EXPECT_EQ(later[0].hash, "a2") << "takes the retry's place and time";
    EXPECT_TRUE(later[0].resolve) << "and its unknown outcome";
    // A late completion of a superseded row changes nothing.
    j.updates.complete("crm", {{out[0].id, State::Queued, 0, "", 0, false, false, {}}}, 5100);
    EXPECT_EQ(j.updates.counts("crm").queued, 0);
}

TEST_F(JournalTest, AHeldRowThatWaitedForAnAnswerStaysHeldUntilTheReadEnds) {
    j.updates.enqueue("crm", update("1", "a"), 1000, false);
    auto out = j.updates.claim("crm", 10, 1000, 60000);
    auto held = update("1", "b");
    held.held = true;
    j.updates.enqueue("crm", held, 1100, false);
    j.updates.complete("crm", {{out[0].id, State::Done, 200, "", 0, false, true, 3}}, 1200);
    EXPECT_TRUE(j.updates.claim("crm", 10, 1300, 60000).empty()) << "still held";
    EXPECT_EQ(j.updates.held("crm"), 1);
    EXPECT_EQ(j.updates.release_held("crm"), 1);
    auto next = j.updates.claim("crm", 10, 1400, 60000);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].hash, "b");
}

TEST_F(JournalTest, AHeldRowWhosePredecessorIsAnsweredAfterTheReadEndedIsSentThen) {
    std::optional<ClaimedUpdate> out;
    j.updates.enqueue_claimed("crm", update("1", "a"), 1000, false, std::nullopt, 60000, out);
    ASSERT_TRUE(out);
    auto held = update("1", "b");
    held.held = true;
    j.updates.enqueue("crm", held, 1100, false);
    EXPECT_EQ(j.updates.held("crm"), 1) << "held, and waiting for the answer";
    EXPECT_EQ(j.updates.release_held("crm"), 1) << "the read ended";
    EXPECT_TRUE(j.updates.claim("crm", 10, 1300, 60000).empty()) << "still waiting for the answer";
    j.updates.complete("crm", {{out->id, State::Done, 200, "", 0, false, true, 3}}, 1400);
    auto next = j.updates.claim("crm", 10, 1500, 60000);
    ASSERT_EQ(next.size(), 1u) << "sent in this run, not left held until the next read";
    EXPECT_EQ(next[0].hash, "b");
    EXPECT_TRUE(next[0].resolve) << "the profile exists now: looked up first";
}

TEST_F(JournalTest, RowsLeftWaitingByAProcessThatDiedAreQueuedAtTheNextRun) {
    j.updates.enqueue("crm", update("1", "a"), 1000, false);
    ASSERT_EQ(j.updates.claim("crm", 10, 1000, 60000).size(), 1u);
    j.updates.enqueue("crm", update("1", "a2"), 1100, false);
    Journal other(dir.file("state/journal.db"));  // the next process
    EXPECT_EQ(other.updates.promote_all_waiting("crm", 2000), 1);
    auto next = other.updates.claim("crm", 10, 2000, 60000);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].hash, "a2");
    EXPECT_TRUE(next[0].resolve) << "its predecessor may have landed";
}

TEST_F(JournalTest, BackfillRunsSkipWhatTheyAlreadyEnqueued) {
    auto run = j.runs.begin("crm", "backfill", 1000);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h"), 1000, true, run), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h"), 1000, true, run), EnqueueResult::AlreadyInRun);
    RunRecord r;
    r.id = run;
    r.exit_code = 4;
    j.runs.end(r, 2000);
    auto last = j.runs.last("crm", "backfill");
    ASSERT_TRUE(last);
    EXPECT_EQ(last->exit_code, 4);
}

// enqueue() learns once per transaction which kinds of rows the job has (none, in a
// backfill into an empty queue) and skips the look-ups of kinds it has none of; what the
// same transaction writes must be seen by its later rows all the same.
TEST_F(JournalTest, WhatATransactionWritesIsSeenByItsLaterRows) {
    auto run = j.runs.begin("crm", "backfill", 1000);
    Database::Transaction tx(j.db);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "a", R"({"v":1})"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "b", R"({"v":2})"), 1000, false), EnqueueResult::Queued)
        << "a newer change of a queued row replaces it";
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h"), 1000, true, run), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h"), 1000, true, run), EnqueueResult::AlreadyInRun);
    auto claimed = j.updates.claim("crm", 10, 1000, 60000);
    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_EQ(claimed[0].body, R"({"v":2})");
    j.updates.complete("crm", {{claimed[0].id, State::Failed, 400, "bad", 0, false, true, std::nullopt}}, 1000);
    EXPECT_EQ(j.updates.counts("crm").failed, 1);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "c", R"({"v":3})"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").failed, 0) << "a newer change supersedes the failure";
    tx.commit();
    auto rest = j.updates.claim("crm", 10, 2000, 60000);
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0].body, R"({"v":3})");
}

TEST_F(JournalTest, RowsWaitingForABatchRowWrittenInTheSameTransactionAreSupersededInOrder) {
    Database::Transaction tx(j.db);
    std::optional<ClaimedUpdate> sent;
    EXPECT_EQ(j.updates.enqueue_claimed("crm", update("1", "a", R"({"v":1})"), 1000, false, std::nullopt, 60000, sent),
              EnqueueResult::Queued);
    ASSERT_TRUE(sent);
    // Neither writes the queue's table before it looks: each must still see what the one
    // before it wrote.
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "b", R"({"v":2})"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "c", R"({"v":3})"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").waiting, 1) << "the newer waiting row replaced the older";
    tx.commit();
    j.updates.complete("crm", {{sent->id, State::Done, 200, "", 0, false, true, 5}}, 2000);
    auto next = j.updates.claim("crm", 10, 3000, 60000);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].body, R"({"v":3})");
}

// A deferred commit (a pull's items) skips only its own fsync: what it wrote is committed,
// and every later commit of the connection is durable again, whether it committed, rolled
// back or sat inside a durable one.
TEST_F(JournalTest, ADeferredCommitKeepsItsWritesAndEveryLaterCommitIsDurableAgain) {
    auto level = [&] {
        auto s = j.db.prepare("PRAGMA synchronous");
        return s.step() ? s.i64(0) : -1;
    };
    constexpr std::int64_t kFull = 2;
    ASSERT_EQ(level(), kFull);
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        EXPECT_FALSE(j.pulls.add_item("p", "pid:1", "in.csv:2", ""));
        tx.commit();
    }
    EXPECT_EQ(level(), kFull);
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        EXPECT_FALSE(j.pulls.add_item("p", "pid:2", "in.csv:3", ""));
    }  // rolled back
    EXPECT_EQ(level(), kFull);
    {
        Database::Transaction outer(j.db);
        Database::Transaction inner(j.db, Database::Sync::deferred);
        EXPECT_EQ(level(), kFull) << "the outermost transaction decides";
        inner.commit();
        outer.commit();
    }
    Journal other(dir.file("state/journal.db"));
    EXPECT_EQ(other.pulls.counts("p")["pending"], 1) << "the deferred commit's item, not the rolled back one";
}

// However long a run defers its commits, a power loss undoes at most about a second of them.
TEST_F(JournalTest, ADeferredCommitIsDurableOnceASecondPassedWithoutADurableOne) {
    auto level = [&] {
        auto s = j.db.prepare("PRAGMA synchronous");
        return s.step() ? s.i64(0) : -1;
    };
    constexpr std::int64_t kNormal = 1, kFull = 2;
    {
        Database::Transaction tx(j.db);
        EXPECT_FALSE(j.pulls.add_item("p", "pid:1", "in.csv:2", ""));
        tx.commit();
    }
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        EXPECT_EQ(level(), kNormal) << "just after a durable commit";
        EXPECT_FALSE(j.pulls.add_item("p", "pid:2", "in.csv:3", ""));
        tx.commit();
    }
    // The bound is a duration: what is tested is that it passed, not an order of events.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    {
        Database::Transaction tx(j.db);
        tx.commit();  // wrote nothing: no fsync, so it does not count
    }
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        EXPECT_EQ(level(), kFull) << "a second without a durable commit";
        EXPECT_FALSE(j.pulls.add_item("p", "pid:3", "in.csv:4", ""));
        tx.commit();
    }
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        EXPECT_EQ(level(), kNormal) << "the one before was durable";
        tx.commit();
    }
}

TEST_F(JournalTest, ADurableTransactionInsideADeferredOneIsRefused) {
    {
        Database::Transaction tx(j.db);
        EXPECT_FALSE(j.pulls.add_item("p", "pid:1", "in.csv:2", ""));
        tx.commit();
    }
    Database::Transaction outer(j.db, Database::Sync::deferred);
    EXPECT_THROW(Database::Transaction inner(j.db), JournalError) << "it would commit without its fsync";
    Database::Transaction deferred(j.db, Database::Sync::deferred);
    deferred.commit();
    outer.commit();
}

TEST_F(JournalTest, WhatAnotherConnectionWroteBetweenTransactionsIsSeen) {
    j.synced.record("crm", "CRMID:9", "h", 9, 1000);
    EXPECT_EQ(j.updates.enqueue("crm", update("9", "h"), 1000, false), EnqueueResult::Unchanged)
        << "learns that the job has nothing queued, and writes nothing";
    Journal other(dir.file("state/journal.db"));
    EXPECT_EQ(other.updates.enqueue("crm", update("1", "a"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "b"), 1000, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").queued, 1);
}

TEST_F(JournalTest, AResumedBackfillNeverSendsAnEarlierRowOfAnIdentityAfterItsLaterOne) {
    auto run = j.runs.begin("crm", "backfill", 1000);
    // The first attempt sent both rows of a duplicate id, the later one last.
    for (auto hash : {"a", "b"}) {
        ASSERT_EQ(j.updates.enqueue("crm", update("1", hash), 1000, true, run), EnqueueResult::Queued);
        auto c = j.updates.claim("crm", 10, 1000, 1000);
        ASSERT_EQ(c.size(), 1u);
        j.updates.complete("crm", {{c[0].id, State::Done, 200, "", 0, false, true, 7}}, 1000);
    }
    EXPECT_EQ(j.synced.get("crm", "CRMID:1")->run_id, run);
    // The resume reads both again; the earlier one is held (a known duplicate) ...
    auto first = update("1", "a");
    first.held = true;
    EXPECT_EQ(j.updates.enqueue("crm", first, 2000, true, run), EnqueueResult::Queued);
    // ... and the later one, already sent by this run, makes it obsolete.
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "b"), 2000, true, run), EnqueueResult::AlreadyInRun);
    EXPECT_EQ(j.updates.release_held("crm"), 0);
    EXPECT_TRUE(j.updates.claim("crm", 10, 3000, 1000).empty()) << "nothing to send: the later row was sent";
}

TEST_F(JournalTest, ARowJournaledClaimedIsRecordedInFlightBeforeItIsHandedOut) {
    std::optional<ClaimedUpdate> claimed;
    EXPECT_EQ(
        j.updates.enqueue_claimed("crm", update("1", "h1", R"({"a":1})"), 1000, false, std::nullopt, 60'000, claimed),
        EnqueueResult::Queued);
    ASSERT_TRUE(claimed);
    EXPECT_EQ(claimed->body, R"({"a":1})");
    EXPECT_EQ(claimed->identity, "CRMID:1");
    EXPECT_FALSE(claimed->resolve);
    EXPECT_EQ(j.updates.counts("crm").inflight, 1) << "recorded in flight, as a claim would";
    EXPECT_TRUE(j.updates.claim("crm", 10, 2000, 60'000).empty()) << "never handed out twice";
    // A later row of the identity waits for its answer; a held row is not sent at once.
    EXPECT_EQ(j.updates.enqueue_claimed("crm", update("1", "h2"), 1000, false, std::nullopt, 60'000, claimed),
              EnqueueResult::Queued);
    EXPECT_FALSE(claimed);
    EXPECT_EQ(j.updates.counts("crm").waiting, 1);
    auto held = update("2", "h");
    held.held = true;
    j.updates.enqueue_claimed("crm", held, 1000, false, std::nullopt, 60'000, claimed);
    EXPECT_FALSE(claimed);
    // Another process (or this one after a crash) takes it over only once the lease is over,
    // and then looks before it writes: its outcome is unknown.
    UpdateQueue other(j.db, j.synced);
    EXPECT_TRUE(other.claim("crm", 10, 30'000, 60'000).empty());
    auto taken = other.claim("crm", 10, 61'001, 60'000);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0].identity, "CRMID:1");
    EXPECT_TRUE(taken[0].resolve);
}

// Rows journaled already claimed in one transaction, as a read batch is.
std::vector<ClaimedUpdate> journal_claimed(Journal& j, UpdateQueue& q, const std::vector<NewUpdate>& rows, Millis now,
                                           std::optional<std::int64_t> run_id = std::nullopt) {
    Database::Transaction tx(j.db);
    std::vector<ClaimedUpdate> out;
    for (const auto& u : rows) {
        std::optional<ClaimedUpdate> c;
        q.enqueue_claimed("crm", u, now, run_id.has_value(), run_id, 60'000, c);
        if (c) out.push_back(*c);
    }
    tx.commit();
    return out;
}

// `plan` takes nothing over: the writes another process's in-flight batch still holds (not
// its answered rows, not removals, not this process's own batches) are writes that may have
// landed, as they are for the sync that takes them over; a profile synced already is not
// counted twice.
TEST_F(JournalTest, WritesInAnotherProcesssBatchCountAsWritesThatMayHaveLanded) {
    UpdateQueue other(j.db, j.synced);
    auto removal = update("3", "missing:deactivate");
    removal.op = "deactivate";
    auto sent = journal_claimed(j, other, {update("1", "h1"), update("2", "h2"), removal, update("4", "h4")}, 1000);
    ASSERT_EQ(sent.size(), 4u);
    other.complete("crm", {{sent[1].id, State::Done, 200, "", 0, false, true, 2}}, 1100);
    j.synced.record("crm", "CRMID:4", "h0", 4, 900);
    std::vector<std::string> elsewhere;
    for (const auto& [identity, k] : j.updates.in_flight_elsewhere("crm")) elsewhere.push_back(identity);
    EXPECT_EQ(elsewhere, (std::vector<std::string>{"CRMID:1", "CRMID:4"}));
    EXPECT_TRUE(other.in_flight_elsewhere("crm").empty()) << "its own batch is not elsewhere";
    std::map<std::string, bool> unsettled;
    j.updates.for_each_unsettled("crm",
                                 [&](const KnownIdentity& k, bool may_exist) { unsettled[k.identity] = may_exist; });
    EXPECT_EQ(unsettled, (std::map<std::string, bool>{{"CRMID:1", true}})) << "CRMID:4 is synced";
    // A batch whose rows are missing is damage, not nothing in flight.
    j.db.exec("DELETE FROM inflight_batch_rows");
    EXPECT_THROW(j.updates.in_flight_elsewhere("crm"), JournalError);
}

std::int64_t count_rows(Journal& j, const char* sql) {
    auto s = j.db.prepare(sql);
    return s.step() ? s.i64(0) : -1;
}

TEST_F(JournalTest, RowsSentAtOnceAreOneBatchRecordThatLeavesOnceEveryRowIsAnswered) {
    auto sent = journal_claimed(j, j.updates, {update("1", "h1"), update("2", "h2"), update("3", "h3")}, 1000);
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM inflight_batches"), 1) << "one record for the transaction";
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM updates"), 0) << "not a row per update";
    EXPECT_EQ(j.updates.counts("crm").inflight, 3);
    j.updates.complete("crm",
                       {{sent[0].id, State::Done, 200, "", 0, false, true, 71},
                        {sent[1].id, State::Accepted, 202, "", 0, false, true, 72}},
                       2000);
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.inflight, 1);
    EXPECT_EQ(c.done, 1);
    EXPECT_EQ(c.accepted, 1);
    EXPECT_EQ(j.synced.get("crm", "CRMID:1")->profile_id, 71);
    j.updates.complete("crm", {{sent[0].id, State::Retry, 503, "late", 9000, false, true, {}}}, 2100);
    EXPECT_EQ(j.updates.counts("crm").retry, 0) << "an answered row takes no second outcome";
    EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1"), 2200, false), EnqueueResult::Unchanged);
    EXPECT_EQ(j.updates.enqueue("crm", update("3", "h3b"), 2200, false), EnqueueResult::Queued);
    EXPECT_EQ(j.updates.counts("crm").waiting, 1) << "a newer row of a batch row in flight waits for its answer";
    j.updates.complete("crm", {{sent[2].id, State::Done, 200, "", 0, false, true, 73}}, 3000);
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM inflight_batches"), 0);
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM inflight_batch_rows"), 0);
    auto next = j.updates.claim("crm", 10, 3100, 60'000);
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].hash, "h3b");
    EXPECT_TRUE(next[0].resolve) << "its predecessor was answered: the profile exists now";
}

TEST_F(JournalTest, ABatchRowThatIsRetriedFailsOrIsReleasedBecomesAnOrdinaryRow) {
    auto sent = journal_claimed(
        j, j.updates,
        {update("1", "h1", R"({"a":1})"), update("2", "h2", R"({"a":2})"), update("3", "h3", R"({"a":3})")}, 1000);
    ASSERT_EQ(sent.size(), 3u);
    j.updates.complete("crm",
                       {{sent[0].id, State::Retry, 503, "unavailable", 5000, true, true, {}},
                        {sent[1].id, State::Failed, 400, "bad request", 0, false, true, {}},
                        {sent[2].id, State::Queued, 0, "", 0, false, false, {}}},
                       2000);
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.inflight, 0);
    EXPECT_EQ(c.retry, 1);
    EXPECT_EQ(c.failed, 1);
    EXPECT_EQ(c.queued, 1);
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM inflight_batches"), 0);
    auto f = j.updates.failures("crm");
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].identity, "CRMID:2");
    EXPECT_EQ(f[0].status, 400);
    EXPECT_EQ(f[0].attempts, 1);
    auto next = j.updates.claim("crm", 10, 5000, 60'000);
    ASSERT_EQ(next.size(), 2u);
    EXPECT_EQ(next[0].body, R"({"a":1})");
    EXPECT_TRUE(next[0].resolve) << "the retry's resolve mark is kept";
    EXPECT_EQ(next[0].attempts, 1);
    EXPECT_EQ(next[1].body, R"({"a":3})");
    EXPECT_EQ(next[1].attempts, 0) << "released unsent: not an attempt";
    EXPECT_EQ(j.updates.retry_failed("crm", std::nullopt, 6000), 1);
    auto again = j.updates.claim("crm", 10, 6000, 60'000);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].body, R"({"a":2})") << "a dead letter keeps its body";
}

TEST_F(JournalTest, ABatchLeftInFlightIsTakenOverRowByRowOnceItsLeaseEndsLookingFirst) {
    auto run = j.runs.begin("crm", "backfill", 1000);
    auto sent = journal_claimed(
        j, j.updates, {update("1", "h1", R"({"a":1})"), update("2", "h2", R"({"a":2})"), update("3", "h3")}, 1000, run);
    ASSERT_EQ(sent.size(), 3u);
    j.updates.complete("crm", {{sent[1].id, State::Done, 200, "", 0, false, true, 5}}, 1500);
    j.updates.renew("crm", 30'000, 60'000);
    // The process dies. Another (or this one restarted) sees the rows as in flight ...
    Journal next_process(dir.file("state/journal.db"));
    EXPECT_EQ(next_process.updates.counts("crm").inflight, 2);
    EXPECT_TRUE(next_process.updates.claim("crm", 10, 80'000, 60'000).empty()) << "renewed until 90,000";
    EXPECT_EQ(next_process.updates.next_due("crm"), 90'000);
    // ... and a resumed backfill knows what it already sent.
    EXPECT_EQ(next_process.updates.enqueue("crm", update("2", "h2"), 85'000, true, run), EnqueueResult::AlreadyInRun);
    auto taken = next_process.updates.claim("crm", 10, 90'001, 60'000);
    ASSERT_EQ(taken.size(), 2u) << "the answered row is not taken again";
    EXPECT_EQ(taken[0].identity, "CRMID:1");
    EXPECT_EQ(taken[0].body, R"({"a":1})");
    EXPECT_TRUE(taken[0].resolve) << "its outcome is unknown";
    EXPECT_EQ(taken[1].identity, "CRMID:3");
    EXPECT_TRUE(taken[1].resolve);
    EXPECT_EQ(count_rows(next_process, "SELECT count(*) FROM inflight_batches"), 0);
    // The first process's late answer changes nothing: the rows are the other process's now.
    j.updates.complete("crm", {{sent[0].id, State::Done, 200, "", 0, false, true, 6}}, 90'002);
    EXPECT_EQ(next_process.updates.counts("crm").inflight, 2);
    EXPECT_FALSE(next_process.synced.get("crm", "CRMID:1"));
}

TEST_F(JournalTest, AnEarlierRunsBatchIsTakenOverBeforeTheNextRunEnqueuesAnything) {
    // A daemon's run stops with rows in flight (a journal error, say); its next run, in the
    // same process but with a journal handle (and claim token) of its own, starts well
    // before their lease ends.
    j.synced.record("crm", "CRMID:3", "h0", 5, 500, std::nullopt, Outcome::Done, std::nullopt);
    journal_claimed(j, j.updates, {update("1", "h1"), update("2", "h2"), update("3", "h3")}, 1000);
    Journal next_run(dir.file("state/journal.db"));
    EXPECT_EQ(next_run.updates.take_over_batches("crm"), 3);
    EXPECT_EQ(count_rows(next_run, "SELECT count(*) FROM inflight_batches"), 0);
    auto history = next_run.updates.history("crm", "CRMID:2", 10);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].state, "inflight");
    EXPECT_EQ(history[0].created_at, 1000);
    // The source went back to what the API had: h3 may have landed, so h0 is sent (looking
    // first), not judged unchanged.
    EXPECT_EQ(next_run.updates.enqueue("crm", update("3", "h0"), 2000, false), EnqueueResult::Queued);
    EXPECT_EQ(next_run.updates.enqueue("crm", update("1", "h1b"), 2000, false), EnqueueResult::Queued);
    auto taken = next_run.updates.claim("crm", 10, 2000, 60'000);
    ASSERT_EQ(taken.size(), 2u) << "the newer rows; CRMID:2 waits for its lease";
    for (const auto& t : taken) EXPECT_TRUE(t.resolve) << t.identity << ": its predecessor may have landed";
    auto rest = next_run.updates.claim("crm", 10, 61'001, 60'000);
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(rest[0].identity, "CRMID:2");
    EXPECT_TRUE(rest[0].resolve);
}

TEST_F(JournalTest, ExplainListsARowStillInABatch) {
    auto sent = journal_claimed(j, j.updates, {update("1", "h1"), update("2", "h2")}, 1000);
    auto history = j.updates.history("crm", "CRMID:2", 10);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].id, sent[1].id);
    EXPECT_EQ(history[0].state, "inflight");
    EXPECT_EQ(history[0].origin, "in.csv:2");
    j.updates.complete("crm", {{sent[1].id, State::Retry, 503, "unavailable", 5000, false, true, {}}}, 2000);
    history = j.updates.history("crm", "CRMID:2", 10);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].state, "retry");
    EXPECT_EQ(history[0].created_at, 1000) << "written out, it keeps when it was journaled";
    EXPECT_GT(history[0].id, 0);
}

TEST_F(JournalTest, ABatchWhoseTransactionRollsBackIsForgotten) {
    {
        Database::Transaction tx(j.db);
        std::optional<ClaimedUpdate> c;
        j.updates.enqueue_claimed("crm", update("1", "h1"), 1000, false, std::nullopt, 60'000, c);
        ASSERT_TRUE(c);
        EXPECT_EQ(j.updates.enqueue("crm", update("1", "h1b"), 1000, false), EnqueueResult::Queued);
        EXPECT_EQ(j.updates.counts("crm").waiting, 1) << "within the transaction, the batch row is pending";
    }  // rolled back
    EXPECT_EQ(j.updates.counts("crm").inflight, 0);
    EXPECT_EQ(count_rows(j, "SELECT count(*) FROM inflight_batches"), 0);
    std::optional<ClaimedUpdate> c;
    EXPECT_EQ(j.updates.enqueue_claimed("crm", update("1", "h1"), 2000, false, std::nullopt, 60'000, c),
              EnqueueResult::Queued);
    EXPECT_TRUE(c) << "not waiting behind a row that was never recorded";
}

TEST_F(JournalTest, ADamagedBatchRecordIsAnErrorNamingTheJournal) {
    journal_claimed(j, j.updates, {update("1", "h1")}, 1000);
    j.db.exec("UPDATE inflight_batch_rows SET rows = x'0500'");
    Journal next_process(dir.file("state/journal.db"));
    try {
        next_process.updates.claim("crm", 10, 70'000, 60'000);
        FAIL() << "no error";
    } catch (const JournalError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr(dir.file("state/journal.db")));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("damaged"));
    }
    j.db.exec("DELETE FROM inflight_batch_rows");
    EXPECT_THROW(next_process.updates.take_over_batches("crm"), JournalError) << "rows gone: never a silent loss";
    EXPECT_EQ(count_rows(next_process, "SELECT count(*) FROM inflight_batches"), 1) << "left as it was";
}

TEST_F(JournalTest, ARowLeftInFlightByAProcessThatDiedIsNotJudgedUnchangedByTheSyncedHash) {
    j.synced.record("crm", "CRMID:1", "h0", 5, 500, std::nullopt, Outcome::Done, std::nullopt);
    j.updates.enqueue("crm", update("1", "h1"), 1000, false);
    ASSERT_EQ(j.updates.claim("crm", 10, 1000, 60'000).size(), 1u);  // then the process died
    Journal next(dir.file("state/journal.db"));
    // The source is back to h0: h1 may have landed, so h0 takes its place and is sent.
    EXPECT_EQ(next.updates.enqueue("crm", update("1", "h0"), 2000, false), EnqueueResult::Queued);
    auto taken = next.updates.claim("crm", 10, 2000, 60'000);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0].hash, "h0");
    EXPECT_TRUE(taken[0].resolve);
}

TEST_F(JournalTest, ARemovalLeftInFlightByAProcessThatDiedIsSentAgainNotReplacedByAnUnchangedRow) {
    j.synced.record("crm", "CRMID:1", "h0", 5, 500, std::nullopt, Outcome::Done, std::nullopt);
    auto removal = update("1", "missing:1", R"({"IsActive":false})");
    removal.op = "deactivate";
    j.updates.enqueue("crm", removal, 1000, false);
    ASSERT_EQ(j.updates.claim("crm", 10, 1000, 60'000).size(), 1u);  // then the process died
    Journal next(dir.file("state/journal.db"));
    // The row is back, unchanged: a plain write in the deactivation's place would leave the
    // profile inactive for good if the deactivation landed. It is sent again and recorded;
    // the run after brings the row back (a reactivation).
    EXPECT_EQ(next.updates.enqueue("crm", update("1", "h0"), 2000, false), EnqueueResult::Unchanged);
    auto taken = next.updates.claim("crm", 10, 61'001, 60'000);
    ASSERT_EQ(taken.size(), 1u);
    EXPECT_EQ(taken[0].op, "deactivate");
    EXPECT_TRUE(taken[0].resolve);
}

TEST_F(JournalTest, SharedBucketHoldsTheRateAcrossJournalHandles) {
    // Two handles on one file stand for two processes on one host.
    Journal other(dir.file("state/journal.db"));
    Millis now = 1'000'000;
    int taken = 0;
    for (int i = 0; i < 100; ++i) {
        taken += j.rate.take_tokens(5, 10, 10, 0, now).granted;
        taken += other.rate.take_tokens(5, 10, 10, 0, now).granted;
    }
    EXPECT_EQ(taken, 10) << "the burst, shared";
    auto g = j.rate.take_tokens(1, 10, 10, 0, now);
    EXPECT_EQ(g.granted, 0);
    EXPECT_EQ(g.retry_at, now + 100) << "one token per 100 ms at 10/s";
    now += 1000;
    taken = 0;
    for (int i = 0; i < 100; ++i) taken += (i % 2 ? j : other).rate.take_tokens(3, 10, 10, 0, now).granted;
    EXPECT_EQ(taken, 10) << "one second's worth";
}

TEST_F(JournalTest, DailyQuotaPausesUntilTheNextUtcDay) {
    Millis day = 86'400'000;
    Millis now = 20'000 * day + 3'600'000;  // 01:00 UTC
    int taken = 0;
    for (int i = 0; i < 100; ++i, now += 1000) taken += j.rate.take_tokens(10, 1000, 1000, 25, now).granted;
    EXPECT_EQ(taken, 25);
    auto g = j.rate.take_tokens(1, 1000, 1000, 25, now);
    EXPECT_TRUE(g.quota_exhausted);
    EXPECT_EQ(g.retry_at, 20'001 * day);
    Journal reopened(dir.file("state/journal.db"));
    EXPECT_TRUE(reopened.rate.take_tokens(1, 1000, 1000, 25, now).quota_exhausted) << "counted across restarts";
    EXPECT_EQ(reopened.rate.take_tokens(1, 1000, 1000, 25, 20'001 * day).granted, 1) << "a new day";
}

TEST_F(JournalTest, SurvivesReopening) {
    j.updates.enqueue("crm", update("1", "h"), 1000, false);
    Journal again(dir.file("state/journal.db"));
    EXPECT_EQ(again.updates.counts("crm").queued, 1);
}

TEST_F(JournalTest, RetentionDeletesOldRunsAndGivesTheSpaceBack) {
    Millis day = 86'400'000, old = 1'000 * day, now = old + 40 * day;
    std::string body(2000, 'x');
    Database::Transaction tx(j.db);  // one commit (FULL sync) instead of 3,000
    for (int i = 0; i < 3000; ++i)
        j.updates.enqueue("crm", update(std::to_string(i), "h" + std::to_string(i), "{\"b\":\"" + body + "\"}"), old,
                          false);
    std::vector<Completion> done;
    for (auto& c : j.updates.claim("crm", 3000, old, 1000))
        done.push_back({c.id, c.identity == "CRMID:9" ? State::Failed : State::Done, 200, "", 0, false, true, {}});
    j.updates.complete("crm", done, old);
    tx.commit();
    auto run = j.runs.begin("crm", "sync", old);
    j.runs.end(RunRecord{run, "crm", "sync", old, 0, 3000}, old);
    auto kept = j.runs.begin("crm", "sync", old + day);
    j.runs.end(RunRecord{kept, "crm", "sync", old + day, 0, 0}, old + day);
    j.updates.enqueue("crm", update("pending", "p"), old, false);  // never pruned
    auto before = j.db.size_bytes();
    EXPECT_EQ(j.updates.counts("crm").done, 2999) << "finished updates left the queue at once";
    auto report = j.apply_retention(now, 30);
    ASSERT_EQ(j.updates.failures("crm").size(), 1u) << "a dead letter stays until it is retried";
    EXPECT_EQ(report.runs, 1) << "the last run of each kind stays";
    EXPECT_EQ(j.updates.counts("crm").queued, 1);
    EXPECT_EQ(j.synced.get("crm", "CRMID:7")->hash, "h7") << "change detection is never pruned";
    EXPECT_LT(j.db.size_bytes(), before / 2) << "freed pages returned to the file system";
    EXPECT_TRUE(j.db.integrity_ok());
}

// The log checkpoints at 64 MiB: a run's end cuts it to nothing, so a daemon between runs
// does not keep it on disk; a reader in the way is neither waited for nor an error.
TEST_F(JournalTest, TheEndOfARunCutsTheLogToNothingUnlessAReaderNeedsIt) {
    auto wal_bytes = [&] { return std::filesystem::file_size(dir.file("state/journal.db-wal")); };
    auto write_some = [&](int from) {
        Database::Transaction tx(j.db);
        for (int i = from; i < from + 500; ++i) j.synced.record("crm", "CRMID:" + std::to_string(i), "h", i, 1000);
        tx.commit();
    };
    write_some(0);
    ASSERT_GT(wal_bytes(), 0u);
    EXPECT_TRUE(j.apply_retention(1000, 30).reclaimed);
    EXPECT_EQ(wal_bytes(), 0u);

    Journal reader(dir.file("state/journal.db"));
    auto s = reader.db.prepare("SELECT identity FROM synced");
    ASSERT_TRUE(s.step());  // holds its snapshot
    write_some(1000);
    auto before = wal_bytes();
    ASSERT_GT(before, 0u);
    // Returns at once (no busy wait), without an error, saying it did not finish.
    EXPECT_FALSE(j.apply_retention(1000, 30).reclaimed);
    EXPECT_GT(wal_bytes(), 0u) << "the reader's snapshot still needs the log";
    EXPECT_EQ(j.synced.get("crm", "CRMID:1200")->hash, "h");
}

// Checkpoints run on a thread of their own once the log holds 16 MiB (no commit waits for
// one); the run's end still cuts the log to nothing, the thread starts again for the next
// run, and a journal closed after it leaves no log behind (its connection closed first).
TEST_F(JournalTest, ALongLogIsCheckpointedOnAThreadAndTheRunsEndStillCutsItToNothing) {
    auto log_file = [&](const std::string& db) { return dir.file(db + "-wal"); };
    std::string body = "{\"b\":\"" + std::string(3000, 'x') + "\"}";  // a page of log a row
    auto write_log = [&](Journal& journal, int from) {                // about 6,000 pages of log
        for (int batch = from; batch < from + 60; ++batch) {
            Database::Transaction tx(journal.db);
            for (int i = 0; i < 100; ++i)
                journal.updates.enqueue("crm", update(std::to_string(batch * 100 + i), "h", body), 1000, false);
            tx.commit();
        }
    };
    EXPECT_EQ(j.db.background_checkpoints(), 0u) << "none before the log is long";
    write_log(j, 0);
    write_log(j, 60);
    auto first = j.db.background_checkpoints();
    EXPECT_GE(first, 1u) << "the thread checkpointed the log";
    {
        // Pages for the run's end to give back: its vacuum commits thousands of pages of log,
        // and the thread must not start again in the middle of it.
        Database::Transaction tx(j.db);
        j.db.exec("DELETE FROM updates WHERE CAST(alt_id AS INTEGER) < 6000");
        tx.commit();
    }
    EXPECT_TRUE(j.apply_retention(1000, 30).reclaimed);
    EXPECT_EQ(std::filesystem::file_size(log_file("state/journal.db")), 0u);
    EXPECT_EQ(j.db.background_checkpoints(), first) << "no checkpoint of the thread's during the run's end";
    write_log(j, 120);
    EXPECT_GT(j.db.background_checkpoints(), first) << "the thread starts again after the run's end";
    EXPECT_EQ(j.updates.counts("crm").queued, 12000);
    EXPECT_TRUE(j.db.integrity_ok());

    {
        Journal other(dir.file("other/journal.db"));
        write_log(other, 0);
        EXPECT_GE(other.db.background_checkpoints(), 1u);
    }
    EXPECT_FALSE(std::filesystem::exists(log_file("other/journal.db")))
        << "the writer closed last and SQLite removed the log";
    Journal reopened(dir.file("other/journal.db"));
    EXPECT_EQ(reopened.updates.counts("crm").queued, 6000);
}

// The checkpoint thread opens the journal by its path. A journal moved away under its
// writer leaves the writer's log at the path: were the thread to read another database put
// there, SQLite would take that log for the other file's and copy the writer's pages into it.
TEST(CheckpointerTest, CopiesTheLogOnlyIntoTheWritersOwnFile) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    auto bytes = [](const std::string& file) {
        std::ifstream in(file, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), {});
    };
    auto write_log = [](sqlite3* db) {
        return sqlite3_exec(db,
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
                            "INSERT INTO t SELECT randomblob(3000) FROM n;",
                            nullptr, nullptr, nullptr);
    };
    // A writer with 200 pages of log that nothing has copied yet.
    auto open_writer = [&](const std::string& file) {
        sqlite3* db = nullptr;
        EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
        EXPECT_EQ(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(v BLOB);",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
        EXPECT_EQ(write_log(db), SQLITE_OK);
        return db;
    };
    {
        auto own_path = dir.file("own.db");
        sqlite3* own_writer = open_writer(own_path);
        auto size_before = std::filesystem::file_size(own_path);
        auto own_file = Checkpointer::file_at(own_path);
        ASSERT_TRUE(own_file);
        Checkpointer own(own_path, *own_file);
        own.request();
        EXPECT_EQ(own.idle_and_completed(), 1u);
        EXPECT_GT(std::filesystem::file_size(own_path), size_before + 200 * 3000) << "the log copied into the file";
        sqlite3_close(own_writer);
    }

    sqlite3* writer = open_writer(path);
    auto writers_file = Checkpointer::file_at(path);
    ASSERT_TRUE(writers_file);
    // The journal moved away; another database (no log of its own) put at its path.
    std::filesystem::rename(path, dir.file("moved.db"));
    {
        sqlite3* other = nullptr;
        ASSERT_EQ(sqlite3_open(dir.file("other.db").c_str(), &other), SQLITE_OK);
        ASSERT_EQ(sqlite3_exec(other, "PRAGMA journal_mode=WAL; CREATE TABLE o(x); INSERT INTO o VALUES (1);", nullptr,
                               nullptr, nullptr),
                  SQLITE_OK);
        sqlite3_close(other);
        std::filesystem::rename(dir.file("other.db"), path);
    }
    auto other_before = bytes(path);
    {
        Checkpointer moved(path, *writers_file);
        moved.request();
        EXPECT_EQ(moved.idle_and_completed(), 0u);
    }
    EXPECT_EQ(bytes(path), other_before) << "nothing of the writer's log copied into the other file";
    EXPECT_TRUE(std::filesystem::exists(path + "-wal")) << "the writer's log is where it was";
    sqlite3_close(writer);
}

// Deleted rows' pages freed whole are not zeroed (secure_delete=FAST): the bodies stay in
// the files until the run's end gives the free pages back and empties the log, whatever
// journal.retain_days says.
TEST_F(JournalTest, TheEndOfARunLeavesNoFinishedUpdatesBodyInTheJournalOrItsLog) {
    auto holds_marker = [&] {
        bool found = false;
        for (auto name : {"state/journal.db", "state/journal.db-wal"}) {
            std::ifstream in(dir.file(name), std::ios::binary);
            std::string bytes((std::istreambuf_iterator<char>(in)), {});
            found = found || bytes.find("Qzxsecret") != std::string::npos;
        }
        return found;
    };
    std::string body = "{\"b\":\"" + std::string(3000, 'x') + "Qzxsecret\"}";  // on an overflow page
    {
        Database::Transaction tx(j.db);
        for (int i = 0; i < 200; ++i)
            j.updates.enqueue("crm", update(std::to_string(i), "h" + std::to_string(i), body), 1000, false);
        tx.commit();
    }
    std::vector<Completion> done;
    for (auto& c : j.updates.claim("crm", 200, 1000, 1000))
        done.push_back({c.id, State::Done, 200, "", 0, false, true, {}});
    j.updates.complete("crm", done, 1000);
    ASSERT_EQ(j.updates.counts("crm").pending(), 0);
    ASSERT_TRUE(holds_marker()) << "the bodies are in the files until given back (else this test proves nothing)";
    EXPECT_TRUE(j.apply_retention(2000, 0).reclaimed);
    EXPECT_FALSE(holds_marker());
    EXPECT_TRUE(j.db.integrity_ok());
}

// A writer that keeps the journal past the busy timeout (another prefsync) leaves the space
// for the next run's end: not finished, and not an error (retention's pruning may still
// throw; dispatch::end_of_run_retention logs that rather than fail the run it ends).
TEST_F(JournalTest, AWriterHoldingTheJournalLeavesItsFreeSpaceForLaterWithoutAnError) {
    {
        Database::Transaction tx(j.db);
        for (int i = 0; i < 200; ++i)
            j.updates.enqueue("crm", update(std::to_string(i), "h", std::string(3000, 'x')), 1000, false);
        tx.commit();
    }
    std::vector<Completion> done;
    for (auto& c : j.updates.claim("crm", 200, 1000, 1000))
        done.push_back({c.id, State::Done, 200, "", 0, false, true, {}});
    j.updates.complete("crm", done, 1000);
    auto freelist = [&] {
        auto s = j.db.prepare("PRAGMA freelist_count");
        return s.step() ? s.i64(0) : -1;
    };
    ASSERT_GT(freelist(), 0);
    Journal other(dir.file("state/journal.db"));
    {
        Database::Transaction holding(other.db);  // the write lock, for the busy timeout and more
        bool reclaimed = true;
        EXPECT_NO_THROW(reclaimed = j.db.reclaim_space());
        EXPECT_FALSE(reclaimed);
        EXPECT_GT(freelist(), 0);
    }
    EXPECT_TRUE(j.db.reclaim_space());
    EXPECT_EQ(freelist(), 0);
}

TEST_F(JournalTest, RunsLeftWithoutAnEndAreEndedWithTheGivenCodeAndTheirCountsKept) {
    auto ended = j.runs.begin("crm", "sync", 1000);
    RunRecord finished{ended, "crm", "sync", 1000, 0, 50};
    finished.exit_code = 0;
    j.runs.end(finished, 2000);
    auto open = j.runs.begin("crm", "backfill", 3000);
    j.runs.begin("hr", "sync", 3000);
    EXPECT_EQ(j.runs.unfinished_jobs(), (std::vector<std::string>{"crm", "hr"}));
    EXPECT_EQ(j.runs.end_unfinished("crm", 4, 5000), 1);
    auto runs = j.runs.recent("crm", 5);
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].id, open);
    EXPECT_EQ(runs[0].ended_at, 5000);
    EXPECT_EQ(runs[0].exit_code, 4);
    EXPECT_EQ(runs[1].ended_at, 2000) << "an ended run keeps its end";
    EXPECT_EQ(runs[1].read, 50);
    EXPECT_EQ(runs[1].exit_code, 0);
    EXPECT_EQ(j.runs.recent("hr", 1)[0].exit_code, -1) << "another job's run is not touched";
    EXPECT_EQ(j.runs.unfinished_jobs(), std::vector<std::string>{"hr"});
    EXPECT_EQ(j.runs.end_unfinished("crm", 4, 6000), 0);
    // `backfill --resume` still continues it: it did not exit 0.
    EXPECT_NE(j.runs.last("crm", "backfill")->exit_code, 0);
    // ... and takes it up again: without an end until it ends, as if never stopped.
    j.runs.reopen(open);
    EXPECT_EQ(j.runs.last("crm", "backfill")->ended_at, 0);
    EXPECT_EQ(j.runs.last("crm", "backfill")->exit_code, -1);
    EXPECT_EQ(j.runs.unfinished_jobs(), (std::vector<std::string>{"crm", "hr"}));
    EXPECT_EQ(j.runs.recent("crm", 5)[1].ended_at, 2000) << "only that run";
    // Runs after it (a daemon's syncs between the stop and the resume): the resumed one is
    // still listed as running, whatever their number.
    for (int i = 0; i < 3; ++i) {
        RunRecord later{j.runs.begin("crm", "sync", 7000 + i), "crm", "sync", 7000 + i, 0, 1};
        later.exit_code = 0;
        j.runs.end(later, 7500 + i);
    }
    auto listed = j.runs.recent("crm", 2);
    ASSERT_EQ(listed.size(), 3u);
    EXPECT_EQ(listed[0].started_at, 7002);
    EXPECT_EQ(listed[1].started_at, 7001);
    EXPECT_EQ(listed[2].id, open) << "the running backfill, older than the last two";
    EXPECT_EQ(j.runs.recent("crm", 10).size(), 5u) << "every run once";
}

// What a request needs on disk before it leaves is its claim; its outcome may be undone by a
// power loss (the update is then in flight again, as after a kill), so it skips its fsync,
// and the next claim's makes it durable.
TEST_F(JournalTest, AnOutcomeCommitsWithoutItsOwnFsyncAndAClaimWithIt) {
    Millis now = 1'000'000;
    {
        Database::Transaction tx(j.db);
        j.updates.enqueue("crm", update("1", "h1", "{}"), now, false);
        j.updates.enqueue("crm", update("2", "h2", "{}"), now, false);
        tx.commit();
    }
    EXPECT_FALSE(j.db.last_commit_deferred());
    auto claimed_at = std::chrono::steady_clock::now();
    auto first = j.updates.claim("crm", 1, now, 1000);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_FALSE(j.db.last_commit_deferred()) << "a claim is durable before its request leaves";
    j.updates.complete("crm", {{first[0].id, State::Done, 200, "", 0, false, true, {}}}, now);
    // Deferred unless a second passed since the claim's fsync (then it is made durable: the
    // bound has its own test), which only a machine stalled that long would see.
    if (std::chrono::steady_clock::now() - claimed_at < std::chrono::milliseconds(900)) {
        EXPECT_TRUE(j.db.last_commit_deferred());
    }
    EXPECT_EQ(j.updates.counts("crm").done, 1);
    auto second = j.updates.claim("crm", 1, now, 1000);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_FALSE(j.db.last_commit_deferred());
}

// A push's feed journals a batch already claimed without waiting for the disk, and sends
// it once the log's sync begun after the commit is over (the sync runs beside the sending).
TEST_F(JournalTest, ABatchClaimedWithoutAnFsyncIsDurableOnceTheLogSyncBegunAfterItIsOver) {
    Millis now = 1'000'000;
    j.updates.enqueue("crm", update("0", "h0", "{}"), now, false);  // durable: the bound counts from it
    EXPECT_FALSE(j.db.last_commit_deferred());
    EXPECT_TRUE(j.db.synced(0)) << "no sync: nothing to wait for";
    std::vector<ClaimedUpdate> claimed;
    {
        Database::Transaction tx(j.db, Database::Sync::deferred);
        for (auto id : {"1", "2"}) {
            std::optional<ClaimedUpdate> one;
            // Deferred like the batch's transaction (a durable one inside it would throw).
            j.updates.enqueue_claimed("crm", update(id, std::string("h") + id, "{}"), now, false, std::nullopt, 60'000,
                                      one, Database::Sync::deferred);
            ASSERT_TRUE(one);
            claimed.push_back(*one);
        }
        tx.commit();
    }
    EXPECT_TRUE(j.db.last_commit_deferred());
    auto first = j.db.begin_sync();
    EXPECT_EQ(first, 1u);
    EXPECT_EQ(j.db.syncs_begun(), first);
    EXPECT_TRUE(j.db.synced(first, true));
    EXPECT_TRUE(j.db.synced(first)) << "over stays over";
    // One at a time: a second waits for the first, and is one more.
    auto second = j.db.begin_sync();
    auto third = j.db.begin_sync();
    EXPECT_EQ(second + 1, third);
    EXPECT_TRUE(j.db.synced(second)) << "the third began once the second was over";
    EXPECT_TRUE(j.db.synced(third, true));
    EXPECT_EQ(j.updates.counts("crm").inflight, 2);
}

TEST_F(JournalTest, AFinishedUpdateLeavesOnlyItsOutcomeSoTheFileShrinksAfterTheRun) {
    Millis now = 1'000'000;
    std::string body(2000, 'x');
    {
        Database::Transaction tx(j.db);
        for (int i = 0; i < 3000; ++i)
            j.updates.enqueue("crm", update(std::to_string(i), "h" + std::to_string(i), "{\"b\":\"" + body + "\"}"),
                              now, false);
        tx.commit();
    }
    auto full = j.db.size_bytes();
    std::vector<Completion> finished;
    auto claimed = j.updates.claim("crm", 3000, now, 1000);
    ASSERT_EQ(claimed.size(), 3000u);
    EXPECT_EQ(claimed[5].body.size(), body.size() + 8) << "the body is there while it may be sent";
    for (auto& c : claimed)
        finished.push_back({c.id, c.id % 100 == 0 ? State::Failed : State::Done, 200, "", 0, false, true, {}});
    j.updates.complete("crm", finished, now);
    j.apply_retention(now, 30);  // nothing is old enough to prune: the finished updates went at once
    EXPECT_EQ(j.updates.counts("crm").done, 2970) << "outcomes are kept (per identity) for explain and status";
    EXPECT_EQ(j.synced.get("crm", "CRMID:1")->synced_at, now);
    EXPECT_TRUE(j.updates.history("crm", "CRMID:1", 10).empty()) << "nothing of a finished update stays queued";
    EXPECT_LT(j.db.size_bytes(), full / 4) << "the pages of finished updates went back to the file system";
    ASSERT_EQ(j.updates.retry_failed("crm", std::nullopt, now), 30);
    auto again = j.updates.claim("crm", 100, now, 1000);
    ASSERT_EQ(again.size(), 30u);
    EXPECT_EQ(again[0].body.size(), body.size() + 8) << "a failed update keeps its body for retry";
    EXPECT_TRUE(j.db.integrity_ok());
}

TEST(JournalFile, ACorruptedOrForeignFileIsRefusedNeverStartedAfresh) {
    testing::TempDir dir;
    auto garbage = dir.write("garbage.db", std::string(8192, 'z'));
    try {
        Journal j(garbage);
        FAIL() << "opened a corrupted file";
    } catch (const JournalError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr(garbage));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("refusing to start"));
    }
    std::ifstream in(garbage, std::ios::binary);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), std::string(8192, 'z')) << "left as it was";
    // Someone else's SQLite database at journal.path.
    auto other = dir.file("other.db");
    {
        sqlite3* db = nullptr;
        sqlite3_open(other.c_str(), &db);
        sqlite3_exec(db, "CREATE TABLE customers(id INTEGER)", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    }
    EXPECT_THROW(Journal j(other), JournalError);
}

// Writes an older journal's tables and rows (and its user_version) at `path`.
void write_old_journal(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
}

// pull_state as versions 1 to 6 had it (version 7 adds the pull's settings).
const char* kPullStateV1 =
    "CREATE TABLE pull_state(job TEXT PRIMARY KEY, run_id INTEGER NOT NULL, "
    "sink_offset INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;";

// The index of accepted answers is gone from a journal an older prefsync made (every pushed
// row paid for it), and what it answered is still answered, by a scan.
TEST(JournalFile, TheIndexOfAcceptedAnswersIsDroppedFromAJournalThatHasIt) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    {
        Journal j(path);
        j.synced.record("crm", "CRMID:1", "h1", 1, 1000, std::nullopt, Outcome::Accepted);
        j.db.exec("CREATE INDEX synced_unverified ON synced(job, identity) WHERE verify > 0");
    }
    Journal j(path);
    auto index = j.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'synced_unverified'");
    ASSERT_TRUE(index.step());
    EXPECT_EQ(index.i64(0), 0);
    EXPECT_TRUE(j.synced.any_unverified("crm"));
    ASSERT_EQ(j.synced.unverified("crm", 10).size(), 1u);
    EXPECT_EQ(j.synced.unverified("crm", 10)[0].identity, "CRMID:1");
}

// Version 12 records why a run ended as it did; the runs of an older journal have no reason.
// A journal's updates table as version 12 had it: holds were due times.
void as_version_12(Journal& j) {
    j.db.exec("DROP INDEX updates_retry");
    j.db.exec("ALTER TABLE updates DROP COLUMN held");
    j.db.exec("CREATE INDEX updates_retry ON updates(job, due_at) WHERE state = 'retry'");
}

TEST(JournalFile, AVersion11JournalsRunsGainAReason) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    {
        Journal j(path);
        RunRecord r;
        r.id = j.runs.begin("crm", "sync", 1000);
        r.job = "crm";
        r.exit_code = 0;
        j.runs.end(r, 2000);
        as_version_12(j);
        j.db.exec("ALTER TABLE runs DROP COLUMN reason");
        j.db.exec("PRAGMA user_version = 11");
    }
    Journal j(path);
    auto runs = j.runs.recent("crm", 5);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].reason, "");
    RunRecord r;
    r.id = j.runs.begin("crm", "sync", 3000);
    r.job = "crm";
    r.exit_code = 4;
    r.reason = "source: could not query:\nERROR:  relation \"x\" does not exist\r";
    j.runs.end(r, 4000);
    runs = j.runs.recent("crm", 5);
    ASSERT_EQ(runs.size(), 2u);
    EXPECT_EQ(runs[0].reason, "source: could not query: ERROR:  relation \"x\" does not exist ")
        << "one line, as status prints a run on one";
    // A run its process left without an end is ended, and says so.
    j.runs.begin("crm", "sync", 5000);
    EXPECT_EQ(j.runs.end_unfinished("crm", 4, 6000), 1);
    EXPECT_THAT(j.runs.recent("crm", 1)[0].reason, ::testing::HasSubstr("its process stopped"));
}

// Version 12 wrote holds into the due time (the largest: a duplicate id's row; then one held
// for a read; then one of a row that left): version 13 marks them in `held`, due at once
// when released, and a retry's due time is kept.
TEST(JournalFile, AVersion12JournalsHoldsBecomeMarks) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    {
        Journal j(path);
        for (auto id : {"A", "B", "C", "D"}) j.updates.enqueue("crm", update(id, "h1"), 100, false);
        as_version_12(j);
        j.db.exec(("UPDATE updates SET state = 'retry', due_at = " + std::to_string(kMax - 1) + " WHERE alt_id = 'A'")
                      .c_str());
        j.db.exec(
            ("UPDATE updates SET state = 'retry', due_at = " + std::to_string(kMax) + " WHERE alt_id = 'B'").c_str());
        j.db.exec(("UPDATE updates SET state = 'retry', due_at = " + std::to_string(kMax - 2) + " WHERE alt_id = 'C'")
                      .c_str());
        j.db.exec("UPDATE updates SET state = 'retry', due_at = 5000 WHERE alt_id = 'D'");
        j.db.exec("PRAGMA user_version = 12");
    }
    Journal j(path);
    EXPECT_EQ(j.updates.held("crm"), 1) << "the duplicate id's row";
    EXPECT_EQ(j.updates.counts("crm").held, 3);
    EXPECT_TRUE(j.updates.claim("crm", 10, 1000, 60'000).empty());
    EXPECT_EQ(j.updates.release_held("crm", UpdateQueue::Held::ForRead), 1);
    auto claimed = j.updates.claim("crm", 10, 1000, 60'000);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].identity, "CRMID:A");
    EXPECT_EQ(j.updates.claim("crm", 10, 5000, 60'000).size(), 1u) << "D at its due time";
    EXPECT_EQ(j.updates.release_held("crm"), 2);
    EXPECT_EQ(j.updates.claim("crm", 10, 5000, 60'000).size(), 2u);
}

TEST(JournalFile, AJournalOfTheFirstVersionIsMigratedKeepingItsRows) {
    testing::TempDir dir;
    auto path = dir.file("v1.db");
    // The version-1 schema's tables the migrations touch, with a pending row.
    write_old_journal(
        path,
        std::string(kPullStateV1) +
            "CREATE TABLE updates(id INTEGER PRIMARY KEY, job TEXT NOT NULL, identity TEXT NOT NULL, "
            "alt_type TEXT, alt_id TEXT, profile_id INTEGER, origin TEXT, body TEXT, hash TEXT NOT NULL, "
            "state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due_at INTEGER NOT NULL DEFAULT 0, "
            "lease_until INTEGER NOT NULL DEFAULT 0, resolve INTEGER NOT NULL DEFAULT 0, claimed_by INTEGER, "
            "last_status INTEGER, last_error TEXT, run_id INTEGER, created_at INTEGER NOT NULL, "
            "updated_at INTEGER NOT NULL);"
            "CREATE TABLE synced(job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, "
            "profile_id INTEGER, synced_at INTEGER NOT NULL, PRIMARY KEY(job, identity)) WITHOUT ROWID;"
            "CREATE TABLE runs(id INTEGER PRIMARY KEY, job TEXT NOT NULL, kind TEXT NOT NULL, "
            "started_at INTEGER NOT NULL, ended_at INTEGER, read INTEGER DEFAULT 0, queued INTEGER DEFAULT 0, "
            "unchanged INTEGER DEFAULT 0, rejected INTEGER DEFAULT 0, done INTEGER DEFAULT 0, "
            "accepted INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, retries INTEGER DEFAULT 0, exit_code INTEGER);"
            "INSERT INTO synced VALUES('crm', 'CRMID:2', 'h2', 7, 1);"
            "CREATE TABLE schedule_state(job TEXT PRIMARY KEY, last_fire INTEGER NOT NULL) WITHOUT ROWID;"
            "CREATE TABLE job_locks(job TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, "
            "owner TEXT NOT NULL, acquired_at INTEGER NOT NULL) WITHOUT ROWID;"
            "INSERT INTO updates(job, identity, alt_type, alt_id, body, hash, state, resolve, created_at, updated_at) "
            "VALUES('crm', 'CRMID:1', 'CRMID', '1', '{}', 'h', 'inflight', 1, 1, 1);"
            "INSERT INTO schedule_state VALUES('crm', 5);"
            "PRAGMA user_version = 1;");
    Journal j(path);
    auto claimed = j.updates.claim("crm", 10, 1000, 100);
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_TRUE(claimed[0].resolve) << "an update of unknown outcome keeps its mark across the upgrade";
    EXPECT_EQ(claimed[0].body, "{}") << "a pending update keeps its body across the upgrade";
    EXPECT_EQ(j.schedule.last_fire("crm"), 5);
    EXPECT_FALSE(j.schedule.parked("crm"));
    EXPECT_EQ(j.synced.get("crm", "CRMID:2")->hash, "h2") << "change detection survives the upgrade";
    EXPECT_EQ(j.synced.count_present("crm"), 1);
    j.marked.put("crm", {"CRMID:3", "CRMID", "3", "crm.csv:4", std::nullopt});  // version 14's table
    EXPECT_EQ(j.marked.of("crm").size(), 1u);
    auto vacuum = j.db.prepare("PRAGMA auto_vacuum");
    ASSERT_TRUE(vacuum.step());
    EXPECT_EQ(vacuum.i64(0), 2) << "incremental, once its one-time VACUUM ran";
}

TEST(JournalFile, AVersion4JournalKeepsWhatIsToDoAndFoldsEachIdentitysLastOutcomeIntoChangeDetection) {
    testing::TempDir dir;
    auto path = dir.file("v4.db");
    std::string sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";  // a whole SHA-256
    {
        // The version-4 tables the migrations touch: bodies apart, every finished update kept.
        std::string sql =
            std::string(kPullStateV1) +
            "CREATE TABLE updates(id INTEGER PRIMARY KEY, job TEXT NOT NULL, identity TEXT NOT NULL, "
            "alt_type TEXT, alt_id TEXT, profile_id INTEGER, origin TEXT, hash TEXT NOT NULL, state TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, due_at INTEGER NOT NULL DEFAULT 0, "
            "lease_until INTEGER NOT NULL DEFAULT 0, resolve INTEGER NOT NULL DEFAULT 0, claimed_by INTEGER, "
            "last_status INTEGER, last_error TEXT, run_id INTEGER, created_at INTEGER NOT NULL, "
            "updated_at INTEGER NOT NULL, claim_token INTEGER, op TEXT);"
            "CREATE TABLE bodies(id INTEGER PRIMARY KEY REFERENCES updates(id) ON DELETE CASCADE, body TEXT NOT NULL);"
            "CREATE INDEX updates_state ON updates(job, state);"
            "CREATE INDEX updates_accepted ON updates(job, id) WHERE state = 'accepted';"
            "CREATE TABLE synced(job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, profile_id INTEGER, "
            "synced_at INTEGER NOT NULL, body TEXT, gone TEXT, PRIMARY KEY(job, identity)) WITHOUT ROWID;"
            "INSERT INTO updates(id, job, identity, alt_type, alt_id, hash, state, resolve, created_at, updated_at) "
            "VALUES (1, 'crm', 'CRMID:1', 'CRMID', '1', 'h1', 'retry', 1, 1, 1),"
            "(2, 'crm', 'CRMID:2', 'CRMID', '2', '" +
            sha +
            "', 'done', 0, 1, 1),"
            "(8, 'crm', 'CRMID:6', 'CRMID', '6', '" +
            sha +
            "', 'queued', 0, 1, 1),"
            "(3, 'crm', 'CRMID:3', 'CRMID', '3', 'h3a', 'done', 0, 1, 1),"
            "(4, 'crm', 'CRMID:3', 'CRMID', '3', 'h3b', 'accepted', 0, 2, 500),"
            "(5, 'crm', 'CRMID:4', 'CRMID', '4', 'h4', 'verified', 0, 1, 1),"
            "(6, 'crm', 'CRMID:5', 'CRMID', '5', 'h5', 'superseded', 0, 1, 1),"
            "(7, 'crm', 'CRMID:5', 'CRMID', '5', 'h5b', 'failed', 0, 1, 1);"
            "INSERT INTO bodies VALUES (1, '{\"a\":1}'), (7, '{\"b\":2}'), (8, '{}');"
            "UPDATE updates SET run_id = 9 WHERE id IN (2, 8);"
            "INSERT INTO synced(job, identity, hash, profile_id, synced_at) VALUES ('crm', 'CRMID:2', '" +
            sha +
            "', 7, 1), ('crm', 'CRMID:3', 'h3b', 8, 2), ('crm', 'CRMID:4', 'h4', 9, 1);"
            "PRAGMA user_version = 4;";
        write_old_journal(path, sql);
    }
    Journal j(path);
    auto c = j.updates.counts("crm");
    EXPECT_EQ(c.retry, 1);
    EXPECT_EQ(c.queued, 1);
    EXPECT_EQ(c.failed, 1);
    EXPECT_EQ(c.done, 1) << "CRMID:2";
    EXPECT_EQ(c.accepted, 1) << "CRMID:3: its last answer was a 202";
    EXPECT_EQ(c.verified, 1) << "CRMID:4";
    ASSERT_EQ(j.synced.unverified("crm", 10).size(), 1u);
    EXPECT_EQ(j.synced.unverified("crm", 10)[0].alt_id, "3");
    auto unverified = j.synced.unverified("crm", 10);
    EXPECT_EQ(j.synced.mark_verified("crm", unverified, 1500), std::vector<Millis>{1000});
    EXPECT_TRUE(j.synced.mark_verified("crm", unverified, 1600).empty()) << "once";
    // A version-4 hash is a whole SHA-256; today's is its first half: unchanged, not re-sent.
    EXPECT_EQ(j.synced.get("crm", "CRMID:2")->hash, sha.substr(0, 32));
    NewUpdate same{"CRMID:2", "CRMID", "2", std::nullopt, "f.csv:3", "{}", sha.substr(0, 32)};
    EXPECT_EQ(j.updates.enqueue("crm", same, 2000, false), EnqueueResult::Unchanged);
    // A backfill interrupted before the upgrade and resumed after it skips what it sent, and
    // what it still has queued.
    EXPECT_EQ(j.updates.enqueue("crm", same, 2000, true, 9), EnqueueResult::AlreadyInRun);
    NewUpdate queued{"CRMID:6", "CRMID", "6", std::nullopt, "f.csv:7", "{}", sha.substr(0, 32)};
    EXPECT_EQ(j.updates.enqueue("crm", queued, 2000, true, 9), EnqueueResult::AlreadyInRun);
    auto claimed = j.updates.claim("crm", 10, 1'000'000, 100);
    ASSERT_EQ(claimed.size(), 2u);
    EXPECT_TRUE(claimed[0].resolve) << "a retry of unknown outcome keeps its mark across the upgrade";
    EXPECT_FALSE(claimed[1].resolve);
    EXPECT_EQ(claimed[0].body, R"({"a":1})");
    ASSERT_EQ(j.updates.retry_failed("crm", std::nullopt, 2000), 1);
    j.updates.complete("crm", {{claimed[0].id, State::Done, 200, "", 0, false, true, 5}}, 2000);
    auto retried = j.updates.claim("crm", 10, 3000, 100);
    ASSERT_EQ(retried.size(), 1u);
    EXPECT_EQ(retried[0].body, R"({"b":2})") << "a dead letter keeps its body across the upgrade";
    EXPECT_TRUE(j.db.integrity_ok());
}

// Version 7 records the settings of an unfinished pull. A pull journaled before keeps its
// items and output size, and has no settings: it is resumed as it was, then takes the
// settings it is resumed under.
TEST(JournalFile, AVersion6JournalKeepsItsUnfinishedPullWithoutSettings) {
    testing::TempDir dir;
    auto path = dir.file("v6.db");
    write_old_journal(
        path,
        std::string(kPullStateV1) +
            "CREATE TABLE pull_items(job TEXT NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, origin TEXT, "
            "expected TEXT, state TEXT NOT NULL DEFAULT 'pending', status INTEGER NOT NULL DEFAULT 0, error TEXT, "
            "detail TEXT, PRIMARY KEY(job, seq));"
            "CREATE UNIQUE INDEX pull_items_item ON pull_items(job, item);"
            "INSERT INTO pull_state VALUES ('p', 3, 1200);"
            "INSERT INTO pull_items(job, seq, item, state) VALUES ('p', 1, 'pid:1', 'done'), ('p', 2, 'pid:2', "
            "'pending');"
            "PRAGMA user_version = 6;");
    Journal j(path);
    auto state = j.pulls.state("p");
    ASSERT_TRUE(state);
    EXPECT_EQ(state->run_id, 3);
    EXPECT_EQ(state->sink_offset, 1200);
    EXPECT_EQ(state->fingerprint, "") << "unknown: the run resumes as before";
    EXPECT_EQ(state->partial_path, "");
    EXPECT_EQ(j.pulls.counts("p")["pending"], 1);
    j.pulls.adopt_settings("p", "f1", "/out/p.csv.partial");
    j.pulls.adopt_settings("p", "f2", "/out/other.partial");  // only a run without settings adopts
    EXPECT_EQ(j.pulls.state("p")->fingerprint, "f1");
    EXPECT_EQ(j.pulls.state("p")->partial_path, "/out/p.csv.partial");
    EXPECT_EQ(j.pulls.state("p")->sink_offset, 1200);
    j.pulls.begin("p", 4, "f3", "");
    EXPECT_EQ(j.pulls.state("p")->fingerprint, "f3");
    EXPECT_EQ(j.pulls.state("p")->partial_path, "") << "a table sink has no partial file";
    EXPECT_EQ(j.pulls.state("p")->sink_offset, 0);
    EXPECT_TRUE(j.pulls.counts("p").empty()) << "a new run forgets the old one's items";
    EXPECT_TRUE(j.db.integrity_ok());
}

// Version 8 keys pull items by (job, seq) alone: the items an unfinished pull journaled
// before are copied over, and an item is still journaled once.
TEST(JournalFile, AVersion7JournalsPullItemsAreKeptInTheirNewTable) {
    testing::TempDir dir;
    auto path = dir.file("v7.db");
    write_old_journal(
        path,
        "CREATE TABLE pull_state(job TEXT PRIMARY KEY, run_id INTEGER NOT NULL, sink_offset INTEGER NOT NULL "
        "DEFAULT 0, fingerprint TEXT, partial_path TEXT) WITHOUT ROWID;"
        "CREATE TABLE pull_items(job TEXT NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, origin TEXT, "
        "expected TEXT, state TEXT NOT NULL DEFAULT 'pending', status INTEGER NOT NULL DEFAULT 0, error TEXT, "
        "detail TEXT, PRIMARY KEY(job, seq));"
        "CREATE UNIQUE INDEX pull_items_item ON pull_items(job, item);"
        "CREATE TABLE pull_seen(job TEXT NOT NULL, profile_id INTEGER NOT NULL, PRIMARY KEY(job, profile_id)) "
        "WITHOUT ROWID;"
        "INSERT INTO pull_state VALUES ('p', 3, 1200, 'f', '/out/p.jsonl.partial');"
        "INSERT INTO pull_items(job, seq, item, origin, expected, state, status) VALUES "
        "('p', 1, 'pid:1', 'a.csv:2', NULL, 'done', 200), ('p', 2, 'pid:2', 'a.csv:3', '{\"A\":1}', 'pending', 0);"
        "INSERT INTO pull_seen VALUES ('p', 1);"
        "PRAGMA user_version = 7;");
    Journal j(path);
    auto pending = j.pulls.pending("p", 0, 10);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].seq, 2);
    EXPECT_EQ(pending[0].item, "pid:2");
    EXPECT_EQ(pending[0].origin, "a.csv:3");
    EXPECT_EQ(pending[0].expected, "{\"A\":1}");
    EXPECT_EQ(j.pulls.counts("p")["done"], 1);
    EXPECT_EQ(j.pulls.seen_ids("p"), std::vector<std::int64_t>{1});
    auto again = j.pulls.add_item("p", "pid:1", "a.csv:9", "");
    ASSERT_TRUE(again) << "the item index came over too";
    EXPECT_EQ(again->seq, 1);
    EXPECT_FALSE(j.pulls.add_item("p", "pid:3", "a.csv:4", ""));
    EXPECT_EQ(j.pulls.last_seq("p"), 3);
    auto table = j.db.prepare("SELECT sql FROM sqlite_master WHERE name = 'pull_items'");
    ASSERT_TRUE(table.step());
    EXPECT_THAT(table.text(0), ::testing::HasSubstr("WITHOUT ROWID"));
    auto old = j.db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'pull_items_v7'");
    ASSERT_TRUE(old.step());
    EXPECT_EQ(old.i64(0), 0);
    // Written without auto_vacuum, as a first-version journal whose one-time VACUUM a crash
    // cut short would be at a later version: it gets it now.
    auto vacuum = j.db.prepare("PRAGMA auto_vacuum");
    ASSERT_TRUE(vacuum.step());
    EXPECT_EQ(vacuum.i64(0), 2);
    EXPECT_TRUE(j.db.integrity_ok());
}

// An item fetched, then queued again by a later row of its id (reconcile), keeps the profile
// its first fetch wrote known as written: whether that fetch's outcome is recorded before
// the item moves or after, and whatever the second fetch finds.
TEST_F(JournalTest, AProfileWrittenForAnItemQueuedAgainStaysKnownAsWritten) {
    j.pulls.begin("p", 1, "", "");
    const std::string by_crmid = "alt:CRMID\x1f";
    EXPECT_FALSE(j.pulls.add_item("p", by_crmid + "A", "f:2", "{\"A\":1}"));
    EXPECT_FALSE(j.pulls.add_item("p", by_crmid + "B", "f:3", "{\"A\":1}"));
    // A: recorded first (profile 7), then a later row queues it again; the refetch finds 7
    // written already, so its outcome names no profile.
    j.pulls.complete("p", {PullOutcome{1, "identical", 200, "", "", "", "", 7}}, {}, 10);
    j.pulls.replace_item("p", 1, "f:4", "{\"A\":2}", true);
    auto a = j.pulls.pending("p", 0, 10);
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[1].origin, "f:4");
    j.pulls.complete("p", {PullOutcome{a[1].seq, "differing", 200, "", "A", "", "", std::nullopt}}, {}, 20);
    // B: queued again while its outcome (profile 8) still waited for the output's fsync;
    // that outcome then finds no item at its seq.
    j.pulls.replace_item("p", 2, "f:5", "{\"A\":3}", true);
    j.pulls.complete("p", {PullOutcome{2, "identical", 200, "", "", "", "", 8}}, {}, 30);
    auto seen = j.pulls.seen_ids("p");
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<std::int64_t>{7, 8}));
    EXPECT_EQ(j.pulls.counts("p")["pending"], 1) << "B's new seq, fetched again";
}

// Each profile a pull wrote is remembered with the run, so a resumed run writes none twice:
// an item's first profile with its outcome, a search's further ones beside it.
TEST_F(JournalTest, APullRemembersEveryProfileItWroteUntilTheNextRunBegins) {
    j.pulls.begin("p", 1, "", "");
    EXPECT_FALSE(j.pulls.add_item("p", "pid:11", "f:2", ""));
    EXPECT_FALSE(j.pulls.add_item("p", "search:0", "", ""));
    EXPECT_FALSE(j.pulls.add_item("p", "pid:99", "f:3", ""));
    PullOutcome one{1, "done", 200, "", "", "", "", 11};
    PullOutcome search{2, "done", 200, "", "", "", "", 12};
    j.pulls.complete("p", {one, search}, {13, 14}, 100);
    auto seen = j.pulls.seen_ids("p");
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<std::int64_t>{11, 12, 13, 14})) << "not the pending item's";
    j.pulls.begin("p", 2, "", "");
    EXPECT_TRUE(j.pulls.seen_ids("p").empty());
}

// A later row of an item: in place while the item waits; once it was fetched, pending again
// after every other item, its earlier outcome forgotten (the last row's body is compared).
TEST_F(JournalTest, APullItemsLaterRowReplacesItsBodyAndAFetchedOneIsQueuedAgain) {
    j.pulls.begin("p", 1, "", "");
    EXPECT_FALSE(j.pulls.add_item("p",
                                  "alt:CRMID\x1f"
                                  "R1",
                                  "f:2", "{\"A\":1}"));
    EXPECT_FALSE(j.pulls.add_item("p",
                                  "alt:CRMID\x1f"
                                  "R2",
                                  "f:3", "{\"A\":2}"));
    auto known = j.pulls.add_item("p",
                                  "alt:CRMID\x1f"
                                  "R1",
                                  "f:4", "{\"A\":3}");
    ASSERT_TRUE(known);
    EXPECT_EQ(known->seq, 1);
    EXPECT_EQ(known->origin, "f:2");
    EXPECT_TRUE(known->pending);
    j.pulls.replace_item("p", known->seq, "f:4", "{\"A\":3}", false);
    auto pending = j.pulls.pending("p", 0, 10);
    ASSERT_EQ(pending.size(), 2u);
    EXPECT_EQ(pending[0].origin, "f:4");
    EXPECT_EQ(pending[0].expected, "{\"A\":3}");

    j.pulls.complete("p", {PullOutcome{1, "differing", 200, "", "A", "", ""}}, {}, 0);
    known = j.pulls.add_item("p",
                             "alt:CRMID\x1f"
                             "R1",
                             "f:5", "{\"A\":4}");
    ASSERT_TRUE(known);
    EXPECT_FALSE(known->pending);
    EXPECT_EQ(j.pulls.last_seq("p"), 2);
    j.pulls.replace_item("p", known->seq, "f:5", "{\"A\":4}", true);
    EXPECT_EQ(j.pulls.counts("p"), (std::map<std::string, std::int64_t>{{"pending", 2}}));
    pending = j.pulls.pending("p", 2, 10);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].seq, 3);
    EXPECT_EQ(pending[0].origin, "f:5");
    EXPECT_EQ(pending[0].expected, "{\"A\":4}");
}

// --- read-only handles (status, failures, plan, explain) ----------------------------------

// Every file in `dir` with a hash of its bytes: a read-only handle changes none of them, nor
// adds one.
std::map<std::string, std::size_t> files_in(const std::string& dir) {
    std::map<std::string, std::size_t> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        out[e.path().filename().string()] = std::hash<std::string>{}(testing::read_file(e.path().string()));
    return out;
}

// A journal with something for each query a reader makes: a dead letter, a pending update,
// an accepted identity with its body, runs, a parked job, a pull's failed item, a watermark.
void fill_for_readers(Journal& j) {
    j.updates.enqueue("crm", update("1", "a", R"({"n":1})"), 1000, false);
    j.updates.enqueue("crm", update("2", "b", R"({"n":2})"), 1000, false);
    auto claimed = j.updates.claim("crm", 10, 1000, 500);
    j.updates.complete("crm",
                       {{claimed[0].id, State::Failed, 400, "400 bad request", 0, false, true, {}},
                        {claimed[1].id, State::Done, 200, "", 0, false, true, 7, R"({"n":2})"}},
                       1100);
    j.updates.enqueue("crm", update("3", "c"), 1200, false);
    auto run = j.runs.begin("crm", "sync", 1000);
    RunRecord ended{run, "crm", "sync", 1000, 0, 3};
    ended.exit_code = 2;
    j.runs.end(ended, 1300);
    j.schedule.park("crm", Parked{5000, "the source is gone", 3});
    j.pulls.begin("p", 2, "f", "");
    j.pulls.add_item("p", "pid:9", "in.csv:2");
    j.pulls.complete("p", {{1, "failed", 500, "server error", "", "", ""}}, {}, 0);
    j.watermarks.set("crm", "src", Watermark{"2024-01-01", "k"}, 1400);
}

// The removals a read left (small_stores.hpp): one per job and identity (a second put
// replaces it), erased one by one, cleared per job, and forgotten with the job's state.
TEST_F(JournalTest, MarkedRemovalsArePerJobAndIdentityAndForgottenWithTheJobsState) {
    j.marked.put("crm", {"CRMID:C1", "CRMID", "C1", "crm.csv:2", 7});
    j.marked.put("crm", {"CRMID:C2", "CRMID", "C2", "crm.csv:3", std::nullopt});
    j.marked.put("crm", {"CRMID:C1", "CRMID", "C1", "crm.csv:9", 7});
    j.marked.put("erp", {"CRMID:C1", "CRMID", "C1", "erp.csv:2", std::nullopt});
    auto crm = j.marked.of("crm");
    ASSERT_EQ(crm.size(), 2u);
    EXPECT_EQ(crm[0].identity, "CRMID:C1");
    EXPECT_EQ(crm[0].alt_type, "CRMID");
    EXPECT_EQ(crm[0].alt_id, "C1");
    EXPECT_EQ(crm[0].origin, "crm.csv:9");
    EXPECT_EQ(crm[0].profile_id, 7);
    EXPECT_EQ(crm[1].identity, "CRMID:C2");
    EXPECT_EQ(crm[1].profile_id, std::nullopt);
    j.marked.erase("crm", "CRMID:C2");
    EXPECT_EQ(j.marked.of("crm").size(), 1u);
    j.forget_job_state("crm");
    EXPECT_TRUE(j.marked.of("crm").empty());
    ASSERT_EQ(j.marked.of("erp").size(), 1u);
    j.marked.clear("erp");
    EXPECT_TRUE(j.marked.of("erp").empty());
}

// Answers are staged and merged into `synced` in identity order (synced_store.hpp).
TEST_F(JournalTest, AnIdentityAnsweredTwiceBeforeAMergeEndsAsRecordingEachInTurnLeavesIt) {
    j.synced.record("crm", "CRMID:2", "h2", 6, 1000);  // written straight: CRMID:1 comes before it
    j.synced.record("crm", "CRMID:1", "h1", 5, 1000, std::string(R"({"a":1})"), Outcome::Accepted, 7);
    j.synced.record("crm", "CRMID:1", "h3", std::nullopt, 1100, std::nullopt, Outcome::Done, std::nullopt);
    {
        // Staged, both answers: a look (read-only, it cannot merge) reads them as merged.
        Journal r(dir.file("state/journal.db"), Access::read_only);
        EXPECT_EQ(r.synced.get("crm", "CRMID:2")->hash, "h2");
        auto one = r.synced.get("crm", "CRMID:1");
        ASSERT_TRUE(one);
        EXPECT_EQ(one->hash, "h3");
        EXPECT_EQ(one->profile_id, 5);
        auto staged = j.db.prepare("SELECT count(*) FROM synced_staged");
        ASSERT_TRUE(staged.step());
        EXPECT_EQ(staged.i64(0), 2);
    }
    j.synced.merge();
    Journal r(dir.file("state/journal.db"), Access::read_only);
    auto one = r.synced.get("crm", "CRMID:1");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->hash, "h3") << "the later answer";
    EXPECT_EQ(one->profile_id, 5) << "an answer without a profile id keeps the one known";
    EXPECT_EQ(one->verification, "") << "a 200 after the 202: nothing to verify";
    EXPECT_EQ(one->run_id, std::nullopt);
    EXPECT_EQ(one->synced_at, 1100);
    EXPECT_EQ(r.synced.last_body("crm", "CRMID:1"), std::nullopt);
    EXPECT_EQ(r.synced.get("crm", "CRMID:2")->hash, "h2");
    EXPECT_EQ(r.synced.count_present("crm"), 2);
}

TEST_F(JournalTest, AStagedAnswerIsReadByItsStoreAtOnceAndByOthersOnceAMergeIsDue) {
    j.synced.record("crm", "CRMID:5", "h5", 5, 1000);
    j.synced.record("crm", "CRMID:1", "h1", 5, 1000);  // before CRMID:5: staged
    EXPECT_EQ(j.synced.get("crm", "CRMID:1")->hash, "h1") << "its own store merges before it reads";
    Journal r(dir.file("state/journal.db"), Access::read_only);
    EXPECT_EQ(r.synced.get("crm", "CRMID:1")->hash, "h1");

    j.synced.record("crm", "CRMID:2", "h2", 6, 5000);
    j.synced.merge_if_due(5000 + SyncedStore::kMergeAfter - 1);
    EXPECT_FALSE(r.synced.get("crm", "CRMID:2")) << "staged, not yet merged";
    j.synced.merge_if_due(5000 + SyncedStore::kMergeAfter);
    EXPECT_EQ(r.synced.get("crm", "CRMID:2")->hash, "h2");

    {
        Database::Transaction tx(j.db);
        for (std::size_t i = 0; i < SyncedStore::kMergeRows; ++i)
            j.synced.record("crm", "CRMID:0" + std::to_string(i), "h", 1, 9000);
        tx.commit();
    }
    j.synced.merge_if_due(9000);
    EXPECT_EQ(r.synced.count_present("crm"), static_cast<std::int64_t>(SyncedStore::kMergeRows) + 3)
        << "merged once that many are staged, however young";
}

TEST_F(JournalTest, EveryReadAndRemovalOfTheStoreThatStagedAnAnswerComesAfterIt) {
    j.synced.record("crm", "CRMID:9", "h9", 9, 1000);  // written straight; every key below is staged
    j.synced.record("crm", "CRMID:1", "h1", 1, 1000, std::string(R"({"a":1})"), Outcome::Accepted);
    EXPECT_EQ(j.synced.last_body("crm", "CRMID:1"), R"({"a":1})") << "mirror mode's diff base";
    j.synced.record("crm", "CRMID:2", "h2", 2, 1100, std::nullopt, Outcome::Accepted);
    EXPECT_TRUE(j.synced.any_unverified("crm"));
    EXPECT_EQ(j.synced.unverified("crm", 10).size(), 2u);
    j.synced.record("crm", "CRMID:3", "h3", 3, 1200);
    EXPECT_EQ(j.synced.count_present("crm"), 4);
    j.synced.record("crm", "CRMID:4", "h4", 4, 1300);
    int present = 0;
    j.synced.for_each_present("crm", [&](const KnownIdentity&) { ++present; });
    EXPECT_EQ(present, 5);
    j.synced.record("crm", "CRMID:5", "h5", 5, 1400);
    EXPECT_EQ(j.synced.counts("crm").done, 4);
    // A removal answered after the write that is still staged: the removal is the newer.
    j.synced.record("crm", "CRMID:6", "h6", 6, 1500);
    j.synced.mark_gone("crm", "CRMID:6", "deactivated", std::nullopt, 1600);
    j.synced.record("crm", "CRMID:7", "h7", 7, 1500);
    j.synced.mark_gone("crm", "CRMID:7", "", std::nullopt, 1600);
    j.synced.merge();
    EXPECT_EQ(j.synced.get("crm", "CRMID:6")->gone, "deactivated");
    EXPECT_FALSE(j.synced.get("crm", "CRMID:7")) << "deleted, forgotten";
}

TEST_F(JournalTest, AMergeRolledBackLeavesItsAnswersStagedAndStillRead) {
    j.synced.record("crm", "CRMID:9", "h9", 9, 1000);
    j.synced.record("crm", "CRMID:1", "h1", 5, 1000);  // staged
    {
        Database::Transaction tx(j.db);
        EXPECT_EQ(j.synced.get("crm", "CRMID:1")->profile_id, 5) << "merged inside the transaction";
    }  // rolled back: the answer is staged again, not merged
    auto again = j.synced.get("crm", "CRMID:1");
    ASSERT_TRUE(again) << "the store knows it is still staged and merges it again";
    EXPECT_EQ(again->profile_id, 5);
}

TEST_F(JournalTest, AnswersStagedByAProcessThatWasKilledAreMergedByTheNextRunBeforeItReadsAnything) {
    auto path = dir.file("state/journal.db");
    j.synced.record("crm", "CRMID:1", "h0", 4, 500);
    j.synced.merge();
    // What a process killed after recording, before its merge, leaves.
    write_old_journal(path,
                      "INSERT INTO synced_staged(job, identity, hash, profile_id, synced_at) "
                      "VALUES ('crm', 'CRMID:1', 'h1', NULL, 1000), ('crm', 'CRMID:2', 'h2', 9, 1000)");
    EXPECT_EQ(j.synced.get("crm", "CRMID:1")->hash, "h0") << "another connection's staged answers: not seen";
    // A run, once it holds the job's lock (push_run.cpp).
    j.synced.merge_leftovers();
    auto one = j.synced.get("crm", "CRMID:1");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->hash, "h1");
    EXPECT_EQ(one->profile_id, 4);
    EXPECT_EQ(j.synced.get("crm", "CRMID:2")->profile_id, 9);
    EXPECT_EQ(j.updates.enqueue("crm", update("2", "h2"), 2000, false), EnqueueResult::Unchanged);
    auto left = j.db.prepare("SELECT count(*) FROM synced_staged");
    ASSERT_TRUE(left.step());
    EXPECT_EQ(left.i64(0), 0);
}

TEST_F(JournalTest, AReadOnlyLookReadsWhatAKilledProcessLeftStagedAsMergedAndLeavesItStaged) {
    auto path = dir.file("state/journal.db");
    j.synced.record("crm", "CRMID:1", "h0", 4, 500, std::string(R"({"n":0})"));
    j.synced.record("crm", "CRMID:3", "h3", 6, 500);
    j.synced.record("crm", "CRMID:4", "h4", 8, 500);
    j.synced.mark_gone("crm", "CRMID:4", "deactivated", std::nullopt, 600);
    // What a process killed after recording, before its merge, leaves: CRMID:2 answered
    // twice (the later answer without a profile id), CRMID:4 back in the source.
    write_old_journal(
        path,
        "INSERT INTO synced_staged(job, identity, hash, profile_id, synced_at, body, verify) VALUES "
        "('crm', 'CRMID:1', 'h1', NULL, 1000, '{\"n\":1}', 1000), "
        "('crm', 'CRMID:2', 'h2', 9, 1000, NULL, NULL), ('crm', 'CRMID:2', 'h2b', NULL, 1100, NULL, 1100), "
        "('crm', 'CRMID:4', 'h4b', NULL, 1200, NULL, NULL)");
    Journal r(path, Access::read_only);
    auto one = r.synced.get("crm", "CRMID:1");
    ASSERT_TRUE(one);
    EXPECT_EQ(one->hash, "h1");
    EXPECT_EQ(one->profile_id, 4) << "an answer without a profile id keeps the one known";
    EXPECT_EQ(one->verification, "accepted");
    auto two = r.synced.get("crm", "CRMID:2");
    ASSERT_TRUE(two);
    EXPECT_EQ(two->hash, "h2b") << "the later answer";
    EXPECT_EQ(two->profile_id, 9) << "the earlier answer's profile id";
    EXPECT_EQ(r.synced.get("crm", "CRMID:3")->hash, "h3") << "not staged: as in synced";
    auto four = r.synced.get("crm", "CRMID:4");
    ASSERT_TRUE(four);
    EXPECT_EQ(four->gone, "") << "answered again: present";
    EXPECT_EQ(four->profile_id, 8);
    EXPECT_EQ(r.synced.last_body("crm", "CRMID:1"), R"({"n":1})");
    EXPECT_EQ(r.synced.count_present("crm"), 4);
    auto c = r.synced.counts("crm");
    EXPECT_EQ(c.done, 2);
    EXPECT_EQ(c.accepted, 2);
    std::vector<std::string> present;
    r.synced.for_each_present("crm", [&](const KnownIdentity& k) { present.push_back(k.identity); });
    EXPECT_EQ(present, (std::vector<std::string>{"CRMID:1", "CRMID:2", "CRMID:3", "CRMID:4"}));
    auto todo = r.synced.unverified("crm", 10);
    ASSERT_EQ(todo.size(), 2u);
    EXPECT_EQ(todo[0].identity, "CRMID:1");
    EXPECT_EQ(todo[1].identity, "CRMID:2");
    EXPECT_TRUE(r.synced.any_unverified("crm"));
    // The look wrote nothing: the answers are still staged, for the next run to merge.
    auto left = j.db.prepare("SELECT count(*) FROM synced_staged");
    ASSERT_TRUE(left.step());
    EXPECT_EQ(left.i64(0), 4);
    EXPECT_EQ(j.synced.get("crm", "CRMID:2"), std::nullopt) << "another connection's staged answers: not merged";
}

TEST(JournalReadOnly, ReadsWhatEveryInspectionCommandAsksNeverWritesAndLeavesTheFilesAsTheyWere) {
    testing::TempDir dir;
    auto path = dir.file("state/journal.db");
    {
        Journal w(path);
        fill_for_readers(w);
    }
    auto before = files_in(dir.file("state"));
    ASSERT_EQ(before.size(), 1u) << "a closed journal is one file";
    {
        Journal r(path, Access::read_only);
        EXPECT_TRUE(r.db.read_only());
        auto c = r.updates.counts("crm");
        EXPECT_EQ(c.failed, 1);
        EXPECT_EQ(c.queued, 1);
        EXPECT_EQ(c.done, 1);
        auto f = r.updates.failures("crm");
        ASSERT_EQ(f.size(), 1u);
        EXPECT_EQ(f[0].error, "400 bad request");
        EXPECT_EQ(r.updates.history("crm", "CRMID:3", 10).size(), 1u);
        EXPECT_EQ(r.synced.get("crm", "CRMID:2")->profile_id, 7);
        EXPECT_EQ(r.synced.last_body("crm", "CRMID:2"), R"({"n":2})");
        EXPECT_EQ(r.synced.count_present("crm"), 1);
        int present = 0;
        r.synced.for_each_present("crm", [&](const KnownIdentity&) { ++present; });
        EXPECT_EQ(present, 1);
        ASSERT_EQ(r.runs.recent("crm", 5).size(), 1u);
        EXPECT_EQ(r.runs.recent("crm", 5)[0].exit_code, 2);
        EXPECT_EQ(r.schedule.parked("crm")->reason, "the source is gone");
        ASSERT_EQ(r.pulls.outcomes("p", "failed", 10).size(), 1u);
        EXPECT_EQ(r.pulls.outcomes("p", "failed", 10)[0].error, "server error");
        EXPECT_EQ(r.watermarks.get("crm", "src")->value, "2024-01-01");
        // Every write through the handle fails, and nothing of it reaches the file.
        EXPECT_THROW(r.updates.enqueue("crm", update("4", "d"), 2000, false), JournalError);
        EXPECT_THROW(r.runs.begin("crm", "sync", 2000), JournalError);
        EXPECT_THROW(r.schedule.unpark("crm"), JournalError);
        EXPECT_THROW(r.db.exec("PRAGMA user_version = 1"), JournalError);
        EXPECT_NO_THROW(r.db.confirm_unchanged());
    }
    EXPECT_EQ(files_in(dir.file("state")), before) << "no byte changed, no -wal or -shm left";
}

TEST(JournalReadOnly, ReadsBesideARunningWriterUnderItsLocksWithoutWritingTheSharedFiles) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    Journal w(path);
    fill_for_readers(w);
    ASSERT_TRUE(std::filesystem::exists(path + "-wal"));
    ASSERT_TRUE(std::filesystem::exists(path + "-shm"));
    // In one process, SQLite shares the writer's mapping of the -shm with the reader, which
    // may then note where it reads: that the reader leaves the -shm as it is, a process of
    // its own shows (tests/e2e/inspect_test.cpp).
    auto unshared = [&] {
        auto files = files_in(dir.path());
        files.erase("journal.db-shm");
        return files;
    };
    auto before = unshared();
    {
        Journal r(path, Access::read_only);
        EXPECT_EQ(r.updates.counts("crm").queued, 1);
        EXPECT_EQ(unshared(), before) << "the reader writes neither the journal nor the -wal";
        w.updates.enqueue("crm", update("5", "e"), 3000, false);
        EXPECT_EQ(r.updates.counts("crm").queued, 2) << "each read sees what the writer committed";
        EXPECT_THROW(r.updates.enqueue("crm", update("6", "f"), 3000, false), JournalError);
        EXPECT_NO_THROW(r.db.confirm_unchanged());
    }
    EXPECT_EQ(w.updates.counts("crm").queued, 2) << "the writer writes on";
}

TEST(JournalReadOnly, AWriterThatStartsWhileAnIdleJournalIsReadIsNoticed) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    {
        Journal w(path);
        fill_for_readers(w);
    }
    Journal r(path, Access::read_only);
    EXPECT_EQ(r.updates.counts("crm").queued, 1);
    EXPECT_FALSE(std::filesystem::exists(path + "-wal")) << "read as it is: nothing created beside it";
    {
        Journal w(path);
        w.updates.enqueue("crm", update("5", "e"), 3000, false);
    }  // the writer's close writes its log back into the file
    EXPECT_THROW(r.db.confirm_unchanged(), JournalChanged);
    Journal again(path, Access::read_only);
    EXPECT_EQ(again.updates.counts("crm").queued, 2);
}

TEST(JournalReadOnly, AMissingJournalReadsAsEmptyAndIsNotCreated) {
    testing::TempDir dir;
    for (auto path : {dir.file("journal.db"), dir.file("missing/journal.db")}) {
        {
            Journal r(path, Access::read_only);
            EXPECT_EQ(r.updates.counts("crm").queued, 0);
            EXPECT_TRUE(r.runs.recent("crm", 5).empty());
            EXPECT_THROW(r.runs.begin("crm", "sync", 1), JournalError);
        }
        EXPECT_FALSE(std::filesystem::exists(path));
    }
    EXPECT_FALSE(std::filesystem::exists(dir.file("missing"))) << "nor its directory";
    // Something in the way is not taken for a missing journal.
    dir.write("file", "");
    try {
        Journal r(dir.file("file/journal.db"), Access::read_only);
        FAIL() << "read a journal under a file";
    } catch (const JournalAccessError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr(dir.file("file/journal.db") + ": cannot read it"));
    }
}

TEST(JournalReadOnly, AnOlderSchemaIsNotMigratedButNamedWithWhatToDo) {
    testing::TempDir dir;
    auto path = dir.file("v6.db");
    write_old_journal(path, std::string(kPullStateV1) + "PRAGMA user_version = 6;");
    auto before = files_in(dir.path());
    try {
        Journal r(path, Access::read_only);
        FAIL() << "read a version-6 journal";
    } catch (const JournalAccessError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr(path + ": journal schema 6 is older than this prefsync's 14; run a "
                                                          "writing command (e.g. `prefsync sync`) once"));
    }
    EXPECT_EQ(files_in(dir.path()), before);
    // Newer, or not a journal: the messages a writer gives.
    write_old_journal(path, "PRAGMA user_version = 99;");
    try {
        Journal r(path, Access::read_only);
        FAIL();
    } catch (const JournalError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("written by a newer prefsync"));
    }
    auto garbage = dir.write("garbage.db", std::string(8192, 'z'));
    EXPECT_THROW(Journal r(garbage, Access::read_only), JournalError);
}

TEST(JournalReadOnly, ALogWithoutItsSharedMemoryFileIsNotGuessedAt) {
    testing::TempDir dir;
    auto path = dir.file("journal.db");
    {
        Journal w(path);
        fill_for_readers(w);
    }
    testing::TempDir copy;
    // What a writer's crash leaves, but for the -shm: a log that must be recovered first.
    std::filesystem::copy_file(path, copy.file("journal.db"));
    copy.write("journal.db-wal", "");
    try {
        Journal r(copy.file("journal.db"), Access::read_only);
        FAIL();
    } catch (const JournalAccessError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("run a writing command"));
    }
}

// The writer's advice for a journal it cannot read is to move it aside; a reader may be
// looking at a file the service is writing that very moment, so it never says that.
TEST(JournalReadOnly, AFileThatIsNotAJournalIsNamedWithoutAdviceToMoveItAside) {
    testing::TempDir dir;
    dir.write("journal.db", std::string(8192, 'x'));
    try {
        Journal r(dir.file("journal.db"), Access::read_only);
        FAIL();
    } catch (const JournalError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("not a readable prefsync journal"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("nothing was changed"));
        EXPECT_THAT(e.what(), ::testing::Not(::testing::HasSubstr("move it aside")));
    }
    EXPECT_EQ(testing::read_file(dir.file("journal.db")), std::string(8192, 'x'));
}

}  // namespace
}  // namespace prefsync::journal
