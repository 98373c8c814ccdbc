// The push producer against a scripted API that accepts duplicate creates (the worst server
// the reference allows): the ways a create could be sent twice, and the answers that must
// not be mistaken for success. Fake time, a real journal in a temp directory.
#include "daemon/push/push_producer.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/url.hpp>
#include <map>

#include "tests/support/fake_runtime.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync::push {
namespace {

using testing::answer;
using testing::FakeRuntime;
using testing::FakeTransport;
using testing::no_answer;

// Profiles by id, alternate ids as the API indexes them; every create makes a new profile.
struct FakeApi {
    std::map<std::int64_t, std::string> profiles;  // id → alternate id
    std::int64_t next_id = 100;
    // Per request (in order): a fault to apply, if any.
    enum class Fault { None, LoseAnswer, Unavailable, Conflict, NotFound };
    std::function<Fault(const api::ApiRequest&)> fault = [](const api::ApiRequest&) { return Fault::None; };
    std::vector<std::string> log;

    int with_alt(const std::string& alt) const {
        int n = 0;
        for (const auto& [id, a] : profiles) n += a == alt;
        return n;
    }
    std::optional<std::int64_t> find(const std::string& alt) const {
        for (const auto& [id, a] : profiles)
            if (a == alt) return id;
        return std::nullopt;
    }

    http::HttpResponse handle(const api::ApiRequest& r) {
        auto url = boost::urls::parse_origin_form(r.target).value();
        std::string path(url.path());
        log.push_back(r.method + " " + path.substr(path.find("/1/") + 2));
        auto f = fault(r);
        if (f == Fault::Unavailable) return answer(503);
        if (f == Fault::Conflict) return answer(409, R"({"Message":"exists"})");
        if (f == Fault::NotFound) return answer(404, R"({"Message":"no profile"})");
        http::HttpResponse out;
        if (r.method == "POST" && path.ends_with("/Profile")) {
            auto pos = r.body.find("\"AlternateId\":\"");
            auto alt = r.body.substr(pos + 15, r.body.find('"', pos + 15) - pos - 15);
            profiles[++next_id] = alt;
            out = answer(200, "{\"ProfileId\":" + std::to_string(next_id) + "}");
        } else if (r.method == "GET") {
            std::string alt;
            for (auto p : url.params())
                if (p.key == "alternateId") alt = std::string(p.value);
            auto id = find(alt);
            out = id ? answer(200, "{\"ProfileId\":" + std::to_string(*id) + "}")
                     : answer(404, R"({"Message":"no profile"})");
        } else if (r.method == "POST") {
            out = answer(202, "{}");
        } else if (r.method == "DELETE") {
            auto id = std::stoll(path.substr(path.rfind('/') + 1));
            out = profiles.erase(id) ? answer(204, "") : answer(404, R"({"Message":"no profile"})");
        }
        return f == Fault::LoseAnswer ? no_answer() : out;  // applied, answer lost
    }
};

struct PushRig {
    testing::TempDir dir;
    journal::Journal journal{dir.file("journal.db")};
    FakeRuntime runtime;
    FakeApi api;
    std::function<void(http::HttpResponse&)> tweak = [](http::HttpResponse&) {};  // e.g. add a Retry-After
    FakeTransport transport{runtime, [this](const api::ApiRequest& r, const std::string&) {
                                auto out = api.handle(r);
                                tweak(out);
                                return out;
                            }};
    config::ApiConfig api_config;
    config::JobConfig job;
    api::RequestBuilder requests{api::parse_base_url("https://api.example/Profiles/v2"), "1"};
    PushCounts counts;
    journal::Millis lease = 60'000;
    int max_delay_s = 2;
    std::chrono::milliseconds tick{100};
    std::optional<config::RateLimitConfig> shared;  // the host-wide bucket and daily quota

