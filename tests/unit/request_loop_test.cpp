// The request loop on fake time against scripted servers: pacing, Retry-After, the circuit
// breaker, OAuth tokens, fatal answers, stop and a producer that fails. No sockets, no
// sleeps: a 60 s outage takes milliseconds.
#include "daemon/dispatch/request_loop.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include "daemon/dispatch/circuit_breaker.hpp"
#include "tests/support/fake_runtime.hpp"

namespace prefsync::dispatch {
namespace {

using testing::answer;
using testing::FakeRuntime;
using testing::FakeTransport;
using testing::no_answer;

// N items; a retry comes back when its verdict says, a give-up is a failure.
class ListProducer final : public Producer {
public:
    explicit ListProducer(int n, api::Operation op = api::Operation::Upsert) : op_(op) {
        for (int i = 0; i < n; ++i) ready_.push_back({static_cast<std::uint64_t>(i), 0});
    }
    std::optional<Outgoing> next(base::Millis now) override {
        if (ready_.empty()) {
            auto it = retries_.begin();
            if (it == retries_.end() || it->first > now) return std::nullopt;
            ready_.push_back(it->second);
            retries_.erase(it);
        }
        auto item = ready_.front();
        ready_.pop_front();
        api::ApiRequest request{"POST", "/item/" + std::to_string(item.key), "{}", op_};
        return Outgoing{next_key++, std::move(request), item.attempts, item.key};
    }
    std::optional<base::Millis> wake_at(base::Millis) override {
        if (!ready_.empty()) return 0;
        if (retries_.empty()) return std::nullopt;
        return retries_.begin()->first;
    }
    void on_answer(Outgoing item, const http::HttpResponse&, const Verdict& v) override {
        item.key = item.row;
        if (fail_on_answer) throw std::runtime_error("journal: disk full");
        ++answers;
        switch (v.outcome) {
            case api::Outcome::Done:
            case api::Outcome::Accepted: ++done; return;
            case api::Outcome::Failed: ++failed, last_failure = v.reason; return;
            case api::Outcome::Fatal: ++released; return;
            case api::Outcome::Retry:
            case api::Outcome::Unknown: break;
        }
        if (v.give_up) {
            ++failed;
            return;
        }
        if (v.counted) ++counted_retries;
        retries_.emplace(now_ms() + v.delay.count(), Item{item.key, item.attempts + (v.counted ? 1 : 0)});
    }
    void release(Outgoing) override { ++released; }
    void flush() override { ++flushes; }
    void on_tick(base::Millis, RunProgress& p) override { p.finished = done + failed; }

    std::function<base::Millis()> now_ms;
    int answers = 0, done = 0, failed = 0, released = 0, counted_retries = 0, flushes = 0;
    std::string last_failure;
    std::uint64_t next_key = 0;  // a new handle per request, as the producers have
    bool fail_on_answer = false;

private:
    struct Item {
        std::uint64_t key;
        int attempts;
    };
    api::Operation op_;
    std::deque<Item> ready_;
    std::multimap<base::Millis, Item> retries_;
};

struct Observer final : RunObserver {
    void on_request(std::string_view, int, std::chrono::microseconds) override { ++requests; }
    void on_retry(int) override { ++retries; }
    void on_tick(const RunProgress&) override { ++ticks; }
    void on_breaker(bool open) override { (open ? opened : closed)++; }
    int requests = 0, retries = 0, ticks = 0, opened = 0, closed = 0;
};

// A loop, its parts and its world, with defaults a test overrides before run().
struct Rig {
    FakeRuntime runtime;
    FakeTransport::Server server = [](const api::ApiRequest&, const std::string&) { return answer(202); };
    FakeTransport transport{runtime, [this](const api::ApiRequest& r, const std::string& a) { return server(r, a); }};
    config::ApiConfig api;
    double rate = 1000, burst = 1000;
    LoopSettings settings = [] {
        LoopSettings s;
        s.max_in_flight = 8;
        s.retry = {5, std::chrono::milliseconds(500), std::chrono::seconds(30)};
        s.breaker.first_probe = std::chrono::seconds(1);
        s.breaker.max_probe = std::chrono::seconds(30);
        s.job = "test";
        return s;
    }();
    std::atomic<bool> stop{false};
    Observer observer;
    std::unique_ptr<RateLimiter> limiter;
    std::unique_ptr<TokenSource> tokens;
    std::unique_ptr<RequestLoop> loop;

