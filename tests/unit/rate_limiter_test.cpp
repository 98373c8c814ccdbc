#include "daemon/dispatch/rate_limiter.hpp"

#include <gtest/gtest.h>

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

TEST(RateLimiter, ThrottleCutsMultiplicativelyAndSuccessRecoversAdditively) {
    FakeTime t;
    RateLimiter r(100, 10, true, t.fn());
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 75);
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 75) << "one congestion event per second";
    t.now += 1s;
    r.on_throttle();
    EXPECT_DOUBLE_EQ(r.rate(), 56.25);
    for (int i = 0; i < 30; ++i) {
        t.now += 1s;
        r.on_throttle();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 2) << "not below 2% of the configured rate";
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 2) << "at most one step per second";
    t.now += 1s;
    r.on_success();
    EXPECT_DOUBLE_EQ(r.rate(), 12);
    for (int i = 0; i < 100; ++i) {
        t.now += 1s;
        r.on_success();
    }
    EXPECT_DOUBLE_EQ(r.rate(), 100) << "back to, never above, the configured rate";
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
    EXPECT_FALSE(r.try_acquire());
    EXPECT_FALSE(r.try_acquire()) << "refilled while paused, up to the burst";
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