    explicit PushRig(config::Mode mode) {
        job.name = "crm";
        job.mode = mode;
    }
    void enqueue(const std::string& id, const std::string& hash = "h",
                 std::optional<std::int64_t> profile_id = std::nullopt) {
        journal::NewUpdate u{
            "CRMID:" + id, "CRMID", id, profile_id, "in.csv:" + id, R"({"CustomerName":{"FirstName":"A"}})", hash};
        journal.updates.enqueue("crm", u, runtime.wall_ms(), false);
    }
    // One run of the job: everything due is sent (and what `feed` journals), every answer
    // recorded.
    void run(Feed* feed = nullptr) {
        dispatch::RateLimiter limiter(1000, 1000, true, [this] { return runtime.now(); });
        dispatch::TokenSource tokens(api_config, "token", nullptr, [this] { return runtime.now(); });
        dispatch::LoopSettings settings;
        settings.max_in_flight = 4;
        settings.retry = {8, std::chrono::milliseconds(100), std::chrono::seconds(max_delay_s)};
        settings.job = "crm";
        settings.tick = tick;
        std::optional<dispatch::SharedBucket> bucket;
        if (shared) bucket.emplace(journal.rate, *shared);
        dispatch::RequestLoop loop(runtime, transport, tokens, limiter, bucket ? &*bucket : nullptr, nullptr, nullptr,
                                   settings);
        PushProducer producer(job, journal, requests, 4, lease, counts, Progress::None);
        producer.feed_from(feed);
        loop.run(producer);
        producer.release_unsent();
    }
    int count(const std::string& request) const {
        return static_cast<int>(std::count(api.log.begin(), api.log.end(), request));
    }
};

// Which failing answers the producer records as refusals of the body (held back by later
// syncs): 400, 413 and 422 to a whole-row write of a job the API accepted writes of; not a
// 403, 404, 409 or 415, not a delete job's request, not before any write was accepted.
struct RefusalCase {
    config::Mode mode;
    int status;
    bool accepted_before;
    bool refused;
};

class Refusals : public ::testing::TestWithParam<RefusalCase> {};
INSTANTIATE_TEST_SUITE_P(PushProducer, Refusals,
                         ::testing::Values(RefusalCase{config::Mode::Upsert, 400, true, true},
                                           RefusalCase{config::Mode::Upsert, 413, true, true},
                                           RefusalCase{config::Mode::Replace, 422, true, true},
                                           RefusalCase{config::Mode::Update, 400, true, true},
                                           RefusalCase{config::Mode::Create, 400, true, true},
                                           RefusalCase{config::Mode::Upsert, 403, true, false},
                                           RefusalCase{config::Mode::Upsert, 404, true, false},
                                           RefusalCase{config::Mode::Upsert, 409, true, false},
                                           RefusalCase{config::Mode::Upsert, 415, true, false},
                                           RefusalCase{config::Mode::Delete, 400, true, false},
                                           RefusalCase{config::Mode::Upsert, 400, false, false}));

TEST_P(Refusals, OnlyAVerdictOnTheBodyIsRecordedAsARefusal) {
    const auto& c = GetParam();
    PushRig rig(c.mode);
    rig.journal.updates.scope_refusals("crm", 5);
    if (c.accepted_before) rig.journal.synced.record("crm", "CRMID:OTHER", "h0", 9, 0);
    rig.enqueue("C1", "h",
                c.mode == config::Mode::Upsert || c.mode == config::Mode::Create ? std::nullopt
                                                                                 : std::optional<std::int64_t>(100));
    // Lookups are answered as they are; the write gets the case's status.
    rig.tweak = [&](http::HttpResponse& out) {
        if (rig.api.log.back().starts_with("GET")) return;
        out = testing::answer(c.status, R"({"Message":"no"})");
    };
    rig.run();
    auto history = rig.journal.updates.history("crm", "CRMID:C1", 1);
    ASSERT_EQ(history.size(), 1u);
    EXPECT_EQ(history[0].state, "failed");
    EXPECT_EQ(history[0].status, c.status);
    EXPECT_EQ(history[0].refused_scope, c.refused ? 5 : 0) << to_string(c.mode) << " " << c.status;
}

TEST(PushProducer, ACreateWhoseAnswerWasLostIsLookedUpAppliedAndNeverCreatedTwice) {
    PushRig rig(config::Mode::Create);
    rig.enqueue("C1");
    int creates = 0;
    rig.api.fault = [&](const api::ApiRequest& r) {
        return r.operation == api::Operation::Create && ++creates == 1 ? FakeApi::Fault::LoseAnswer
                                                                       : FakeApi::Fault::None;
    };
    rig.run();
    EXPECT_EQ(rig.api.with_alt("C1"), 1);
    EXPECT_EQ(rig.count("POST /Profile"), 1);
    EXPECT_EQ(rig.count("GET /Profile/AlternateId"), 1);
    EXPECT_EQ(rig.count("POST /Profile/101"), 1) << "the row's body applied to the profile that exists";
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 1);
    EXPECT_EQ(rig.journal.synced.get("crm", "CRMID:C1")->profile_id, 101);
}