    Rig() { api.oauth.refresh_before = std::chrono::seconds(60); }

    void run(ListProducer& producer, const std::string& secret = "token", Transport* token_host = nullptr) {
        producer.now_ms = [this] { return runtime.wall_ms(); };
        limiter = std::make_unique<RateLimiter>(rate, burst, true, [this] { return runtime.now(); });
        tokens = std::make_unique<TokenSource>(api, secret, token_host, [this] { return runtime.now(); });
        loop =
            std::make_unique<RequestLoop>(runtime, transport, *tokens, *limiter, nullptr, &observer, &stop, settings);
        loop->run(producer);
    }
    // Requests sent at or after fake second `from` and before `to`.
    int sent_between(double from, double to) const {
        int n = 0;
        for (const auto& s : transport.sent) n += s.at >= from && s.at < to;
        return n;
    }
};

TEST(RequestLoop, SendsEverythingWithinTheInFlightBoundAndTheRate) {
    Rig rig;
    rig.rate = 20;
    rig.burst = 1;
    ListProducer p(100);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_EQ(p.done, 100);
    EXPECT_LE(rig.transport.max_in_flight, 8);
    EXPECT_NEAR(rig.runtime.seconds() - start, 5.0, 0.3) << "100 requests at 20/s";
    EXPECT_GT(p.flushes, 0);
    EXPECT_GT(rig.observer.ticks, 40) << "ticks every 100 ms while it runs";
}

TEST(RequestLoop, RetryAfterPausesTheWholeRunAndA429IsNotCountedAgainstTheItem) {
    Rig rig;
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return ++calls == 1 ? answer(429, "{}", "5") : answer(200);
    };
    rig.settings.max_in_flight = 1;
    ListProducer p(10);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_EQ(p.done, 10);
    EXPECT_EQ(p.counted_retries, 0) << "a 429 is the server pacing us, not the row failing";
    EXPECT_EQ(rig.sent_between(start + 0.02, start + 5.0), 0) << "nothing during the pause";
    EXPECT_GE(rig.runtime.seconds() - start, 5.0);
}

TEST(RequestLoop, RetryAfterIsCappedAtTheLongestRetryDelay) {
    Rig rig;
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return ++calls == 1 ? answer(503, "{}", "99999999999") : answer(200);  // ~3,000 years
    };
    rig.settings.max_in_flight = 1;
    ListProducer p(3);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_EQ(p.done, 3);
    EXPECT_LT(rig.runtime.seconds() - start, 31.0) << "retry.max_delay (30 s) bounds any Retry-After";
}

TEST(RequestLoop, AnOutageOpensTheBreakerProbesWithBackoffAndNoItemSpendsItsBudgetInIt) {
    Rig rig;
    double outage_end = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return rig.runtime.seconds() < outage_end ? answer(503) : answer(202);
    };
    outage_end = rig.runtime.seconds() + 60;
    rig.rate = 100;
    rig.burst = 10;
    ListProducer p(300);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_EQ(p.done, 300) << "no row failed";
    EXPECT_EQ(p.failed, 0);
    EXPECT_EQ(rig.observer.opened, 1);
    EXPECT_EQ(rig.observer.closed, 1);
    // Inside the outage: what was in flight when it began, the requests that tripped the
    // breaker, then one probe per backoff step (1, 2, 4, 8, 16, 30, 30 s).
    int inside = rig.sent_between(start, start + 60);
    EXPECT_LE(inside, 8 + 8 + 8) << inside << " requests into a 60 s outage";
    EXPECT_LE(p.counted_retries, 16) << "only failures before the breaker opened count";
    int total = static_cast<int>(rig.transport.sent.size());
    EXPECT_LE(total - inside, 300 * 1.1) << "after the outage: about one request per row";
    EXPECT_LT(rig.runtime.seconds() - start, 60 + 30 + 5) << "resumes within a probe step of the end";
}

