#pragma once
// A minimal HTTP server for client tests: serves 127.0.0.1:0 and answers every request with
// one fixed 200 (by default {"ok":true}), keep-alive, on a thread of its own. TlsServer serves
// HTTPS with the test certificate (tests/data/tls); FixedAnswerServer plain HTTP, for
// answers the emulator never gives (a proxy's HTML page where JSON was expected).
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <optional>
#include <string>
#include <thread>

namespace prefsync::testing {

// What a FixedAnswerServer answers to every request, with status 200.
struct FixedAnswer {
    std::string content_type = "application/json";
    std::string body = R"({"ok":true})";
    // "Connection: close" after each answer: one connection is served at a time, so a
    // client holding several open must not wait on one the server never reads.
    bool close_each = false;
};

class FixedAnswerServer {
public:
    using Answer = FixedAnswer;

    explicit FixedAnswerServer(Answer answer = {}) : answer_(std::move(answer)) { start(); }
    // Over TLS, with this certificate chain and key.
    FixedAnswerServer(const std::string& cert, const std::string& key, Answer answer = {})
        : answer_(std::move(answer)), ctx_(std::in_place, boost::asio::ssl::context::tls_server) {
        ctx_->use_certificate_chain_file(cert);
        ctx_->use_private_key_file(key, boost::asio::ssl::context::pem);
        start();
    }
    ~FixedAnswerServer() {
        stop_ = true;
        boost::system::error_code ec;
        // Wake the blocking accept with a throwaway connection.
        boost::asio::ip::tcp::socket poke(ioc_);
        poke.connect(acceptor_.local_endpoint(), ec);
        thread_.join();
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/Profiles/v2"; }
    int handshakes_failed() const { return failed_; }

private:
    void start() {
        acceptor_.open(boost::asio::ip::tcp::v4());
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        thread_ = std::thread([this] { serve(); });
    }

    void serve() {
        while (!stop_) {
            boost::asio::ip::tcp::socket socket(ioc_);
            boost::system::error_code ec;
            acceptor_.accept(socket, ec);
            if (ec || stop_) continue;
            if (!ctx_) {
                boost::beast::tcp_stream stream(std::move(socket));
                answer_all(stream);
                continue;
            }
            boost::beast::ssl_stream<boost::beast::tcp_stream> stream(std::move(socket), *ctx_);
            boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
            stream.handshake(boost::asio::ssl::stream_base::server, ec);
            if (ec) {
                ++failed_;
                continue;
            }
            answer_all(stream);
        }
    }

    // Every request of one connection, until the client closes it.
    template <class Stream>
    void answer_all(Stream& stream) {
        namespace http = boost::beast::http;
        boost::system::error_code ec;
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            http::read(stream, buffer, req, ec);
            if (ec) break;
            http::response<http::string_body> res{http::status::ok, 11};
            res.set(http::field::content_type, answer_.content_type);
            res.body() = answer_.body;
            bool keep_alive = req.keep_alive() && !answer_.close_each;
            res.keep_alive(keep_alive);
            res.prepare_payload();
            http::write(stream, res, ec);
            if (ec || !keep_alive) break;
        }
    }

    Answer answer_;
    boost::asio::io_context ioc_;
    std::optional<boost::asio::ssl::context> ctx_;
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> failed_{0};
};

// HTTPS: FixedAnswerServer(cert, key).
using TlsServer = FixedAnswerServer;

}  // namespace prefsync::testing
