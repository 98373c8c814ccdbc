#pragma once
// What the request loop needs from the world, as three small interfaces, so the loop is
// tested on fake time with a fake transport (tests/support/fake_runtime.hpp) and runs for
// real on Boost.Asio (asio_runtime.hpp).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/api/requests.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/http/http_pool.hpp"

namespace prefsync::dispatch {

using SteadyClock = std::chrono::steady_clock;

// A one-shot timer. start() replaces a pending call; a cancelled or replaced call never runs.
class Timer {
public:
    virtual ~Timer() = default;
    virtual void start(std::chrono::nanoseconds delay, std::function<void()> fn) = 0;
    virtual void cancel() = 0;
};

// The event loop every callback of a run is called on (one thread).
class Runtime {
public:
    virtual ~Runtime() = default;
    virtual SteadyClock::time_point now() = 0;
    virtual base::Millis wall_ms() = 0;  // for the journal's due times
    virtual std::unique_ptr<Timer> make_timer() = 0;
    virtual void post(std::function<void()> fn) = 0;
    // Runs handlers until stop() or until none is left; an exception thrown by a handler
    // leaves run() (and the runtime can be run again to drain what is left).
    virtual void run() = 0;
    virtual void stop() = 0;
    virtual void restart() = 0;
};

// Sends requests to one host. Every request is answered exactly once through `done`, on the
// runtime's thread, with the Transport kind that tells "never sent" from "no answer".
class Transport {
public:
    virtual ~Transport() = default;
    virtual void send(api::ApiRequest request, std::string authorization, http::ResponseHandler done) = 0;
    // Closes connections; requests not yet answered are answered NotSent.
    virtual void shutdown() = 0;
    virtual std::uint64_t connections_opened() const = 0;
};

}  // namespace prefsync::dispatch