TEST(RequestLoop, ScatteredErrorsDoNotOpenTheBreaker) {
    Rig rig;
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return ++calls % 10 == 0 ? answer(503) : answer(202);
    };
    ListProducer p(500);
    rig.run(p);
    EXPECT_EQ(p.done, 500);
    EXPECT_EQ(rig.observer.opened, 0);
}

TEST(RequestLoop, ItemsThatKeepFailingAreGivenUpAfterMaxAttempts) {
    Rig rig;
    rig.server = [](const api::ApiRequest& r, const std::string&) {
        return r.target == "/item/3" ? no_answer() : answer(202);  // one row always loses its answer
    };
    ListProducer p(50);
    rig.run(p);
    EXPECT_EQ(p.done, 49);
    EXPECT_EQ(p.failed, 1);
    int sends_of_3 = 0;
    for (const auto& s : rig.transport.sent) sends_of_3 += s.request == "POST /item/3";
    EXPECT_EQ(sends_of_3, 5) << "retry.max_attempts";
}

TEST(RequestLoop, AFewItemsTheServerAlwaysFailsAreGivenUpNotTakenForAnOutage) {
    // The last rows of a run, failing alike (a 500 for each, every time): once the others
    // were done, only their failures were left, the breaker opened, their attempts stopped
    // counting, and the run probed for ever.
    for (int failing : {2, 4}) {
        Rig rig;
        rig.server = [failing](const api::ApiRequest& r, const std::string&) {
            for (int i = 0; i < failing; ++i)
                if (r.target == "/item/" + std::to_string(i)) return answer(500);
            return answer(202);
        };
        ListProducer p(30);
        rig.run(p);
        EXPECT_EQ(p.done, 30 - failing);
        EXPECT_EQ(p.failed, failing) << "each after retry.max_attempts";
        EXPECT_EQ(rig.observer.opened, 0) << failing << " items failing is not the API failing";
        EXPECT_EQ(static_cast<int>(rig.transport.sent.size()), 30 - failing + failing * 5);
    }
}

TEST(RequestLoop, AReadWhoseAnswerIsOverTheLimitFailsAtOnceAndAWriteWhoseAnswerIsStandsDone) {
    for (auto op : {api::Operation::Read, api::Operation::Upsert}) {
        Rig rig;
        rig.server = [](const api::ApiRequest&, const std::string&) {
            auto r = answer(200, "");
            r.too_large = true;
            r.error = "the answer is larger than http.max_response_bytes (10 bytes)";
            return r;
        };
        ListProducer p(3, op);
        rig.run(p);
        EXPECT_EQ(rig.transport.sent.size(), 3u) << "asking again would get the same answer";
        if (op == api::Operation::Read)
            EXPECT_EQ(p.failed, 3);
        else
            EXPECT_EQ(p.done, 3) << "the write landed";
    }
}

TEST(RequestLoop, AnOutageDuringASmallRunStillOpensTheBreakerAndFailsNoRow) {
    // Four rows, no answer to any: not four rows failing but the server gone. Each such
    // failure counts as a row of its own; only an answered 500 may be about its row.
    for (auto down : {no_answer(), answer(503), answer(502)}) {
        Rig rig;
        double outage_end = rig.runtime.seconds() + 30;
        rig.server = [&](const api::ApiRequest&, const std::string&) {
            return rig.runtime.seconds() < outage_end ? down : answer(202);
        };
        ListProducer p(4);
        rig.run(p);
        EXPECT_EQ(p.failed, 0) << down.status;
        EXPECT_EQ(p.done, 4);
        EXPECT_EQ(rig.observer.opened, 1);
    }
}

