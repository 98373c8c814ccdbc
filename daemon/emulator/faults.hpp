#pragma once
// Fault injection for the emulator: what goes wrong, how often, seeded so a failing test
// can be replayed. Decisions are made per request by FaultInjector (thread-safe).
//
// Besides faults proper, FaultConfig holds the choices the reference leaves to the server
// (a duplicate create, the status of a failed PATCH test): the emulator defaults to the
// forgiving choice, and a test can switch to the worst one the reference allows.
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace prefsync::emulator {

// How an outage refuses requests: the connection reset unanswered, or an HTTP 503.
enum class OutageMode { Reset, Unavailable };

struct FaultConfig {
    std::chrono::milliseconds latency{0};         // added before every API request is handled
    std::chrono::milliseconds latency_jitter{0};  // plus uniform random 0..jitter
    double rate_limit = 0;                        // API requests per second (1 s window); 0: none
    int retry_after_seconds = 1;                  // Retry-After sent with 429 (always sent)
    double error_429 = 0;                         // probability of a 429 whatever the rate (1: a quota spent)
    int error_429_retry_after_seconds = 0;        // Retry-After sent with those 429s; 0: none
    double error_503 = 0;                         // probability of a 503 (request not applied)
    int error_503_retry_after_seconds = 0;        // Retry-After sent with those 503s; 0: none
    double reset = 0;                             // probability of a connection reset before handling
    double ambiguous = 0;  // probability a write is applied, then the connection closed unanswered
    // How an ambiguous write is left: 0 unanswered (the connection reset); 500-599 answered
    // with that status, as a server that fails after applying the write (a gateway timeout,
    // an error while answering), which the reference's "unexpected condition" allows.
    int ambiguous_status = 0;
    std::chrono::milliseconds slow{0};    // delay between handling and answering
    double close = 0;                     // probability of "Connection: close" after answering
    std::chrono::milliseconds outage{0};  // from when it is set: refuse all API requests this long
    OutageMode outage_mode = OutageMode::Reset;
    int outage_retry_after_seconds = 0;  // Retry-After sent with an outage's 503s; 0: none
    bool accept_duplicates = false;      // W1 with a known alternate id creates another profile
    // Requests whose target contains this text are always answered 429, without Retry-After
    // (a per-profile limit, a gateway rule); empty: none.
    std::string throttle_target;
    // Requests whose target contains this text are answered 403 (a permission the account
    // lacks for those profiles, until it is granted); empty: none.
    std::string forbid_target;
    int patch_test_status = 409;  // status of a PATCH whose `test` fails: 409 or 400
    // Every element a write stores gets the server's own `Edited` (CreateDate, CreatedBy,
    // ModifiedDate, ModifiedBy), as the reference's profiles show on every element: a
    // `test` of a whole array as the client last sent it then fails.
    bool stamp_elements = false;
    std::uint64_t seed = 1;

    boost::json::object to_json() const;
    // Applies the keys present in `j` (the names to_json writes); error message naming the
    // key on bad input, and then nothing is applied.
    std::optional<std::string> update(const boost::json::object& j);
};

enum class Fault {
    None,
    Outage,
    OutageUnavailable,
    RateLimited,
    Throttled,
    RowThrottled,
    Forbidden,
    Reset,
    Unavailable
};

class FaultInjector {
public:
    using Clock = std::chrono::steady_clock;
    explicit FaultInjector(const FaultConfig& config);

    // The fault for an API request to `target` arriving now (counts it toward the rate window).
    Fault decide(Clock::time_point now, std::string_view target = {});
    // Whether this write, once applied, is left unanswered.
    bool ambiguous();
    std::chrono::milliseconds latency();
    std::chrono::milliseconds slow() const;
    bool close_after();
    // The Retry-After seconds answered with `fault` (429 or a 503); 0: no header, except
    // that a rate limit's 429 always carries one.
    int retry_after_seconds(Fault fault) const;

    FaultConfig config() const;
    std::optional<std::string> configure(const boost::json::object& j, Clock::time_point now);

private:
    bool chance(double p);

    mutable std::mutex mutex_;
    FaultConfig config_;
    std::mt19937_64 rng_;
    std::deque<Clock::time_point> window_;  // accepted requests in the last second
    Clock::time_point outage_until_{};
};

}  // namespace prefsync::emulator
