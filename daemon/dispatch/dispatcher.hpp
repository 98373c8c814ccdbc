#pragma once
// What every run needs to talk to the API, built once from the config (RunContext), and
// the real parts of its request loop: the event loop, the API host's keep-alive pool (and
// the token host's, with OAuth), the adaptive limiter, the token source, the host-wide
// bucket and the request builder. Push, pull and verify each build one Dispatcher and run
// their producer on it.
#include <atomic>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/dispatch/asio_runtime.hpp"
#include "daemon/dispatch/request_loop.hpp"
#include "daemon/journal/journal.hpp"

namespace prefsync::dispatch {

// Everything a run of a job is given: built once by the command (or the daemon) that runs it.
struct RunContext {
    const config::Config& config;
    journal::Journal& journal;
    std::string secret;  // the API token, or the OAuth client secret
    std::string user_agent = "prefsync";
    const std::atomic<bool>* stop = nullptr;  // set by a signal handler
    RunObserver* observer = nullptr;          // the daemon's metrics and watchdog
    bool progress_tty = false;                // a live progress line on stderr
    // A source file still being written (its `settle`): waited for (a one-shot command), or
    // the run stops as if it changed while read (the daemon: read again later, its other jobs
    // not held meanwhile).
    bool wait_for_source = true;
};

// A run's last step: journal.retain_days, and the space its deletions freed given back
// (Journal::apply_retention). When another connection kept that from finishing, says so:
// freed pages may hold deleted bodies until a later run's end finishes it. Never throws: the
// run's end is recorded before, and a failure here is logged, not the run's.
void end_of_run_retention(const RunContext& c);

// The loop's settings as the config gives them (max_in_flight, retry, circuit breaker).
LoopSettings loop_settings(const config::Config& config, const std::string& job);

class Dispatcher {
public:
    // Throws std::invalid_argument for a bad base_url/token_url and std::runtime_error for a
    // TLS set-up problem (an unreadable ca_file).
    Dispatcher(const RunContext& context, const std::string& job);
    ~Dispatcher();

    const api::RequestBuilder& requests() const { return builder_; }
    // Runs `producer` to its end (see RequestLoop::run); may be called again (verify rounds).
    void run(Producer& producer) { loop_.run(producer); }
    const std::string& fatal() const { return loop_.fatal(); }
    const std::string& unavailable() const { return loop_.unavailable(); }
    const LoopStats& stats() const { return loop_.stats(); }
    double rate() const { return loop_.rate(); }
    std::uint64_t connections() const { return api_.connections_opened(); }

private:
    AsioRuntime runtime_;
    api::RequestBuilder builder_;
    PoolTransport api_;
    std::unique_ptr<PoolTransport> token_host_;
    RateLimiter limiter_;
    TokenSource tokens_;
    SharedBucket shared_;
    RequestLoop loop_;
};

}  // namespace prefsync::dispatch
