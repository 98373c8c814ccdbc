#include "daemon/dispatch/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

namespace prefsync::dispatch {
namespace {

using namespace std::chrono_literals;

struct FakeTime {
    SteadyClock::time_point now{std::chrono::seconds(1000)};
    ClockFn fn() {
        return [this] { return now; };
    }
};

int drain(RateLimiter& r) {
    int n = 0;
    while (!r.try_acquire()) ++n;
    return n;
}

TEST(RateLimiter, BurstThenSteadyRate) {
    FakeTime t;
    RateLimiter r(10, 5, false, t.fn());
    EXPECT_EQ(drain(r), 5) << "the burst";
    auto wait = r.try_acquire();
    ASSERT_TRUE(wait);
    EXPECT_NEAR(std::chrono::duration<double>(*wait).count(), 0.1, 1e-6);
    t.now += 1s;
    EXPECT_EQ(drain(r), 5) << "refills to the burst, not beyond";
    t.now += 300ms;
    EXPECT_EQ(drain(r), 3);
}

TEST(RateLimiter, OverALongRunTheRateHolds) {
    FakeTime t;
    RateLimiter r(50, 50, false, t.fn());
    int taken = drain(r);
    for (int i = 0; i < 1000; ++i) {  // 10 s in 10 ms steps
        t.now += 10ms;
        taken += drain(r);
    }
    EXPECT_NEAR(taken, 50 + 500, 2);
}

TEST(RateLimiter, AWakeUpThatIsAlwaysALittleLateDoesNotLowerTheRate) {
    FakeTime t;
    RateLimiter r(300, 1, false, t.fn());
    int sent = 0;
    auto end = t.now + 10s;
    while (t.now < end) {
        if (auto wait = r.try_acquire())
            t.now += *wait + 200us;  // the timer fires 0.2 ms after the token is due
        else
            ++sent;
    }
    EXPECT_GE(sent, 0.99 * 3000) << sent;
    EXPECT_LE(sent, 3000 + 2);
}

TEST(RateLimiter, ThrottleCutsMultiplicativelyAndSuccessRecoversAdditively) {
    FakeTime t;
    RateLimiter r(100, 10, true, t.fn());
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 75);
    EXPECT_DOUBLE_EQ(r.ceiling(), 100) << "the rate that overran";
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 75) << "one congestion event per second";
    t.now += 1s;
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 56.25);
    EXPECT_DOUBLE_EQ(r.ceiling(), 100) << "a storm that only drove the rate down keeps the rate it began at";
    for (int i = 0; i < 30; ++i) {
        t.now += 1s;
        r.on_throttle();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 2) << "not below 2% of the configured rate";
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 2) << "at most one step per second";
    for (int i = 0; i < 100; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 100) << "back to, never above, the configured rate";
}

TEST(RateLimiter, BelowAKnownCeilingRecoversFastThenHoldsThenProbesSlowly) {
    FakeTime t;
    RateLimiter r(400, 10, true, t.fn());
    t.now += 5s;
    r.on_throttle();  // the server's limit is somewhere below 400
    EXPECT_DOUBLE_EQ(r.rate(), 300);
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 340) << "fast: a tenth of the configured rate per second";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 380) << "up to 95% of the ceiling";
    for (int i = 0; i < 17; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 380) << "held below the rate that overran";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 384) << "then probing by 1% of the ceiling per second";
}

