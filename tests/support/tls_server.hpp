#pragma once
// A minimal HTTPS server for client TLS tests: serves 127.0.0.1:0 with the test certificate
// (tests/data/tls), answers every request 200 {"ok":true}, keep-alive, on a thread of its own.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <atomic>
#include <string>
#include <thread>

namespace prefsync::testing {

class TlsServer {
public:
    TlsServer(const std::string& cert, const std::string& key) : ctx_(boost::asio::ssl::context::tls_server) {
        ctx_.use_certificate_chain_file(cert);
        ctx_.use_private_key_file(key, boost::asio::ssl::context::pem);
        acceptor_.open(boost::asio::ip::tcp::v4());
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        thread_ = std::thread([this] { serve(); });
    }
    ~TlsServer() {
        stop_ = true;
        boost::system::error_code ec;
        // Wake the blocking accept with a throwaway connection.
        boost::asio::ip::tcp::socket poke(ioc_);
        poke.connect(acceptor_.local_endpoint(), ec);
        thread_.join();
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }
    int handshakes_failed() const { return failed_; }

private:
    void serve() {
        namespace http = boost::beast::http;
        while (!stop_) {
            boost::asio::ip::tcp::socket socket(ioc_);
            boost::system::error_code ec;
            acceptor_.accept(socket, ec);
            if (ec || stop_) continue;
            boost::beast::ssl_stream<boost::beast::tcp_stream> stream(std::move(socket), ctx_);
            boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
            stream.handshake(boost::asio::ssl::stream_base::server, ec);
            if (ec) {
                ++failed_;
                continue;
            }
            boost::beast::flat_buffer buffer;
            for (;;) {
                http::request<http::string_body> req;
                http::read(stream, buffer, req, ec);
                if (ec) break;
                http::response<http::string_body> res{http::status::ok, 11};
                res.set(http::field::content_type, "application/json");
                res.body() = R"({"ok":true})";
                res.keep_alive(req.keep_alive());
                res.prepare_payload();
                http::write(stream, res, ec);
                if (ec || !req.keep_alive()) break;
            }
        }
    }

    boost::asio::io_context ioc_;
    boost::asio::ssl::context ctx_;
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<int> failed_{0};
};

}  // namespace prefsync::testing