TEST(PushProducer, ALookupThatItselfFailsKeepsTheResolveMark) {
    PushRig rig(config::Mode::Create);
    rig.enqueue("C1");
    int creates = 0, lookups = 0;
    rig.api.fault = [&](const api::ApiRequest& r) {
        if (r.operation == api::Operation::Create && ++creates == 1) return FakeApi::Fault::LoseAnswer;
        if (r.method == "GET" && ++lookups <= 2) return FakeApi::Fault::Unavailable;
        return FakeApi::Fault::None;
    };
    rig.run();
    EXPECT_EQ(rig.api.with_alt("C1"), 1) << "a plain POST after a failed lookup would have made two";
    EXPECT_EQ(rig.count("POST /Profile"), 1);
    EXPECT_EQ(rig.count("GET /Profile/AlternateId"), 3);
}

TEST(PushProducer, AKilledProcessesCreateIsResolvedByTheNextRun) {
    PushRig rig(config::Mode::Create);
    rig.enqueue("C1");
    // The first process claimed it, sent it (it landed) and died before the answer.
    {
        journal::Journal dead(rig.dir.file("journal.db"));
        auto claimed = dead.updates.claim("crm", 10, rig.runtime.wall_ms() - 200'000, 1000);
        ASSERT_EQ(claimed.size(), 1u);
        rig.api.profiles[50] = "C1";
    }
    rig.run();
    EXPECT_EQ(rig.api.with_alt("C1"), 1);
    EXPECT_EQ(rig.count("POST /Profile"), 0);
    EXPECT_EQ(rig.count("POST /Profile/50"), 1);
}

// A create job's removal of a row known only by a create that may have landed (its mark
// inherited): looked up and not found, it is done. The lookup's 404 was taken for a create
// still to make, and the DELETE went out without a profile id (an outside-in test saw a
// stack-address-like id in its URL, 75 times).
TEST(PushProducer, ACreateJobsRemovalLookedUpAndNotFoundIsDoneWithoutARequestByProfileId) {
    for (std::string op : {"delete", "archive"}) {
        PushRig rig(config::Mode::Create);
        journal::NewUpdate u{"CRMID:C1", "CRMID",         "C1", std::nullopt, "no longer in the source",
                             "{}",       "missing:" + op, op};
        rig.journal.updates.enqueue("crm", u, rig.runtime.wall_ms(), true);
        {
            // Claimed by a process that died: taken again, it carries the "resolve first" mark.
            journal::Journal dead(rig.dir.file("journal.db"));
            ASSERT_EQ(dead.updates.claim("crm", 10, rig.runtime.wall_ms() - 200'000, 1000).size(), 1u);
        }
        rig.run();
        EXPECT_EQ(rig.count("GET /Profile/AlternateId"), 1) << op;
        EXPECT_EQ(rig.api.log.size(), 1u) << op << ": the lookup only";
        EXPECT_EQ(rig.journal.updates.counts("crm").failed, 0) << op;
        EXPECT_EQ(rig.journal.updates.counts("crm").pending(), 0) << op;
    }
}

TEST(PushProducer, A409ToACreateNeverSentBeforeIsAFailureAndNothingIsRecordedAsSynced) {
    PushRig rig(config::Mode::Create);
    rig.api.profiles[7] = "C1";  // someone else made it
    rig.enqueue("C1");
    rig.api.fault = [](const api::ApiRequest& r) {
        return r.operation == api::Operation::Create ? FakeApi::Fault::Conflict : FakeApi::Fault::None;
    };
    rig.run();
    EXPECT_EQ(rig.journal.updates.counts("crm").failed, 1);
    EXPECT_FALSE(rig.journal.synced.get("crm", "CRMID:C1")) << "the body was never applied";
    auto f = rig.journal.updates.failures("crm");
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].status, 409);
    EXPECT_THAT(f[0].error, ::testing::HasSubstr("already exists"));
}

TEST(PushProducer, A409AfterAnAmbiguousCreateMeansItLandedAndItsBodyIsApplied) {
    PushRig rig(config::Mode::Create);
    rig.enqueue("C1");
    int creates = 0, lookups = 0;
    rig.api.fault = [&](const api::ApiRequest& r) {
        if (r.operation == api::Operation::Create && ++creates == 1) return FakeApi::Fault::LoseAnswer;
        // A lagging index: the first lookup does not see the profile yet; the API then
        // refuses the create it would duplicate.
        if (r.method == "GET" && ++lookups == 1) return FakeApi::Fault::NotFound;
        if (r.operation == api::Operation::Create) return FakeApi::Fault::Conflict;
        return FakeApi::Fault::None;
    };
    rig.run();
    EXPECT_EQ(rig.api.with_alt("C1"), 1);
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 1);
    EXPECT_EQ(rig.count("POST /Profile/101"), 1) << "applied after the second lookup found it";
}

