#pragma once
// The emulator inside the test process, on 127.0.0.1 port 0, for end-to-end tests that run
// the real binary against it and then inspect its state and counters directly.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <string>

#include "daemon/emulator/server.hpp"
#include "tests/support/http_client.hpp"

namespace prefsync::testing {

inline std::string http_get(unsigned short port, const std::string& target) {
    HttpClient client(port);
    return client.get(target).body;
}

struct InProcessEmulator {
    // The emulator's clock runs `offset` ahead of real time, so a test can let "processing" finish.
    std::atomic<long long> offset_ms{0};
    emulator::Clock clock = [this] {
        return std::chrono::system_clock::now() + std::chrono::milliseconds(offset_ms.load());
    };
    emulator::ProfileStore store{clock, std::chrono::milliseconds(0)};
    emulator::EmulatorApi api;
    emulator::FaultInjector faults{emulator::FaultConfig{}};
    emulator::Server server;

    explicit InProcessEmulator(emulator::ApiOptions options = {}, emulator::ServerOptions server_options = {})
        : api(store, options, clock), server(api, store, faults, std::move(server_options)) {
        server.start();
    }

    void set_faults(const std::string& j) {
        auto problem = faults.configure(boost::json::parse(j).as_object(), std::chrono::steady_clock::now());
        ASSERT_FALSE(problem) << *problem;
    }
    // API requests the emulator has received, from its own counters: read in-process, as a
    // request over HTTP per poll would take the emulator's thread from the run it watches.
    std::int64_t requests_counter() { return static_cast<std::int64_t>(server.requests()); }
    // Requests counted for `endpoint` (its counter name, "W4 upsert"), any status.
    std::int64_t endpoint_requests(const std::string& endpoint) {
        auto stats = boost::json::parse(http_get(server.port(), "/__admin/stats")).at("by_endpoint").as_object();
        std::int64_t n = 0;
        if (auto* by_status = stats.if_contains(endpoint))
            for (const auto& [status, count] : by_status->as_object()) n += count.as_int64();
        return n;
    }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(server.port()) + "/Profiles/v2"; }
};

}  // namespace prefsync::testing
