#include "daemon/service/schedule.hpp"

#include <charconv>
#include <ctime>
#include <sstream>
#include <vector>

#include "config/config.hpp"

namespace prefsync::service {
namespace {

int number(std::string_view s) {
    int v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// Sets the bits a cron field selects ("*", "*/n", "a", "a-b", "a-b/n", comma lists).
template <std::size_t N>
void fill(std::bitset<N>& bits, std::string_view field, int min, int max) {
    std::size_t start = 0;
    while (start <= field.size()) {
        auto comma = field.find(',', start);
        auto part = field.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        int step = 1;
        if (auto slash = part.find('/'); slash != std::string_view::npos) {
            step = number(part.substr(slash + 1));
            part = part.substr(0, slash);
        }
        int lo = min, hi = max;
        if (part != "*") {
            auto dash = part.find('-');
            lo = number(part.substr(0, dash));
            hi = dash == std::string_view::npos ? lo : number(part.substr(dash + 1));
            if (dash == std::string_view::npos && step > 1) hi = max;  // "5/15": from 5 on
        }
        for (int v = lo; v <= hi; v += std::max(step, 1)) bits.set(static_cast<std::size_t>(v));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
}

}  // namespace

Schedule Schedule::parse(std::string_view text) {
    Schedule s;
    s.text_ = std::string(text);
    std::string cron(text);
    if (text.starts_with("every ")) {
        s.every_seconds_ = config::parse_duration(text.substr(6))->count() / 1000;
        return s;
    }
    if (text == "@hourly") cron = "0 * * * *";
    if (text == "@daily") cron = "0 0 * * *";
    if (text == "@weekly") cron = "0 0 * * 0";
    std::istringstream in(cron);
    std::vector<std::string> f;
    for (std::string x; in >> x;) f.push_back(x);
    fill(s.minutes_, f[0], 0, 59);
    fill(s.hours_, f[1], 0, 23);
    fill(s.days_, f[2], 1, 31);
    fill(s.months_, f[3], 1, 12);
    std::bitset<8> weekdays;
    fill(weekdays, f[4], 0, 7);
    for (int d = 0; d < 7; ++d) s.weekdays_[static_cast<std::size_t>(d)] = weekdays[static_cast<std::size_t>(d)];
    if (weekdays[7]) s.weekdays_.set(0);  // 7 is Sunday too
    s.any_day_ = f[2] == "*";
    s.any_weekday_ = f[4] == "*";
    return s;
}

bool Schedule::day_matches(const std::tm& tm) const {
    if (!months_[static_cast<std::size_t>(tm.tm_mon) + 1]) return false;
    bool day = days_[static_cast<std::size_t>(tm.tm_mday)], weekday = weekdays_[static_cast<std::size_t>(tm.tm_wday)];
    // cron: when both day fields are restricted, either matching is enough.
    return any_day_ ? (any_weekday_ || weekday) : (any_weekday_ ? day : (day || weekday));
}

bool Schedule::matches(std::int64_t t) const {
    if (every_seconds_) return false;
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    if (!localtime_r(&tt, &tm)) return false;
    return day_matches(tm) && hours_[static_cast<std::size_t>(tm.tm_hour)] &&
           minutes_[static_cast<std::size_t>(tm.tm_min)];
}

std::int64_t Schedule::next_after(std::int64_t after) const {
    if (every_seconds_) return after + std::max<std::int64_t>(1, *every_seconds_);
    // Walks local time, skipping what cannot match: the rest of a day whose date does not
    // match, the rest of a half hour whose hour does not. Skips are measured on the wall clock
    // and cut short where a time-zone change could make them overshoot (changes fall on the
    // hour or half hour and move the clock by at most two hours), so no matching minute is
    // passed. A day that cannot match costs about seven steps, so even the rarest expressions
    // (Feb 29, up to four years ahead) take about ten thousand, not two million minutes.
    constexpr std::int64_t kHorizon = 5LL * 366 * 24 * 3600;
    std::int64_t t = (after / 60 + 1) * 60;
    for (const std::int64_t end = t + kHorizon; t < end;) {
        std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        if (!localtime_r(&tt, &tm)) break;
        int to_half_hour = tm.tm_min < 30 ? 30 - tm.tm_min : 60 - tm.tm_min;
        int to_midnight = 24 * 60 - (tm.tm_hour * 60 + tm.tm_min);
        if (!day_matches(tm)) {
            t += 60 * (to_midnight > 180 ? to_midnight - 180 : to_half_hour);
        } else if (!hours_[static_cast<std::size_t>(tm.tm_hour)]) {
            t += 60 * to_half_hour;
        } else if (!minutes_[static_cast<std::size_t>(tm.tm_min)]) {
            t += 60;
        } else {
            return t;
        }
    }
    return after + 365LL * 24 * 3600;
}

}  // namespace prefsync::service