TEST(PushProducer, ADeleteWhoseAnswerWasLostAndThenAnswers404IsDone) {
    PushRig rig(config::Mode::Delete);
    rig.api.profiles[42] = "C1";
    rig.enqueue("C1", "h", 42);
    int deletes = 0;
    rig.api.fault = [&](const api::ApiRequest& r) {
        return r.method == "DELETE" && ++deletes == 1 ? FakeApi::Fault::LoseAnswer : FakeApi::Fault::None;
    };
    rig.run();
    EXPECT_EQ(rig.count("DELETE /Profile/42"), 2);
    EXPECT_EQ(rig.journal.updates.counts("crm").done, 1);
    EXPECT_EQ(rig.journal.updates.counts("crm").failed, 0);
}

// A write the server applied and then answered 500 or above (an error while answering, a
// gateway's timeout): the reference's 5xx are "an unexpected condition", not "not applied".
// Before, only a write left unanswered was looked up again: a create answered 502 after it
// landed was sent again, and made a second profile.
class AnsweredAfterApplying : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(PushProducer, AnsweredAfterApplying, ::testing::Values(500, 502, 503, 504));

TEST_P(AnsweredAfterApplying, ACreateIsLookedUpBeforeItIsSentAgain) {
    PushRig rig(config::Mode::Create);
    rig.enqueue("C1");
    int creates = 0;
    rig.tweak = [&](http::HttpResponse& out) {
        if (out.status == 200 && out.body.starts_with("{\"ProfileId\"") && ++creates == 1) out.status = GetParam();
    };
    rig.run();
    EXPECT_EQ(rig.api.with_alt("C1"), 1) << "created once";
    EXPECT_EQ(rig.count("POST /Profile"), 1);
    EXPECT_EQ(rig.count("POST /Profile/101"), 1) << "its body applied to the profile the lookup found";
    EXPECT_EQ(rig.journal.updates.counts("crm").failed, 0);
}

