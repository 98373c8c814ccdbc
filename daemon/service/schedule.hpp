#pragma once
// When a scheduled job runs next: 5-field cron (minute hour day-of-month month day-of-week,
// read in the process's time zone, which `prefsync daemon` sets from daemon.timezone),
// @hourly/@daily/@weekly, or "every DURATION" (from the last run).
#include <bitset>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace prefsync::service {

class Schedule {
public:
    // `text` has passed config::check_schedule.
    static Schedule parse(std::string_view text);
    // The first fire time strictly after `after` (seconds since the epoch); after + 1 year
    // when the expression matches nothing in the next 5 years (e.g. "0 0 31 2 *").
    std::int64_t next_after(std::int64_t after) const;
    // Whether the minute starting at `t` (a multiple of 60) matches; false for "every".
    bool matches(std::int64_t t) const;
    const std::string& text() const { return text_; }

private:
    bool day_matches(const std::tm& tm) const;

    std::string text_;
    std::optional<std::int64_t> every_seconds_;
    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;
    std::bitset<13> months_;
    std::bitset<7> weekdays_;
    bool any_day_ = true, any_weekday_ = true;
};

}  // namespace prefsync::service
