#pragma once
// The one request loop of every run (push, pull, verify): it asks a Producer for requests,
// paces them (OAuth token, host-wide bucket, adaptive limiter, circuit breaker, in-flight
// bound), sends them through a Transport, judges the answers by the one RetryPolicy, and
// hands each answer with its verdict back to the producer. Producers know their items and
// their journal; the loop knows time, pacing and failure.
//
// Design constraints:
// - One thread: every call into the producer happens on the runtime's thread.
// - Nothing leaves before the producer gave it (the producer has recorded it first where
//   that matters: a push claims rows in the journal before next() returns them).
// - A 401 to a token that had worked (OAuth) fetches a new token and re-sends the request
//   unchanged; a refused secret or any Fatal outcome stops the run: nothing more is sent,
//   answers in flight are still handed over, everything held is released.
// - A stop request (signal) stops sending at once; requests in flight are answered (or
//   time out) before run() returns; everything held is released to the producer.
// - An exception thrown by the producer (a journal that cannot be written) ends the loop:
//   the transport is shut down, the remaining callbacks are drained without calling the
//   producer, and run() rethrows, so nothing calls into a producer that is gone.
// - Two bounds end a run the server will not serve, as interrupted (unavailable(): nothing
//   is marked failed, what is left stays queued): the breaker giving up on an outage, and
//   throttling that outlasts `max_throttled` (only 429s answered since the last answer the
//   server processed; a 429 counts against no row, so without this bound a server that
//   always throttles would keep the run going for ever).
// - Time comes from the Runtime, so the loop is tested on fake time without a server.
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/dispatch/circuit_breaker.hpp"
#include "daemon/dispatch/rate_limiter.hpp"
#include "daemon/dispatch/retry_policy.hpp"
#include "daemon/dispatch/run_observer.hpp"
#include "daemon/dispatch/shared_bucket.hpp"
#include "daemon/dispatch/token_source.hpp"
#include "daemon/dispatch/transport.hpp"

namespace prefsync::dispatch {

// One request a producer wants sent.
struct Outgoing {
    std::uint64_t key = 0;  // the producer's handle for the item
    api::ApiRequest request;
    int attempts = 0;  // attempts already counted against the item's budget
    // The same for every attempt at the same row (a hash of its identity): the breaker tells
    // a few rows failing from the API failing by how many rows fail.
    std::uint64_t row = 0;
};

class Producer {
public:
    virtual ~Producer() = default;
    // The next request that may leave now, if any. Called only when the loop can send it.
    virtual std::optional<Outgoing> next(base::Millis now) = 0;
    // Nothing ready: when to ask again; nullopt when the producer has nothing left to give
    // (the run ends once nothing is in flight).
    virtual std::optional<base::Millis> wake_at(base::Millis now) = 0;
    // The answer to `item`, judged. Fatal outcomes too (release the item, uncounted).
    virtual void on_answer(Outgoing item, const http::HttpResponse& response, const Verdict& verdict) = 0;
    // An item the loop held but will not send (stopping): give it back, uncounted.
    virtual void release(Outgoing item) = 0;
    // Persist buffered outcomes (called on every tick and at the end).
    virtual void flush() = 0;
    // Every tick: lease renewal, progress lines; fill `progress` (read, finished, failed).
    virtual void on_tick(base::Millis now, RunProgress& progress) = 0;
};

struct LoopSettings {
    int max_in_flight = 16;
    RetrySettings retry;
    BreakerSettings breaker;
    // retry.max_throttled: answered nothing but 429 (and failures) for this long since the
    // first 429 after the last answer the server processed: the run stops.
    std::chrono::milliseconds max_throttled{std::chrono::hours(1)};
    std::chrono::milliseconds tick{100};
    std::uint64_t seed = 1;
    std::string job;  // for progress and log lines
};

struct LoopStats {
    std::int64_t sent = 0, answered = 0, retries = 0, breaker_trips = 0;
};

class RequestLoop {
public:
    RequestLoop(Runtime& runtime, Transport& transport, TokenSource& tokens, RateLimiter& limiter, SharedBucket* shared,
                RunObserver* observer, const std::atomic<bool>* stop, LoopSettings settings);
    ~RequestLoop();
    RequestLoop(const RequestLoop&) = delete;
    RequestLoop& operator=(const RequestLoop&) = delete;