TEST_P(AnsweredAfterApplying, ADeleteWhoseRetryMeets404IsDone) {
    PushRig rig(config::Mode::Delete);
    rig.api.profiles[42] = "C1";
    rig.enqueue("C1", "h", 42);
    int deletes = 0;
    rig.tweak = [&](http::HttpResponse& out) {
        if (out.status == 204 && ++deletes == 1) out.status = GetParam();
    };
    rig.run();
    EXPECT_EQ(rig.count("DELETE /Profile/42"), 2);
    EXPECT_EQ(rig.journal.updates.counts("crm").done, 1);
    EXPECT_EQ(rig.journal.updates.counts("crm").failed, 0) << "its 404 is the first attempt's success";
}

// A gateway that fails every write (503) and passes reads: a create answered 503 is looked
// up before it is sent again, and the lookups' 404s must not close the breaker. They did: each
// create's 503 then spent its retries, and every row was dead-lettered at 70 requests/s.
TEST(PushProducer, WritesFailingAloneOpenTheBreakerWhileLookupsWorkAndSpendNoRetries) {
    PushRig rig(config::Mode::Create);
    for (int i = 0; i < 20; ++i) rig.enqueue("C" + std::to_string(i));
    rig.api.fault = [](const api::ApiRequest& r) {
        return r.method == "POST" ? FakeApi::Fault::Unavailable : FakeApi::Fault::None;
    };
    rig.run();
    auto counts = rig.journal.updates.counts("crm");
    EXPECT_EQ(counts.failed, 0) << "an outage of writes spends no row's retries";
    EXPECT_EQ(counts.pending(), 20) << "left for the next run";
    EXPECT_LT(rig.api.log.size(), 120u) << "probes, not a storm";
}

TEST(PushProducer, ADeleteOfAProfileThatWasNeverThereIsStillAFailure) {
    PushRig rig(config::Mode::Delete);
    rig.enqueue("C1", "h", 42);
    rig.run();
    EXPECT_EQ(rig.journal.updates.counts("crm").failed, 1);
}

// Rows wait in memory longer than their lease: a Retry-After pause, then a daily quota.
// Measured before: 11 rows sent twice in a 1,500-row sync under a 100 s Retry-After.
TEST(PushProducer, RowsHeldThroughAPauseLongerThanTheirLeaseAreSentOnce) {
    PushRig rig(config::Mode::Upsert);
    rig.lease = 5'000;
    rig.max_delay_s = 300;
    for (int i = 0; i < 200; ++i) rig.enqueue("C" + std::to_string(i));
    int calls = 0;
    rig.api.fault = [&](const api::ApiRequest&) {
        return ++calls == 3 ? FakeApi::Fault::Unavailable : FakeApi::Fault::None;
    };
    rig.tweak = [](http::HttpResponse& out) {
        if (out.status == 503) out.retry_after = "100";  // longer than the 5 s lease
    };
    rig.run();
    EXPECT_EQ(static_cast<int>(rig.api.log.size()), 201) << "200 rows, one of them twice (its 503)";
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 200);
}

TEST(PushProducer, RowsHeldThroughADailyQuotaPauseAreSentOnce) {
    PushRig rig(config::Mode::Upsert);
    rig.lease = 600'000;                 // 10 min against a pause of two days
    rig.tick = std::chrono::minutes(2);  // fewer ticks of fake time; still four per lease
    config::RateLimitConfig limits;
    limits.requests_per_second = 1000;
    limits.burst = 1000;
    limits.daily_quota = 50;
    rig.shared = limits;
    for (int i = 0; i < 120; ++i) rig.enqueue("C" + std::to_string(i));
    rig.run();  // 50 today, 50 tomorrow, 20 the day after: the run waits, holding its rows
    EXPECT_EQ(static_cast<int>(rig.api.log.size()), 120) << "every row once, none re-claimed after its lease";
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 120);
}