TEST(RequestLoop, AnOutageThatOutlastsTheProbesStopsTheRunWithNothingFailed) {
    Rig rig;
    rig.server = [](const api::ApiRequest&, const std::string&) { return answer(503); };
    rig.settings.breaker.give_up_probes = 6;
    ListProducer p(40);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("the API failed 6 probes in a row"));
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("what is left stays queued"));
    EXPECT_EQ(rig.loop->fatal(), "") << "not fatal: the job's config is not at fault (a daemon does not park it)";
    EXPECT_EQ(p.failed, 0) << "an outage fails no row";
    EXPECT_EQ(rig.observer.opened, 1);
    // Probes 1, 2, 4, 8, 16 and 30 s apart: the run ends about a minute in, not never.
    EXPECT_LT(rig.runtime.seconds() - start, 70);
    EXPECT_LE(static_cast<int>(rig.transport.sent.size()), 8 + 8 + 6);
}

// --- throttling that never ends -----------------------------------------------------------

TEST(RequestLoop, AServerThatOnlyThrottlesStopsTheRunAfterMaxThrottledWithNothingFailedOrCounted) {
    // A quota spent for the day: 429 to everything, no Retry-After. A 429 counts against no
    // row, so only the bound ends the run: as interrupted, every item left for the next run.
    Rig rig;
    rig.server = [](const api::ApiRequest&, const std::string&) { return answer(429); };
    rig.settings.max_throttled = std::chrono::minutes(10);
    ListProducer p(40);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_THAT(rig.loop->unavailable(),
                ::testing::HasSubstr("the API answered only 429 (rate limited) for 10 min (retry.max_throttled)"));
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("what is left stays queued for the next one"));
    EXPECT_EQ(rig.loop->fatal(), "") << "not fatal: a daemon does not park the job";
    EXPECT_EQ(p.failed, 0) << "throttling fails no row";
    EXPECT_EQ(p.counted_retries, 0) << "nor spends any row's attempts";
    EXPECT_EQ(p.done, 0);
    EXPECT_EQ(rig.observer.opened, 0) << "a 429 is not an outage";
    EXPECT_GE(rig.runtime.seconds() - start, 600.0);
    EXPECT_LT(rig.runtime.seconds() - start, 602.0) << "stopped at the first 429 past the span";
}

TEST(RequestLoop, TimeWaitedForARetryAfterCountsTowardTheThrottlingBound) {
    // Each 429 asks for 50 s, honoured up to retry.max_delay (30 s): the waits count, and the
    // run stops at the first 429 two minutes after the first.
    Rig rig;
    rig.server = [](const api::ApiRequest&, const std::string&) { return answer(429, "{}", "50"); };
    rig.settings.max_throttled = std::chrono::minutes(2);
    rig.settings.max_in_flight = 1;
    ListProducer p(5);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("answered only 429 (rate limited) for 2 min"));
    EXPECT_EQ(p.failed, 0);
    EXPECT_EQ(rig.transport.sent.size(), 5u) << "at 0, 30, 60, 90 and 120 s";
    EXPECT_NEAR(rig.runtime.seconds() - start, 120.0, 1.0);
}

TEST(RequestLoop, AServerThatThrottlesButStillProcessesSomeRequestsIsNeverGivenUpOn) {
    // Throttling for longer in all than max_throttled, but never only throttling for that
    // long: each 202 (or a refusal on the merits, a 4xx) shows the server at work.
    Rig rig;
    double last_processed = rig.runtime.seconds();
    int processed = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        if (rig.runtime.seconds() - last_processed < 8) return answer(429);
        last_processed = rig.runtime.seconds();
        return answer(++processed % 5 == 0 ? 400 : 202);
    };
    rig.settings.max_throttled = std::chrono::seconds(10);
    ListProducer p(20);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_EQ(rig.loop->unavailable(), "");
    EXPECT_EQ(p.done + p.failed, 20);
    EXPECT_EQ(p.failed, 4) << "the 400s, on their merits";
    EXPECT_GT(rig.runtime.seconds() - start, 150.0) << "throttled for far longer than max_throttled in all";
}

