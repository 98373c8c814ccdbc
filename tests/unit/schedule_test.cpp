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
    EXPECT_EQ(quarter.next_after(utc(2026, 11, 27, 17, 50)), utc(2026, 11, 30, 9, 0)) << "Friday evening → Monday 09:00";
    EXPECT_EQ(quarter.next_after(utc(2026, 11, 30, 9, 1)), utc(2026, 11, 30, 9, 15));
    auto listed = Schedule::parse("5,35 0 1 1,7 *");
    EXPECT_EQ(listed.next_after(utc(2026, 2, 1, 0, 0)), utc(2026, 7, 1, 0, 5));
    // Both day fields restricted: either matches (cron's rule). 2026-12-01 is a Tuesday.
    auto either = Schedule::parse("0 0 1 * 0");
    EXPECT_EQ(either.next_after(utc(2026, 11, 28, 12, 0)), utc(2026, 11, 29, 0, 0)) << "Sunday the 29th";
    EXPECT_EQ(either.next_after(utc(2026, 11, 29, 12, 0)), utc(2026, 12, 1, 0, 0)) << "the 1st";
    EXPECT_EQ(Schedule::parse("0 0 * * 7").next_after(utc(2026, 11, 28, 0, 0)), utc(2026, 11, 29, 0, 0)) << "7 is Sunday";
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

}  // namespace
}  // namespace prefsync::service
