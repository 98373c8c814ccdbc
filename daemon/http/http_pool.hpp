#pragma once
// A pool of keep-alive HTTP/1.1 connections to one API host (Boost.Beast), used from one
// io_context thread: at most `connections` sockets, requests queued FIFO when all are busy.
//
// Design constraints:
// - A timeout is set before every operation (connect, TLS handshake, write+read of a
//   request); an idle connection is closed after idle_timeout.
// - TLS verifies the certificate chain and the host name, with SNI, unless `insecure`.
// - Every request is answered exactly once through its callback, with the Transport that
//   tells "never sent" from "sent, no answer" (the second is ambiguous for a write).
// - Responses larger than max_response_bytes are refused (the connection is dropped).
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "daemon/api/outcome.hpp"
#include "daemon/api/requests.hpp"

namespace prefsync::http {

struct HttpResponse {
    api::Transport transport = api::Transport::NotSent;
    int status = 0;
    std::string body;
    std::string retry_after;
    std::string error;  // transport error, for logs
    std::chrono::microseconds elapsed{0};
    // Answered with `status`, but the body was over http.max_response_bytes and is not here:
    // sending again would only get it again.
    bool too_large = false;
};

using ResponseHandler = std::function<void(HttpResponse)>;

struct PoolStats {
    std::uint64_t connections_opened = 0;
    std::uint64_t lookups = 0;  // of the server's name (one serves many connections)
    std::uint64_t requests_sent = 0;
    std::size_t in_flight = 0;
    std::size_t queued = 0;
};

class HttpPool {
public:
    // Throws std::runtime_error for a TLS set-up problem (unreadable ca_file).
    HttpPool(boost::asio::io_context& ioc, const config::HttpConfig& config, api::BaseUrl base, std::string user_agent);
    ~HttpPool();
    HttpPool(const HttpPool&) = delete;
    HttpPool& operator=(const HttpPool&) = delete;

    // Sends `request` with `authorization` as the Authorization header; `done` runs on the
    // io_context thread. Call from that thread.
    void send(api::ApiRequest request, std::string authorization, ResponseHandler done);
    PoolStats stats() const;
    // Closes every connection; pending requests are answered NotSent.
    void shutdown();

    struct Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace prefsync::http
