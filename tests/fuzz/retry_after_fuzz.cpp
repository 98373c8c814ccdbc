// Retry-After values (delta-seconds or an HTTP-date) at any "now": the first eight bytes
// pick now (from 1970 to 2200), the rest is the header value.
//
// Checked beyond "no crash": the delay is between 0 and kMaxRetryAfter, and adding it to a
// clock reading, as the engine does, cannot overflow.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "daemon/api/outcome.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace std::chrono;
    if (size < 8) return 0;
    std::uint64_t bits = 0;
    std::memcpy(&bits, data, sizeof bits);
    auto now = system_clock::time_point(seconds(static_cast<std::int64_t>(bits % 7'258'118'400ULL)));
    std::string_view value(reinterpret_cast<const char*>(data) + 8, size - 8);
    auto delay = prefsync::api::parse_retry_after(value, now);
    if (!delay) return 0;
    FUZZ_REQUIRE(*delay >= seconds(0) && *delay <= prefsync::api::kMaxRetryAfter);
    auto start = steady_clock::now();
    auto until = start + *delay;  // UBSan reports an overflow here
    FUZZ_REQUIRE(until >= start);
    return 0;
}