TEST(RequestLoop, OneRowThrottledAgainAndAgainWhileTheOthersAreAcceptedBacksOffAndFailsAlone) {
    // A per-profile limit or a gateway rule that always throttles one row: it is not the
    // server's limit (the others are accepted), so the row backs off on its own and, after
    // ten 429s in a row, fails with the reason; the run ends as usual, nothing unavailable.
    Rig rig;
    rig.rate = 20;
    rig.burst = 1;
    int bad_sends = 0;
    rig.server = [&](const api::ApiRequest& r, const std::string&) {
        if (r.target == "/item/3") return ++bad_sends, answer(429);
        return answer(202);
    };
    rig.settings.max_throttled = std::chrono::hours(1);
    ListProducer p(200);
    rig.run(p);
    EXPECT_EQ(p.done, 199);
    EXPECT_EQ(p.failed, 1);
    EXPECT_EQ(p.counted_retries, 0);
    EXPECT_EQ(bad_sends, 10) << "backed off between its 429s: re-sent at the limiter's pace, it would be hundreds";
    EXPECT_THAT(p.last_failure,
                ::testing::ContainsRegex("^429 \\(rate limited\\) 10 times in a row for this row, the last ones with "
                                         "nothing else sent, while the API accepted 19[0-9] other upsert requests: "
                                         "it refuses this one$"));
    EXPECT_EQ(rig.loop->unavailable(), "");
}

TEST(RequestLoop, ARowThrottledOnlyWhileOthersAreInFlightIsNotSingledOut) {
    // A limit weighted by size: one large row overruns the bucket the others keep nearly
    // empty, however often it is tried, and fits once it is sent alone. It lands.
    Rig rig;
    rig.rate = 20;
    rig.burst = 1;
    int others_done = 0;
    rig.server = [&](const api::ApiRequest& r, const std::string&) {
        if (r.target == "/item/3") return others_done < 1999 ? answer(429) : answer(202);
        ++others_done;
        return answer(202);
    };
    rig.settings.max_throttled = std::chrono::hours(1);
    ListProducer p(2000);
    rig.run(p);
    EXPECT_EQ(p.done, 2000);
    EXPECT_EQ(p.failed, 0);
}

TEST(RequestLoop, ARowIsNotSingledOutUnderALimitThatThrottlesEverybody) {
    // Every other request throttled, whatever its row: a limit for everybody, however often a
    // row is unlucky. Nothing fails.
    Rig rig;
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) { return ++calls % 2 ? answer(429) : answer(202); };
    rig.settings.max_throttled = std::chrono::hours(1);
    ListProducer p(300);
    rig.run(p);
    EXPECT_EQ(p.done, 300);
    EXPECT_EQ(p.failed, 0);
}

TEST(RequestLoop, OneItemAlwaysThrottledAmongFewGoodOnesEndsTheRunOnceItIsAlone) {
    // Too few other answers to tell the row from the server (under 100): once only that row
    // is left, the span runs from its first 429 after the last answer processed.
    Rig rig;
    rig.rate = 20;
    rig.burst = 1;
    double last_processed = 0;
    rig.server = [&](const api::ApiRequest& r, const std::string&) {
        if (r.target == "/item/3") return answer(429);
        last_processed = rig.runtime.seconds();
        return answer(202);
    };
    rig.settings.max_throttled = std::chrono::seconds(30);
    ListProducer p(50);
    rig.run(p);
    EXPECT_EQ(p.done, 49);
    EXPECT_EQ(p.failed, 0);
    EXPECT_EQ(p.counted_retries, 0);
    EXPECT_THAT(rig.loop->unavailable(),
                ::testing::ContainsRegex("answered only 429 \\(rate limited\\) for [3-6][0-9] s"));
    EXPECT_GT(last_processed, 0);
    // The row backs off up to retry.max_delay (30 s): the first 429 past the span ends it.
    EXPECT_GE(rig.runtime.seconds() - last_processed, 30.0);
    EXPECT_LT(rig.runtime.seconds() - last_processed, 61.0);
}