    // Runs `producer` until it has nothing left, a fatal outcome, or stop. Rethrows what
    // the producer threw.
    void run(Producer& producer);

    // Why the run was aborted ("" if it was not).
    const std::string& fatal() const { return fatal_; }
    // Why the run stopped for an outage that outlasted the probes, or throttling that
    // outlasted max_throttled ("" if it did not).
    const std::string& unavailable() const { return unavailable_; }
    const LoopStats& stats() const { return stats_; }
    double rate() const { return limiter_.rate(); }

private:
    struct InFlight {
        Outgoing item;
        bool probe = false;
        int generation = 0;  // of the token it was sent with (TokenSource::generation())
    };

    bool stopping() const;
    void pump();
    void start(Outgoing item, bool probe);
    void answered(std::uint64_t ticket, http::HttpResponse response);
    void fetch_token();
    void wake_at(SteadyClock::time_point when);
    void tick();
    void release_held();
    void finish_if_idle();
    void abort(const std::string& reason);
    void note_throttling(const http::HttpResponse& r, SteadyClock::time_point now);
    void single_out_throttled_row(const InFlight& f, const http::HttpResponse& r,
                                  std::chrono::system_clock::time_point wall, Verdict& verdict);
    void give_up(const char* title, const std::string& reason);

    Runtime& runtime_;
    Transport& transport_;
    TokenSource& tokens_;
    RateLimiter& limiter_;
    SharedBucket* shared_;
    RunObserver* observer_;
    const std::atomic<bool>* stop_;
    LoopSettings settings_;
    RetryPolicy policy_;
    CircuitBreaker breaker_;
    bool writes_failing_ = false;  // the last write's answer failed alike (see answered())
    std::unique_ptr<Timer> wake_timer_, tick_timer_;
    std::optional<SteadyClock::time_point> wake_armed_;
    Producer* producer_ = nullptr;
    std::optional<Outgoing> staged_;  // taken from the producer, waiting for pacing
    std::deque<Outgoing> resend_;     // to send again as is (a refreshed token)
    std::unordered_map<std::uint64_t, InFlight> in_flight_;
    std::uint64_t next_ticket_ = 0;
    LoopStats stats_;
    RunProgress progress_;
    std::string fatal_, unavailable_;
    SteadyClock::time_point opened_at_{}, token_failing_since_{};
    SteadyClock::time_point token_retry_at_{};  // a failed fetch's next: not before (backoff, Retry-After)
    // The first 429 since the last answer the server processed (none: not throttled), and
    // whether failures (5xx, no answer) came between the 429s since.
    std::optional<SteadyClock::time_point> throttled_since_;
    bool throttled_with_failures_ = false;
    // Rows whose last answer was a 429: of which operation, how many in a row, how many of the
    // last with nothing else sent in between, and the operation's counts at the first of
    // them (single_out_throttled_row()).
    struct RowThrottle {
        api::Operation op = api::Operation::Read;
        int count = 0, alone = 0;
        std::uint64_t succeeded = 0, throttled = 0;
        std::int64_t sent = 0;  // requests sent by the loop at its last 429
    };
    std::unordered_map<std::uint64_t, RowThrottle> row_throttles_;
    struct OperationAnswers {
        std::uint64_t succeeded = 0, throttled = 0;
    };
    std::array<OperationAnswers, 16> op_answers_{};  // by api::Operation
    int token_failures_ = 0;
    bool token_fetching_ = false, finished_ = false, broken_ = false, pumping_ = false, pump_again_ = false;
};

}  // namespace prefsync::dispatch