TEST(RateLimiter, AfterAThrottleAboveARateThatHeldRecoversFastOnlyToThatRate) {
    FakeTime t;
    RateLimiter r(400, 10, true, t.fn());
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 300);
    r.pause_until(t.now + 1s);
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 300) << "a second of pause is not a second sent at this rate";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 340);
    t.now += 500ms;
    r.on_throttle();  // 300 held for a second and 340 overran: the limit is in between
    EXPECT_DOUBLE_EQ(r.ceiling(), 340);
    EXPECT_DOUBLE_EQ(r.rate(), 255);
    for (int i = 0; i < 5; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 300) << "back to the rate that held, not to 95% of the one that overran";
    for (int i = 0; i < 14; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 300) << "held";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 303.4) << "then the slow probe";
    t.now += 1s;
    r.on_throttle();  // the probe found the same limit
    EXPECT_DOUBLE_EQ(r.rate(), 303.4 * 0.75);
    for (int i = 0; i < 39; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 303.4 * 0.95) << "a probe that failed waits twice as long before the next";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 303.4 * 0.95 + 3.034);
}

TEST(RateLimiter, AThrottleAtARateThatHeldMeansTheLimitWentDown) {
    FakeTime t;
    RateLimiter r(400, 10, true, t.fn());
    r.on_throttle();
    t.now += 1s;
    r.on_success();  // 300 held, then 340
    t.now += 1s;
    r.on_throttle();  // limit in [300, 340)
    for (int i = 0; i < 5; ++i) {
        t.now += 1s;
        r.on_success();
    }
    ASSERT_DOUBLE_EQ(r.rate(), 300);
    t.now += 1s;
    r.on_throttle();  // at 300, which had held: the limit fell below it
    EXPECT_DOUBLE_EQ(r.rate(), 225);
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 265);
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 285) << "nothing known to hold below: up to 95% of the ceiling";
}

// A server that allows `limit` requests per one-second window and answers 429 (with a
// Retry-After of `retry_after`, or none) beyond it; the client sends as fast as its limiter
// lets it, for `seconds` of fake time. Returns the accepted requests per second over the
// last three quarters of the run and the share of 429s.
struct Delivered {
    double per_second, throttled_share;
};
Delivered against_windowed_server(double configured, int limit, std::chrono::seconds retry_after, int seconds) {
    FakeTime t;
    RateLimiter r(configured, 50, true, t.fn());
    auto start = t.now;
    auto window = t.now;
    int in_window = 0;
    long accepted_late = 0, throttled = 0, sent = 0;
    for (int ms = 0; ms < seconds * 1000; ++ms) {
        t.now += 1ms;
        if (t.now - window >= 1s) {
            window = t.now;
            in_window = 0;
        }
        while (!r.try_acquire()) {
            ++sent;
            if (in_window < limit) {
                ++in_window;
                r.on_success();
                if (t.now - start >= std::chrono::seconds(seconds / 4)) ++accepted_late;
            } else {
                ++throttled;
                r.on_throttle();
                if (retry_after.count() > 0) r.pause_until(t.now + retry_after);
            }
        }
    }
    return {static_cast<double>(accepted_late) / (seconds * 0.75), static_cast<double>(throttled) / sent};
}

TEST(RateLimiter, ConvergesOnAServerLimitBelowTheConfiguredRateAndHoldsIt) {
    auto plain = against_windowed_server(400, 300, 0s, 240);
    EXPECT_GE(plain.per_second, 0.9 * 300) << "delivered " << plain.per_second << "/s";
    EXPECT_LT(plain.throttled_share, 0.02);
    auto with_pauses = against_windowed_server(400, 300, 1s, 240);
    EXPECT_GE(with_pauses.per_second, 0.85 * 300) << "delivered " << with_pauses.per_second << "/s";
    EXPECT_LT(with_pauses.throttled_share, 0.02);
    auto under = against_windowed_server(290, 300, 1s, 120);
    EXPECT_GE(under.per_second, 0.98 * 290) << "a limit above the configured rate is hardly felt";
    EXPECT_LT(under.throttled_share, 0.001) << "only the opening burst can overrun a window";
    std::printf("delivered of 300/s: %.3f (%.4f 429s), with Retry-After %.3f (%.4f); of 290/s: %.3f\n",
                plain.per_second / 300, plain.throttled_share, with_pauses.per_second / 300,
                with_pauses.throttled_share, under.per_second / 290);
}