TEST(RequestLoop, FailuresAmongThe429sNeitherEndNorRestartTheThrottlingSpell) {
    // 429s with a bare 503 now and then: too few to open the breaker, and no sign that the
    // server processes anything. The 503s spend their rows' attempts; the bound still ends it.
    Rig rig;
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return ++calls % 10 == 0 ? answer(503) : answer(429);
    };
    rig.settings.max_throttled = std::chrono::minutes(1);
    rig.settings.retry.max_attempts = 1000;
    ListProducer p(10);
    auto start = rig.runtime.seconds();
    rig.run(p);
    EXPECT_THAT(rig.loop->unavailable(),
                ::testing::ContainsRegex("answered only 429 \\(rate limited\\) and failures for 6[0-9] s"));
    EXPECT_EQ(p.failed, 0);
    // A row throttled again waits its backoff (up to retry.max_delay, 30 s, with jitter):
    // the run stops at the first answer past the span.
    EXPECT_GE(rig.runtime.seconds() - start, 60.0);
    EXPECT_LT(rig.runtime.seconds() - start, 70.0);
}

TEST(RequestLoop, AFatalAnswerStopsSendingAtOnce) {
    Rig rig;
    rig.server = [](const api::ApiRequest&, const std::string&) { return answer(401); };
    rig.settings.max_in_flight = 2;
    ListProducer p(100);
    rig.run(p);
    EXPECT_EQ(rig.loop->fatal(), "401 unauthorized: check the API token");
    EXPECT_LE(rig.transport.sent.size(), 2u) << "what was in flight, nothing after";
    EXPECT_EQ(p.failed, 0) << "nothing is marked failed for a fatal answer";
}

TEST(RequestLoop, AStopRequestSendsNothingMoreAndReleasesWhatIsHeld) {
    Rig rig;
    rig.rate = 10;
    rig.burst = 1;
    ListProducer p(100);
    rig.runtime.at(rig.runtime.now() + std::chrono::seconds(2), [&] { rig.stop = true; });
    rig.run(p);
    auto sent = rig.transport.sent.size();
    EXPECT_GE(sent, 19u);
    EXPECT_LE(sent, 23u) << "2 s at 10/s, then nothing";
    EXPECT_EQ(p.answers, static_cast<int>(sent)) << "everything in flight answered before run() returns";
    EXPECT_LE(p.released, 1) << "the one item waiting for the limiter";
}

TEST(RequestLoop, AProducerThatThrowsEndsTheLoopAndIsNeverCalledAgain) {
    Rig rig;
    ListProducer p(50);
    p.fail_on_answer = true;
    EXPECT_THROW(rig.run(p), std::runtime_error);
    int answers_after = p.answers;
    rig.runtime.run();  // anything left in the world runs now: nothing reaches the producer
    EXPECT_EQ(p.answers, answers_after);
}

TEST(RequestLoop, AdaptiveRateFallsOn429sAndRecovers) {
    Rig rig;
    rig.rate = 100;
    rig.burst = 1;
    double storm_end = rig.runtime.seconds() + 3;
    rig.server = [&](const api::ApiRequest&, const std::string&) {
        return rig.runtime.seconds() < storm_end ? answer(429) : answer(202);
    };
    ListProducer p(600);
    rig.run(p);
    EXPECT_EQ(p.done, 600);
    EXPECT_EQ(p.failed, 0) << "throttling never fails a row";
    EXPECT_GE(rig.loop->rate(), 95) << "recovered to just below the rate the storm began at";
}

// --- OAuth ---------------------------------------------------------------------------------

struct TokenHost {
    explicit TokenHost(FakeRuntime& runtime)
        : transport(runtime, [this, &runtime](const api::ApiRequest& r, const std::string&) {
              ++fetches;
              bodies.push_back(r.body);
              at.push_back(runtime.now());
              return answer(fetches <= ok_first ? 200 : status,
                            "{\"access_token\":\"t" + std::to_string(fetches) + token_suffix +
                                "\",\"expires_in\":" + std::to_string(expires_in) + "}",
                            retry_after);
          }) {}
    int fetches = 0, status = 200;
    int ok_first = 0;  // the first N fetches answer 200 whatever `status` says
    std::string retry_after;
    std::vector<SteadyClock::time_point> at;  // when each fetch was made
    long long expires_in = 3600;
    std::string token_suffix;  // JSON-escaped
    std::vector<std::string> bodies;
    FakeTransport transport;
};

