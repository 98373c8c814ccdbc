#pragma once
// The run-wide circuit breaker. When most recent answers fail alike (5xx, 408, no
// connection, no answer), the API is down, not the rows: sending every row into the outage
// would spend their retry budgets and hammer a server that is trying to come back. Open,
// the breaker lets one probe through per backoff step (doubling up to retry.max_delay);
// the probe's success closes it. Attempts made while it is open do not count against a
// row's budget (the request loop's RetryPolicy asks `open()`).
//
// The failures must come from several items: a few rows the server always fails (a 500
// for one malformed profile, an answer too large) are those rows failing, not the API; the
// breaker open over them would let them be retried for ever, uncounted. Open, the breaker
// gives up after `give_up_probes` failed probes in a row: the request loop then stops the
// run, and what is left stays for the next one.
//
// 429 is not "failing alike": it is the server pacing us, handled by the rate limiter (and,
// when it never ends, bounded by the request loop: retry.max_throttled).
// Time is injected (every call takes `now`), so it is tested on fake time.
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

namespace prefsync::dispatch {

struct BreakerSettings {
    int window = 20;          // the last N answers looked at
    int min_answers = 10;     // no verdict from fewer
    double trip_share = 0.8;  // open when this share of the window failed alike...
    int consecutive = 8;      // ...or this many in a row did
    int distinct_items = 5;   // ...from at least this many different items
    int give_up_probes = 16;  // open: failed probes in a row before the run stops
    std::chrono::milliseconds first_probe{1000};
    std::chrono::milliseconds max_probe{300000};
};

class CircuitBreaker {
public:
    using Clock = std::chrono::steady_clock;
    explicit CircuitBreaker(BreakerSettings settings) : settings_(settings) {}

    // May a request leave now? Open and past the probe time: yes, once (that request is the
    // probe; `probe` is set), then no until it is answered.
    bool allow(Clock::time_point now, bool& probe);
    // Open: when allow() may say yes again (nullopt while a probe is out or when closed).
    std::optional<Clock::time_point> next_probe() const;
    // An answer to the request for `item` (the producer's key). Returns what changed: +1
    // opened, -1 closed, 0 nothing.
    int record(bool failed_alike, bool was_probe, Clock::time_point now, std::uint64_t item = 0);
    // An answer that says nothing of whether the API works for what failed (a lookup's,
    // while writes fail alike): not counted; a probe's lets the next request probe at once.
    void inconclusive(bool was_probe, Clock::time_point now);
    // Retry-After: no probe before `until`.
    void defer_probe(Clock::time_point until);
    bool open() const { return state_ != State::Closed; }
    // Open: probes failed in a row since it opened; the loop gives up at give_up_probes.
    int failed_probes() const { return failed_probes_; }
    bool given_up() const { return failed_probes_ >= settings_.give_up_probes; }
    std::chrono::milliseconds probe_step() const { return step_; }

private:
    enum class State { Closed, Open, Probing };
    BreakerSettings settings_;
    State state_ = State::Closed;
    struct Answer {
        bool failed;
        std::uint64_t item;
    };
    std::deque<Answer> window_;
    int failed_in_window_ = 0, consecutive_ = 0, failed_probes_ = 0;
    bool distinct_failures(bool consecutive_only) const;
    std::chrono::milliseconds step_{0};
    Clock::time_point probe_at_{};
};

}  // namespace prefsync::dispatch