// A server like nginx's limit_req: `limit` per second with a burst allowance, 429 with
// Retry-After: 1 beyond it. The client sends `rows` requests as fast as its limiter lets it.
// Returns the delivered rate as a share of the limit, start to finish.
double against_leaky_bucket(double configured, double limit, double burst, int rows) {
    FakeTime t;
    RateLimiter r(configured, 50, true, t.fn());
    auto start = t.now, last = t.now;
    double excess = 0;
    int done = 0;
    while (done < rows) {
        t.now += 100us;
        while (done < rows && !r.try_acquire()) {
            excess = std::max(0.0, excess - std::chrono::duration<double>(t.now - last).count() * limit);
            last = t.now;
            if (excess <= burst) {
                excess += 1;
                ++done;
                r.on_success();
            } else {
                r.on_throttle();
                r.pause_until(t.now + 1s);
            }
        }
    }
    return rows / std::chrono::duration<double>(t.now - start).count() / limit;
}

TEST(RateLimiter, AShortRunAboveALeakyBucketLimitDeliversMostOfIt) {
    // The benchmark's rate scenario on fake time (bench/compare_push.sh: nginx limit_req 300/s,
    // burst 30, Retry-After: 1; 10,000 rows), which measured 0.89 at 400. Each throttle costs
    // a one-second pause, so the short run is decided by how many it takes to find the limit
    // (four at 400, seventeen at 1000). A floor under today's figures, for the next change.
    EXPECT_GE(against_leaky_bucket(400, 300, 30, 10000), 0.91);
    EXPECT_GE(against_leaky_bucket(600, 300, 30, 10000), 0.84);
    EXPECT_GE(against_leaky_bucket(1000, 300, 30, 10000), 0.82);
    EXPECT_GE(against_leaky_bucket(300, 300, 30, 10000), 0.93) << "configured at the limit, burst 50";
}

TEST(RateLimiter, ALongRunAboveALeakyBucketLimitSettlesNearIt) {
    // 200,000 rows (over ten minutes at 300/s): probing ends in a throttle less and less often.
    EXPECT_GE(against_leaky_bucket(400, 300, 30, 200000), 0.975);
    EXPECT_GE(against_leaky_bucket(1000, 300, 1, 200000), 0.935);
    EXPECT_GE(against_leaky_bucket(330, 300, 100, 200000), 0.94);
}

TEST(RateLimiter, NotAdaptiveKeepsItsRate) {
    FakeTime t;
    RateLimiter r(100, 10, false, t.fn());
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 100);
}

TEST(RateLimiter, RetryAfterPausesEverything) {
    FakeTime t;
    RateLimiter r(100, 100, false, t.fn());
    r.pause_until(t.now + 5s);
    auto wait = r.try_acquire();
    ASSERT_TRUE(wait);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*wait), 5s);
    t.now += 5s;
    EXPECT_FALSE(r.try_acquire()) << "one request as the pause ends";
    EXPECT_TRUE(r.try_acquire()) << "no burst: nothing accrued while paused";
    t.now += 10ms;
    EXPECT_FALSE(r.try_acquire()) << "then the configured rate";
}

TEST(Backoff, FullJitterWithinTheCappedExponential) {
    Backoff b(500ms, 5000ms, 7);
    for (int attempt = 0; attempt < 12; ++attempt) {
        auto cap = std::min(5000.0, 500.0 * (1 << attempt));
        for (int i = 0; i < 50; ++i) {
            auto d = b.delay(attempt).count();
            ASSERT_GE(d, 0);
            ASSERT_LE(d, cap);
        }
    }
    Backoff same1(500ms, 5000ms, 42), same2(500ms, 5000ms, 42);
    EXPECT_EQ(same1.delay(3), same2.delay(3)) << "seeded";
}

}  // namespace
}  // namespace prefsync::dispatch