// A feed as the source's: each batch journaled already claimed in a commit without an
// fsync; records which of the journal's syncs (the next one begun) covers each row.
struct DeferredFeed final : Feed {
    journal::Journal& journal;
    int batches, rows;
    std::map<std::string, std::uint64_t> covered_by;  // alternate id → sync number
    std::vector<journal::ClaimedUpdate> claimed;
    int read = 0;
    DeferredFeed(journal::Journal& j, int batches, int rows) : journal(j), batches(batches), rows(rows) {}
    bool more() override {
        if (read == batches) return false;
        journal::Database::Transaction tx(journal.db, journal::Database::Sync::deferred);
        for (int i = 0; i < rows; ++i) {
            auto id = "B" + std::to_string(read) + "R" + std::to_string(i);
            journal::NewUpdate u{"CRMID:" + id, "CRMID", id, std::nullopt, "in.csv:" + id, R"({"X":1})", "h"};
            std::optional<journal::ClaimedUpdate> one;
            journal.updates.enqueue_claimed("crm", std::move(u), 1'000'000, true, std::nullopt, 60'000, one,
                                            journal::Database::Sync::deferred);
            claimed.push_back(*one);
            covered_by[id] = journal.db.syncs_begun() + 1;
        }
        tx.commit();
        ++read;
        return true;
    }
    std::vector<journal::ClaimedUpdate> take_claimed() override { return std::exchange(claimed, {}); }
};

// Record before send, for rows the feed journals without an fsync: no request leaves before
// the log's sync that covers its claim is over, and the next batch is read (and synced)
// while the one before is still being sent.
TEST(PushProducer, AFeedsRowsLeaveOnlyOnceTheSyncCoveringTheirClaimIsOver) {
    PushRig rig(config::Mode::Upsert);
    rig.journal.updates.enqueue("crm", {"CRMID:first", "CRMID", "first", std::nullopt, "x", "{}", "h"}, 1, false);
    DeferredFeed feed(rig.journal, 4, 300);
    int early = 0, checked = 0;
    rig.api.fault = [&](const api::ApiRequest& r) {
        auto url = boost::urls::parse_origin_form(r.target).value();
        for (auto p : url.params())
            if (p.key == "alternateId" && feed.covered_by.contains(std::string(p.value))) {
                ++checked;
                if (!rig.journal.db.synced(feed.covered_by[std::string(p.value)])) ++early;
            }
        return FakeApi::Fault::None;
    };
    rig.run(&feed);
    EXPECT_EQ(checked, 1200);
    EXPECT_EQ(early, 0) << "rows sent before their claim was durable";
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 1201);
    EXPECT_EQ(rig.journal.db.syncs_begun(), 4u) << "one sync per batch";
}

// Reading the feed ahead must not hold back what the journal has due: a row answered 503
// is sent again once due, not only after the whole source is read.
TEST(PushProducer, ARetryIsSentOnceDueWhileTheFeedIsReadAhead) {
    PushRig rig(config::Mode::Upsert);
    DeferredFeed feed(rig.journal, 6, 300);
    std::vector<std::string> order;  // alternate ids, in the order requests left
    rig.api.fault = [&](const api::ApiRequest& r) {
        auto url = boost::urls::parse_origin_form(r.target).value();
        for (auto p : url.params())
            if (p.key == "alternateId") order.emplace_back(p.value);
        return order.size() == 1 ? FakeApi::Fault::Unavailable : FakeApi::Fault::None;
    };
    rig.run(&feed);
    ASSERT_EQ(order.size(), 1801u) << "every row once, the first twice";
    auto again = std::find(order.begin() + 1, order.end(), order.front());
    ASSERT_NE(again, order.end());
    auto last_batch = std::find(order.begin(), order.end(), "B5R0");
    EXPECT_LT(again, last_batch) << "the retry waited for the whole source";
    EXPECT_EQ(rig.journal.updates.counts("crm").accepted, 1800);
}

}  // namespace
}  // namespace prefsync::push
