// Schedules: cron fields, shortcuts and intervals, read in the process's time zone.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "daemon/service/schedule.hpp"

namespace prefsync::service {
namespace {

// Seconds since the epoch of a UTC date-time.
std::int64_t utc(int y, int mo, int d, int h, int mi) {
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return timegm(&tm);
}

class ScheduleTest : public ::testing::Test {
protected:
    void SetUp() override {
        setenv("TZ", "UTC", 1);
        tzset();
    }
};

TEST_F(ScheduleTest, CronFieldsListsRangesAndSteps) {
    auto nightly = Schedule::parse("0 2 * * *");
    EXPECT_EQ(nightly.next_after(utc(2026, 11, 28, 1, 59)), utc(2026, 11, 28, 2, 0));
    EXPECT_EQ(nightly.next_after(utc(2026, 11, 28, 2, 0)), utc(2026, 11, 29, 2, 0)) << "strictly after";
    auto quarter = Schedule::parse("*/15 9-17 * * 1-5");
    EXPECT_EQ(quarter.next_after(utc(2026, 11, 27, 17, 50)), utc(2026, 11, 30, 9, 0))
        << "Friday evening → Monday 09:00";
    EXPECT_EQ(quarter.next_after(utc(2026, 11, 30, 9, 1)), utc(2026, 11, 30, 9, 15));
    auto listed = Schedule::parse("5,35 0 1 1,7 *");
    EXPECT_EQ(listed.next_after(utc(2026, 2, 1, 0, 0)), utc(2026, 7, 1, 0, 5));
    // Both day fields restricted: either matches (cron's rule). 2026-12-01 is a Tuesday.
    auto either = Schedule::parse("0 0 1 * 0");
    EXPECT_EQ(either.next_after(utc(2026, 11, 28, 12, 0)), utc(2026, 11, 29, 0, 0)) << "Sunday the 29th";
    EXPECT_EQ(either.next_after(utc(2026, 11, 29, 12, 0)), utc(2026, 12, 1, 0, 0)) << "the 1st";
    EXPECT_EQ(Schedule::parse("0 0 * * 7").next_after(utc(2026, 11, 28, 0, 0)), utc(2026, 11, 29, 0, 0))
        << "7 is Sunday";
    EXPECT_EQ(Schedule::parse("0 0 29 2 *").next_after(utc(2026, 3, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
}

TEST_F(ScheduleTest, ShortcutsAndIntervals) {
    EXPECT_EQ(Schedule::parse("@hourly").next_after(utc(2026, 11, 28, 10, 30)), utc(2026, 11, 28, 11, 0));
    EXPECT_EQ(Schedule::parse("@daily").next_after(utc(2026, 11, 28, 10, 30)), utc(2026, 11, 29, 0, 0));
    EXPECT_EQ(Schedule::parse("@weekly").next_after(utc(2026, 11, 28, 10, 30)), utc(2026, 11, 29, 0, 0));
    EXPECT_EQ(Schedule::parse("every 15m").next_after(1000), 1000 + 900);
}

TEST_F(ScheduleTest, CronIsReadInTheConfiguredTimeZone) {
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    // 02:00 in Berlin is 01:00 UTC in winter.
    EXPECT_EQ(Schedule::parse("0 2 * * *").next_after(utc(2026, 11, 28, 0, 0)), utc(2026, 11, 28, 1, 0));
    // In summer (CEST) it is 00:00 UTC.
    EXPECT_EQ(Schedule::parse("0 2 * * *").next_after(utc(2026, 7, 1, 3, 0)), utc(2026, 7, 2, 0, 0));
}

TEST_F(ScheduleTest, ImpossibleDatesFallBackToAYearAhead) {
    auto start = utc(2026, 3, 1, 0, 0);
    EXPECT_EQ(Schedule::parse("0 0 31 2 *").next_after(start), start + 365LL * 24 * 3600);
    EXPECT_FALSE(Schedule::parse("0 0 31 2 *").matches(utc(2026, 2, 28, 0, 0)));
}

// next_after skips days and half hours that cannot match; across time-zone changes (an hour,
// half an hour, two hours, a whole skipped day) it must find what a minute-by-minute walk
// finds.
TEST_F(ScheduleTest, SkippingSearchAgreesWithAMinuteByMinuteWalkAcrossTimeZoneChanges) {
    const char* zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Antarctica/Troll",
                           "Pacific/Apia"};
    const char* expressions[] = {"30 2 * * *",  "0 0 * * *",  "*/20 1-3 * * *",
                                 "45 23 * * *", "0 12 * * 6", "59 1 * 3,4,10,11 *"};
    // The day before changes in 2026 (US, EU and Troll, Lord Howe) and Samoa's skipped 2011-12-30.
    const std::int64_t starts[] = {utc(2026, 3, 7, 0, 0),  utc(2026, 3, 28, 0, 0),  utc(2026, 4, 4, 0, 0),
                                   utc(2026, 10, 3, 0, 0), utc(2026, 10, 24, 0, 0), utc(2026, 10, 31, 0, 0),
                                   utc(2011, 12, 28, 0, 0)};
    constexpr std::int64_t kWalk = 3 * 24 * 3600;
    for (const char* zone : zones) {
        setenv("TZ", zone, 1);
        tzset();
        for (const char* expression : expressions) {
            auto schedule = Schedule::parse(expression);
            for (std::int64_t start : starts) {
                for (std::int64_t from = start; from < start + 2 * 24 * 3600; from += 7 * 3600 + 17 * 60) {
                    std::int64_t walked = 0;
                    for (std::int64_t t = (from / 60 + 1) * 60; t < from + kWalk && !walked; t += 60)
                        if (schedule.matches(t)) walked = t;
                    std::int64_t next = schedule.next_after(from);
                    if (walked)
                        ASSERT_EQ(next, walked) << zone << " " << expression << " after " << from;
                    else
                        ASSERT_GE(next, from + kWalk) << zone << " " << expression << " after " << from;
                }
            }
        }
    }
}

}  // namespace
}  // namespace prefsync::service
