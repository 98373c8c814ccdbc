// The HTTP pool against the emulator on 127.0.0.1: keep-alive proven by counting the
// server's connections, reconnection when the server closes, and every transport outcome.
#include "daemon/http/http_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <functional>
#include <thread>

#include "daemon/emulator/server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/tls_server.hpp"

namespace prefsync::http {
namespace {

namespace json = boost::json;

struct Fixture {
    emulator::ProfileStore store{[] { return std::chrono::system_clock::now(); }, std::chrono::milliseconds(0)};
    emulator::EmulatorApi api{store, emulator::ApiOptions{}, [] { return std::chrono::system_clock::now(); }};
    emulator::FaultInjector faults{emulator::FaultConfig{}};
    emulator::Server server{api, store, faults, emulator::ServerOptions{}};
    Fixture() { server.start(); }

    api::RequestBuilder builder() const {
        return api::RequestBuilder(
            api::parse_base_url("http://127.0.0.1:" + std::to_string(server.port()) + "/Profiles/v2"), "12345");
    }
    json::object stats() {
        testing::HttpClient c(server.port());
        return c.get("/__admin/stats").json().as_object();
    }
};

// Sends `n` requests through a pool of `connections` and returns the responses (and the
// pool's counts in `stats`).
std::vector<HttpResponse> send_many(Fixture& f, int n, int connections, const std::string& token = "emulator-token",
                                    PoolStats* stats = nullptr) {
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    cfg.connections = connections;
    auto b = f.builder();
    HttpPool pool(ioc, cfg, b.base(), "prefsync-test");
    std::vector<HttpResponse> out;
    for (int i = 0; i < n; ++i)
        pool.send(b.upsert("CRMID", "C" + std::to_string(i % 50), R"({"CustomerType":"Retail"})"), token,
                  [&](HttpResponse r) {
                      out.push_back(std::move(r));
                      if (static_cast<int>(out.size()) == n) pool.shutdown();
                  });
    ioc.run();
    if (stats) *stats = pool.stats();
    return out;
}

// Sends one request through a fresh pool configured by `cfg` and returns its response.
HttpResponse send_one(const config::HttpConfig& cfg, const api::BaseUrl& base, api::ApiRequest request,
                      const std::string& token = "emulator-token") {
    boost::asio::io_context ioc;
    HttpPool pool(ioc, cfg, base, "prefsync-test");
    HttpResponse got;
    pool.send(std::move(request), token, [&](HttpResponse r) {
        got = std::move(r);
        pool.shutdown();
    });
    ioc.run();
    return got;
}

TEST(HttpPool, AThousandRequestsOverFourConnectionsOpenExactlyFour) {
    Fixture f;
    auto responses = send_many(f, 1000, 4);
    ASSERT_EQ(responses.size(), 1000u);
    for (auto& r : responses) {
        ASSERT_EQ(r.transport, api::Transport::Answered) << r.error;
        ASSERT_EQ(r.status, 202);
    }
    auto s = f.stats();
    // Only four were ever opened by the pool, so never more than four at once. (The peak
    // may count this stats call's connection beside pool connections whose close the server
    // has not processed yet: measured 5 once under ASan.)
    EXPECT_EQ(s.at("connections_total").as_int64(), 4 + 1) << "four for the pool, one for this stats call";
    EXPECT_LE(s.at("peak_connections").as_int64(), 4 + 1);
    EXPECT_EQ(s.at("by_endpoint").at("W4 upsert").at("202").as_int64(), 1000);
}

// Connections opened together wait for one lookup of the server's name, and later ones
// reuse its addresses, rather than a lookup each (512 of them, one after another).
TEST(HttpPool, ConnectionsOpenedTogetherShareOneLookupOfTheServersName) {
    Fixture f;
    PoolStats stats;
    auto responses = send_many(f, 8, 8, "emulator-token", &stats);
    ASSERT_EQ(responses.size(), 8u);
    for (auto& r : responses) EXPECT_EQ(r.status, 202) << r.error;
    EXPECT_EQ(stats.connections_opened, 8u);
    EXPECT_EQ(stats.lookups, 1u);
}

// Connections opened later (the server closes after every answer) reuse the addresses; a
// failed connect drops them, so the next connection looks the name up again.
TEST(HttpPool, LaterConnectionsReuseTheAddressesUntilAConnectFails) {
    Fixture f;
    f.faults.configure(json::object{{"close", 1}}, std::chrono::steady_clock::now());
    PoolStats stats;
    auto responses = send_many(f, 10, 2, "emulator-token", &stats);
    ASSERT_EQ(responses.size(), 10u);
    for (auto& r : responses) EXPECT_EQ(r.status, 202) << r.error;
    EXPECT_EQ(stats.connections_opened, 10u) << "one connection per answer";
    EXPECT_EQ(stats.lookups, 1u);
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    auto b = f.builder();
    // A port nothing listens on: each connect fails, and each next one looks again.
    boost::asio::ip::tcp::acceptor closed(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto port = closed.local_endpoint().port();
    closed.close();
    HttpPool pool(ioc, cfg, api::parse_base_url("http://127.0.0.1:" + std::to_string(port) + "/Profiles/v2"),
                  "prefsync-test");
    std::vector<HttpResponse> got;
    std::function<void()> send_one_more = [&] {
        pool.send(b.upsert("CRMID", "C1", R"({"CustomerType":"Retail"})"), "emulator-token", [&](HttpResponse r) {
            got.push_back(std::move(r));
            if (got.size() < 2)
                send_one_more();
            else
                pool.shutdown();
        });
    };
    send_one_more();
    ioc.run();
    ASSERT_EQ(got.size(), 2u);
    for (const auto& r : got) EXPECT_EQ(r.transport, api::Transport::NotSent) << r.error;
    EXPECT_EQ(pool.stats().lookups, 2u);
}

TEST(HttpPool, AServerThatClosesAfterEveryResponseStillWorks) {
    Fixture f;
    f.faults.configure(json::object{{"close", 1}}, std::chrono::steady_clock::now());
    auto responses = send_many(f, 200, 4);
    ASSERT_EQ(responses.size(), 200u);
    for (auto& r : responses) ASSERT_EQ(r.status, 202) << r.error;
    EXPECT_EQ(f.stats().at("connections_total").as_int64(), 200 + 1) << "one connection per request";
}

TEST(HttpPool, TransportOutcomesTellNotSentFromNoAnswer) {
    Fixture f;
    // Reset before the request is handled: sent, no answer.
    f.faults.configure(json::object{{"reset", 1}}, std::chrono::steady_clock::now());
    auto reset = send_many(f, 3, 1);
    for (auto& r : reset) EXPECT_EQ(r.transport, api::Transport::NoAnswer) << r.error;

    // Nobody listening: never sent.
    auto got = send_one(config::HttpConfig{}, api::parse_base_url("http://127.0.0.1:1/Profiles/v2"),
                        api::ApiRequest{"GET", "/Profiles/v2/1/Profile/1", "", api::Operation::Read}, "t");
    EXPECT_EQ(got.transport, api::Transport::NotSent);
    EXPECT_NE(got.error.find("connect"), std::string::npos) << got.error;
}

TEST(HttpPool, ARequestIsWrittenAsPlainHttp11WithItsLengthAndKeepAlive) {
    // A bare server that keeps what it read: the bytes on the wire, exactly.
    boost::asio::io_context server_io;
    boost::asio::ip::tcp::acceptor acceptor(server_io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto port = acceptor.local_endpoint().port();
    std::string wire;
    std::thread server([&] {
        auto socket = acceptor.accept();
        boost::asio::streambuf in;
        auto head = boost::asio::read_until(socket, in, "\r\n\r\n");
        std::string all(boost::asio::buffers_begin(in.data()), boost::asio::buffers_end(in.data()));
        auto length = std::stoul(all.substr(all.find("Content-Length: ") + 16));
        if (all.size() < head + length)
            boost::asio::read(socket, in, boost::asio::transfer_exactly(head + length - all.size()));
        wire.assign(boost::asio::buffers_begin(in.data()), boost::asio::buffers_end(in.data()));
        boost::asio::write(socket,
                           boost::asio::buffer(std::string("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")));
    });
    auto base = api::parse_base_url("http://127.0.0.1:" + std::to_string(port) + "/Profiles/v2");
    api::RequestBuilder b(base, "12345");
    auto got = send_one(config::HttpConfig{}, base, b.upsert("CRMID", "C 1", R"({"a":1})"), "Bearer t0ken");
    server.join();
    EXPECT_EQ(got.status, 202) << got.error;
    EXPECT_EQ(wire,
              "POST /Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRMID&alternateId=C%201 HTTP/1.1\r\n"
              "Host: 127.0.0.1:" +
                  std::to_string(port) +
                  "\r\nUser-Agent: prefsync-test\r\nAuthorization: Bearer t0ken\r\n"
                  "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
                  R"({"a":1})");
}

// A bare server that answers each request it reads on one connection with the next of
// `answers`, as given. Asynchronous on its own thread, so a client that never connects or
// hangs up early ends the test with a failed expectation, not a hang or an abort.
struct ScriptedServer {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor;
    boost::asio::ip::tcp::socket socket{io};
    boost::asio::streambuf in;
    std::vector<std::string> answers;
    std::vector<std::string> heads;  // each request's head, as read (before the answer is sent)
    std::size_t next = 0;
    std::thread thread;

    // Throws when `address` cannot be listened on.
    explicit ScriptedServer(std::vector<std::string> a, const std::string& address = "127.0.0.1")
        : acceptor(io, {boost::asio::ip::make_address(address), 0}), answers(std::move(a)) {
        acceptor.async_accept(socket, [this](boost::system::error_code ec) {
            if (!ec) answer_next();
        });
        thread = std::thread([this] { io.run(); });
    }
    ~ScriptedServer() { stop(); }
    // Afterwards `heads` may be read.
    void stop() {
        io.stop();
        if (thread.joinable()) thread.join();
    }
    api::BaseUrl base() const {
        auto address = acceptor.local_endpoint().address();
        auto host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
        return api::parse_base_url("http://" + host + ":" + std::to_string(acceptor.local_endpoint().port()) +
                                   "/Profiles/v2");
    }

private:
    void answer_next() {
        if (next == answers.size()) return;
        boost::asio::async_read_until(socket, in, "\r\n\r\n", [this](boost::system::error_code ec, std::size_t head) {
            if (ec) return;
            std::string header(boost::asio::buffers_begin(in.data()), boost::asio::buffers_begin(in.data()) + head);
            heads.push_back(header);
            auto at = header.find("Content-Length: ");
            std::size_t length = at == std::string::npos ? 0 : std::stoul(header.substr(at + 16));
            std::size_t missing = head + length > in.size() ? head + length - in.size() : 0;
            boost::asio::async_read(socket, in, boost::asio::transfer_exactly(missing),
                                    [this, head, length](boost::system::error_code ec2, std::size_t) {
                                        if (ec2) return;
                                        in.consume(head + length);
                                        boost::asio::async_write(socket, boost::asio::buffer(answers[next++]),
                                                                 [this](boost::system::error_code ec3, std::size_t) {
                                                                     if (!ec3) answer_next();
                                                                 });
                                    });
        });
    }
};

TEST(HttpPool, AnAnswerKeepsItsStatusChunkedBodyAndFirstRetryAfterOnAKeptConnection) {
    ScriptedServer server(
        {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nX-Other: y\r\nRetry-After: 9\r\n"
         "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"});
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    cfg.connections = 1;
    auto base = server.base();
    api::RequestBuilder b(base, "12345");
    HttpPool pool(ioc, cfg, base, "prefsync-test");
    std::vector<HttpResponse> got;
    for (int i = 0; i < 2; ++i)
        pool.send(b.get("CRMID", "C" + std::to_string(i)), "t", [&](HttpResponse r) {
            got.push_back(std::move(r));
            if (got.size() == 2) pool.shutdown();
        });
    ioc.run();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].status, 429) << got[0].error;
    EXPECT_EQ(got[0].retry_after, "3");
    EXPECT_EQ(got[0].body, R"({"a":1})");
    EXPECT_EQ(got[1].status, 200) << got[1].error << " (the server accepts one connection only)";
    EXPECT_EQ(got[1].body, "{}");
    EXPECT_EQ(got[1].retry_after, "");
    EXPECT_EQ(pool.stats().connections_opened, 1u);
}

// A connection is closed once it sat idle for idle_timeout (before the server may close it
// under a request), and never while requests keep it busy, however long that lasts.
TEST(HttpPool, AConnectionIdleForIdleTimeoutIsClosedAndABusyOneIsKept) {
    Fixture f;
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    cfg.connections = 1;
    cfg.idle_timeout = std::chrono::milliseconds(50);
    auto b = f.builder();
    HttpPool pool(ioc, cfg, b.base(), "prefsync-test");
    boost::asio::steady_timer pause(ioc);
    int answered = 0;
    std::uint64_t opened_while_busy = 0;
    auto started = std::chrono::steady_clock::now();
    std::function<void()> next = [&] {
        pool.send(b.upsert("CRMID", "C1", R"({"CustomerType":"Retail"})"), "emulator-token", [&](HttpResponse r) {
            ASSERT_EQ(r.status, 202) << r.error;
            ++answered;
            // Back to back for four idle timeouts: one connection throughout.
            if (std::chrono::steady_clock::now() - started < 4 * cfg.idle_timeout) return next();
            if (opened_while_busy == 0) {
                opened_while_busy = pool.stats().connections_opened;
                // Then idle for six: closed, so the next request opens another.
                pause.expires_after(6 * cfg.idle_timeout);
                return pause.async_wait([&](boost::system::error_code) { next(); });
            }
            pool.shutdown();
        });
    };
    next();
    ioc.run();
    EXPECT_GT(answered, 2);
    EXPECT_EQ(opened_while_busy, 1u);
    EXPECT_EQ(pool.stats().connections_opened, 2u);
}

// A run that ends at once (its journal failed) shuts the pool down while a connection is
// still resolving: the request is reported not sent, and nothing touches the closed stream.
TEST(HttpPool, AShutDownWhileAConnectionIsBeingMadeReportsItNotSent) {
    Fixture f;
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    auto b = f.builder();
    HttpPool pool(ioc, cfg, b.base(), "prefsync-test");
    std::vector<HttpResponse> got;
    for (int i = 0; i < 2; ++i)  // two connections, waiting for the address's lookup
        pool.send(b.upsert("CRMID", "C1", R"({"CustomerType":"Retail"})"), "emulator-token",
                  [&](HttpResponse r) { got.push_back(std::move(r)); });
    pool.shutdown();
    ioc.run();
    ASSERT_FALSE(got.empty());
    for (const auto& r : got) EXPECT_EQ(r.transport, api::Transport::NotSent) << r.error;
    EXPECT_EQ(pool.stats().connections_opened, 0u);
}

TEST(HttpPool, AnIPv6LiteralIsConnectedToAndNamedInTheHostHeaderWithItsBrackets) {
    std::optional<ScriptedServer> server;
    try {
        server.emplace(std::vector<std::string>{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"}, "::1");
    } catch (const std::exception& e) {
        GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    auto base = server->base();
    EXPECT_EQ(base.host, "[::1]");
    EXPECT_EQ(base.address, "::1");
    auto got = send_one(config::HttpConfig{}, base, api::RequestBuilder(base, "12345").get("CRMID", "C0"));
    EXPECT_EQ(got.status, 200) << got.error;
    server->stop();
    ASSERT_EQ(server->heads.size(), 1u);
    EXPECT_NE(server->heads[0].find("\r\nHost: [::1]:" + base.port + "\r\n"), std::string::npos) << server->heads[0];
}

TEST(HttpPool, AChunkedAnswerLongerThanTheLimitIsRefused) {
    // Each chunk within the limit, the two together past it.
    ScriptedServer server(
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n"});
    config::HttpConfig cfg;
    cfg.max_response_bytes = 4;
    auto base = server.base();
    auto got = send_one(cfg, base, api::RequestBuilder(base, "12345").get("CRMID", "C0"));
    EXPECT_EQ(got.transport, api::Transport::Answered) << "the server answered; the answer does not fit";
    EXPECT_EQ(got.status, 200);
    EXPECT_TRUE(got.too_large);
    EXPECT_TRUE(got.body.empty());
    EXPECT_NE(got.error.find("larger than http.max_response_bytes (4 bytes)"), std::string::npos) << got.error;
}

TEST(HttpPool, AHeaderValueWithALineBreakIsNeverSent) {
    Fixture f;
    auto b = f.builder();
    for (std::string auth : {"Bearer t\r\nX-Injected: 1", "Bearer t\nX-Injected: 1", "Bearer t\rX-Injected: 1"}) {
        auto got = send_one(config::HttpConfig{}, b.base(), b.get("CRMID", "x"), auth);
        EXPECT_EQ(got.transport, api::Transport::NotSent);
        EXPECT_NE(got.error.find("line break"), std::string::npos) << got.error;
    }
    {
        // The pool's own headers (Host, User-Agent) are checked once, when it is made: a
        // line break there refuses every request as one in a request's own header does.
        boost::asio::io_context ioc;
        HttpPool pool(ioc, config::HttpConfig{}, b.base(), "prefsync\r\nX-Injected: 1");
        std::vector<HttpResponse> got;
        for (int i = 0; i < 2; ++i)
            pool.send(b.get("CRMID", "x"), "emulator-token", [&](HttpResponse r) {
                got.push_back(std::move(r));
                if (got.size() == 2) pool.shutdown();
            });
        ioc.run();
        ASSERT_EQ(got.size(), 2u);
        for (const auto& r : got) {
            EXPECT_EQ(r.transport, api::Transport::NotSent);
            EXPECT_NE(r.error.find("line break"), std::string::npos) << r.error;
        }
    }
    EXPECT_EQ(f.stats().at("requests").as_int64(), 0) << "nothing reached the server";
}

TEST(HttpPool, TimeoutsEndRequestsThatTakeTooLong) {
    Fixture f;
    f.faults.configure(json::object{{"slow_ms", 2000}}, std::chrono::steady_clock::now());
    config::HttpConfig cfg;
    cfg.request_timeout = std::chrono::milliseconds(200);
    auto b = f.builder();
    auto got = send_one(cfg, b.base(), b.get("CRMID", "x"));
    EXPECT_EQ(got.transport, api::Transport::NoAnswer);
    EXPECT_LT(got.elapsed, std::chrono::milliseconds(1500));
}

// The rest of an over-size answer is left unread on its connection: the next request, on a
// new connection, must not read its answer from those bytes.
TEST(HttpPool, AfterAnOversizedAnswerTheNextRequestGetsItsOwnAnswer) {
    Fixture f;
    send_many(f, 1, 1);  // one profile to read back
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    cfg.connections = 1;
    cfg.max_response_bytes = 200;  // the profile's body is larger (~290 bytes), an upsert's not (~140)
    auto b = f.builder();
    HttpPool pool(ioc, cfg, b.base(), "prefsync-test");
    std::vector<HttpResponse> got;
    auto keep = [&](HttpResponse r) {
        got.push_back(std::move(r));
        if (got.size() == 3) pool.shutdown();
    };
    pool.send(b.get("CRMID", "C0"), "emulator-token", keep);
    for (int i = 1; i <= 2; ++i)
        pool.send(b.upsert("CRMID", "C" + std::to_string(i), R"({"CustomerType":"Retail"})"), "emulator-token", keep);
    ioc.run();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(got[0].too_large) << got[0].error;
    for (int i = 1; i <= 2; ++i) {
        EXPECT_EQ(got[i].transport, api::Transport::Answered) << got[i].error;
        EXPECT_EQ(got[i].status, 202) << got[i].error;
        EXPECT_FALSE(got[i].too_large) << got[i].error;
    }
    EXPECT_EQ(pool.stats().connections_opened, 2u) << "the over-size answer's connection was closed";
}

TEST(HttpPool, OversizedResponsesAreRefused) {
    Fixture f;
    send_many(f, 1, 1);  // one profile to read back
    config::HttpConfig cfg;
    cfg.max_response_bytes = 10;
    auto b = f.builder();
    auto got = send_one(cfg, b.base(), b.get("CRMID", "C0"));
    EXPECT_TRUE(got.too_large);
    EXPECT_EQ(got.status, 200);
    EXPECT_TRUE(got.body.empty());
}

TEST(HttpPool, AFailedTlsHandshakeIsReportedAsNotSent) {
    // TLS spoken to a plain-HTTP server: the handshake fails, clearly, and the request is
    // known not to have been sent (safe to retry, even a create).
    Fixture f;
    config::HttpConfig cfg;
    cfg.connect_timeout = std::chrono::seconds(2);
    auto got =
        send_one(cfg, api::parse_base_url("https://127.0.0.1:" + std::to_string(f.server.port()) + "/Profiles/v2"),
                 api::ApiRequest{"GET", "/Profiles/v2/12345/Profile/1", "", api::Operation::Read});
    EXPECT_EQ(got.transport, api::Transport::NotSent);
    EXPECT_NE(got.error.find("TLS handshake"), std::string::npos) << got.error;
}

// TLS against a real TLS server (tests/data/tls): the right CA passes; another CA, or
// certificate verification against a name the certificate does not carry, fails clearly.
HttpResponse tls_get(unsigned short port, const std::string& ca_file, const std::string& host = "127.0.0.1") {
    config::HttpConfig cfg;
    cfg.ca_file = ca_file;
    cfg.connect_timeout = std::chrono::seconds(5);
    return send_one(cfg, api::parse_base_url("https://" + host + ":" + std::to_string(port) + "/Profiles/v2"),
                    api::ApiRequest{"GET", "/Profiles/v2/1/Profile/1", "", api::Operation::Read}, "t");
}

const std::string kTls = PREFSYNC_SOURCE_DIR "/tests/data/tls/";

TEST(HttpPoolTls, TheRightCertificateAuthorityPasses) {
    testing::TlsServer server(kTls + "server.pem", kTls + "server.key");
    auto r = tls_get(server.port(), kTls + "ca.pem");
    ASSERT_EQ(r.transport, api::Transport::Answered) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"ok":true})");
}

TEST(HttpPoolTls, AnUnknownCertificateAuthorityFailsVerification) {
    testing::TlsServer server(kTls + "server.pem", kTls + "server.key");
    auto r = tls_get(server.port(), kTls + "other-ca.pem");
    EXPECT_EQ(r.transport, api::Transport::NotSent) << "nothing was sent to an unverified server";
    EXPECT_NE(r.error.find("TLS handshake"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("certificate verify failed"), std::string::npos) << r.error;
}

TEST(HttpPoolTls, AHostNameTheCertificateDoesNotCarryFails) {
    testing::TlsServer server(kTls + "server.pem", kTls + "server.key");
    // The certificate is for IP 127.0.0.1 only; "localhost" resolves there but is not in it.
    auto r = tls_get(server.port(), kTls + "ca.pem", "localhost");
    EXPECT_EQ(r.transport, api::Transport::NotSent);
    EXPECT_NE(r.error.find("TLS handshake"), std::string::npos) << r.error;
}

TEST(HttpPoolTls, AnUnreadableCaFileIsAStartUpError) {
    boost::asio::io_context ioc;
    config::HttpConfig cfg;
    cfg.ca_file = "/nonexistent/ca.pem";
    EXPECT_THROW(HttpPool(ioc, cfg, api::parse_base_url("https://127.0.0.1:1/x"), "t"), std::runtime_error);
}

}  // namespace
}  // namespace prefsync::http