TEST(RequestLoop, OAuthFetchesATokenFirstAndRefreshesAfterA401ToATokenThatHadWorked) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    int calls = 0;
    rig.server = [&](const api::ApiRequest&, const std::string& auth) {
        ++calls;
        if (auth == "Bearer t1" && calls > 20) return answer(401);  // revoked after 20 requests
        return answer(202);
    };
    rig.settings.max_in_flight = 1;
    ListProducer p(40);
    rig.run(p, "client-secret", &host.transport);
    EXPECT_EQ(p.done, 40);
    EXPECT_EQ(host.fetches, 2);
    EXPECT_EQ(rig.transport.sent.front().authorization, "Bearer t1");
    EXPECT_EQ(rig.transport.sent.back().authorization, "Bearer t2");
    EXPECT_THAT(host.bodies.front(), ::testing::HasSubstr("client_secret=client-secret"));
}

TEST(RequestLoop, ATokenRefusedBeforeItsFirstAnswerIsFetchedOnceMoreAndASecondSuchIsFatal) {
    // A run held up for longer than its first token lives (a loaded machine, a long source
    // read) meets a 401 before any request worked: once, that is expiry, not a wrong secret.
    for (bool second_works : {true, false}) {
        Rig rig;
        rig.api.oauth.token_url = "https://auth.example/oauth/token";
        TokenHost host(rig.runtime);
        rig.server = [&](const api::ApiRequest&, const std::string& auth) {
            return auth == "Bearer t1" || !second_works ? answer(401) : answer(202);
        };
        rig.settings.max_in_flight = 1;
        ListProducer p(5);
        rig.run(p, "client-secret", &host.transport);
        if (second_works) {
            EXPECT_EQ(p.done, 5);
            EXPECT_EQ(host.fetches, 2);
            EXPECT_EQ(rig.loop->fatal(), "");
        } else {
            EXPECT_THAT(rig.loop->fatal(), ::testing::HasSubstr("401"));
            EXPECT_EQ(host.fetches, 2) << "no loop of fetches: two fresh tokens refused is the credentials";
            EXPECT_EQ(p.done, 0);
        }
    }
}

TEST(RequestLoop, ARefusedClientSecretIsFatalAndFetchedOnce) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    host.status = 401;
    ListProducer p(10);
    rig.run(p, "wrong", &host.transport);
    EXPECT_THAT(rig.loop->fatal(), ::testing::HasSubstr("refused the client secret"));
    EXPECT_EQ(host.fetches, 1);
    EXPECT_TRUE(rig.transport.sent.empty());
}

// A token endpoint that throttles (or fails) for good: asked again with backoff, then the
// run stops as one the API was unavailable to, instead of waiting for a token for ever.
TEST(RequestLoop, ATokenEndpointThatNeverAnswers200StopsTheRunAsUnavailableWithNothingSent) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    host.status = 429;
    ListProducer p(10);
    rig.run(p, "secret", &host.transport);
    EXPECT_TRUE(rig.loop->fatal().empty());
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("the token endpoint failed"));
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("answered 429"));
    EXPECT_EQ(host.fetches, rig.settings.breaker.give_up_probes + 1);
    EXPECT_TRUE(rig.transport.sent.empty());
    EXPECT_EQ(p.done, 0);
}

