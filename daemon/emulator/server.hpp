#pragma once
// The emulator's HTTP server (Boost.Beast): keep-alive connections, one strand each, no
// lock held across I/O. API requests go through fault injection to EmulatorApi; /__admin/
// serves state, counters and fault configuration without authentication (loopback only).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/emulator/emulator_api.hpp"
#include "daemon/emulator/faults.hpp"

namespace prefsync::emulator {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;  // 0: any free port
    int threads = 1;
    std::size_t body_limit = 1u << 20;
    std::chrono::seconds idle_timeout{60};
    std::string request_log;  // JSONL file, "" for none
    bool log_bodies = false;  // the request log also holds each request's body (tests compare them)
};

class Server {
public:
    Server(EmulatorApi& api, ProfileStore& store, FaultInjector& faults, ServerOptions options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    // API requests received so far (as /__admin/stats counts them), read in-process.
    std::uint64_t requests() const;
    // Starts accepting and runs the I/O threads in the background.
    void start();
    // Stops accepting, closes connections, joins the threads. Idempotent.
    void stop();
    boost::asio::io_context& io_context();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace prefsync::emulator
