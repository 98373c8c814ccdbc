// Schedules: any text through config::check_schedule; what it accepts through
// service::Schedule::parse and next_after, in one of a few time zones chosen for their
// changes (half-hour and two-hour shifts, a skipped day). Byte 0 picks the zone, bytes 1-8
// the time to start from (1970 to 2200), the rest is the expression.
//
// Checked beyond "no crash": next_after is strictly later; a cron expression's answer is a
// minute it matches, and no minute of the first two days before it matches (the skipping
// search agrees with a minute-by-minute one).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "config/config.hpp"
#include "daemon/service/schedule.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const char* const kZones[] = {
        "UTC",          "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Antarctica/Troll",
        "Pacific/Apia", "Asia/Kathmandu"};
    static std::size_t zone = SIZE_MAX;
    if (size < 9) return 0;
    std::string text(reinterpret_cast<const char*>(data) + 9, size - 9);
    if (!prefsync::config::check_schedule(text).empty()) return 0;

    std::size_t z = data[0] % (sizeof kZones / sizeof kZones[0]);
    if (z != zone) {
        setenv("TZ", kZones[z], 1);
        tzset();
        zone = z;
    }
    std::uint64_t bits = 0;
    std::memcpy(&bits, data + 1, sizeof bits);
    auto after = static_cast<std::int64_t>(bits % 7'258'118'400ULL);

    auto schedule = prefsync::service::Schedule::parse(text);
    std::int64_t next = schedule.next_after(after);
    FUZZ_REQUIRE(next > after);
    if (text.starts_with("every ")) return 0;
    constexpr std::int64_t kYear = 365LL * 24 * 3600;
    FUZZ_REQUIRE(next == after + kYear || (next % 60 == 0 && schedule.matches(next)));
    std::int64_t first = (after / 60 + 1) * 60;
    for (std::int64_t t = first; t < next && t < first + 2 * 24 * 3600; t += 60) FUZZ_REQUIRE(!schedule.matches(t));
    return 0;
}