// A token endpoint that throttles with Retry-After is asked again no sooner than it said.
TEST(RequestLoop, ATokenEndpointsRetryAfterIsWaitedForBeforeTheNextFetch) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    rig.settings.retry.max_delay = std::chrono::seconds(30);
    TokenHost host(rig.runtime);
    host.status = 429;
    host.retry_after = "7";
    ListProducer p(3);
    rig.run(p, "secret", &host.transport);
    ASSERT_GE(host.at.size(), 3u);
    for (std::size_t i = 1; i < host.at.size(); ++i)
        EXPECT_GE(host.at[i] - host.at[i - 1], std::chrono::seconds(7)) << "fetch " << i;
    EXPECT_THAT(rig.loop->unavailable(), ::testing::HasSubstr("answered 429"));
}

// ... also when the refresh falls due with requests in flight, whose answers ask for the
// token again as they come in.
TEST(RequestLoop, ATokenEndpointsRetryAfterHoldsWhileAnswersComeIn) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    host.ok_first = 1;
    host.expires_in = 2;  // used for half its life: due again after a second
    host.status = 429;
    host.retry_after = "7";
    rig.transport.latency = std::chrono::milliseconds(300);
    rig.settings.max_in_flight = 8;
    ListProducer p(200);
    rig.run(p, "secret", &host.transport);
    ASSERT_GE(host.at.size(), 3u);
    for (std::size_t i = 2; i < host.at.size(); ++i)
        EXPECT_GE(host.at[i] - host.at[i - 1], std::chrono::seconds(7)) << "fetch " << i;
}

TEST(RequestLoop, ATokenThatLivesLessThanTheRefreshMarginIsUsedForHalfItsLifeNotFetchedPerRequest) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    rig.rate = 10;
    rig.burst = 1;
    TokenHost host(rig.runtime);
    host.expires_in = 30;  // refresh_before is 60 s
    ListProducer p(100);   // 10 s of requests
    rig.run(p, "secret", &host.transport);
    EXPECT_EQ(p.done, 100);
    EXPECT_EQ(host.fetches, 1) << "15 s of use per token";
}

TEST(RequestLoop, AnExpiredOnArrivalTokenIsFatalNotALoop) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    host.expires_in = 0;
    ListProducer p(10);
    rig.run(p, "secret", &host.transport);
    EXPECT_THAT(rig.loop->fatal(), ::testing::HasSubstr("expires_in 0"));
    EXPECT_EQ(host.fetches, 1);
}

TEST(RequestLoop, ATokenWithALineBreakIsFatalNeverSentAsAHeader) {
    Rig rig;
    rig.api.oauth.token_url = "https://auth.example/oauth/token";
    TokenHost host(rig.runtime);
    host.token_suffix = "\\r\\nX-Injected: 1";
    ListProducer p(10);
    rig.run(p, "secret", &host.transport);
    EXPECT_THAT(rig.loop->fatal(), ::testing::HasSubstr("control character"));
    EXPECT_EQ(host.fetches, 1);
    EXPECT_TRUE(rig.transport.sent.empty());
}

// A probe whose answer says nothing of what failed (a lookup while writes fail, a 401 to be
// sent again with a new token): the breaker stays open and the next request probes at once.
// Left waiting for that answer, it let nothing through for ever.
TEST(CircuitBreaker, AnInconclusiveProbeHandsTheProbeToTheNextRequest) {
    CircuitBreaker breaker(BreakerSettings{});
    auto now = CircuitBreaker::Clock::time_point{} + std::chrono::hours(1);
    for (std::uint64_t item = 0; item < 10; ++item) breaker.record(true, false, now, item);
    ASSERT_TRUE(breaker.open());
    bool probe = false;
    now += std::chrono::seconds(2);
    ASSERT_TRUE(breaker.allow(now, probe));
    ASSERT_TRUE(probe);
    EXPECT_FALSE(breaker.allow(now, probe)) << "one probe at a time";
    breaker.inconclusive(true, now);
    EXPECT_TRUE(breaker.open());
    EXPECT_EQ(breaker.failed_probes(), 0) << "not a failed probe";
    EXPECT_TRUE(breaker.allow(now, probe));
    EXPECT_TRUE(probe);
    breaker.inconclusive(false, now);  // an answer to something else: changes nothing
    EXPECT_FALSE(breaker.allow(now, probe));
}

}  // namespace
}  // namespace prefsync::dispatch
