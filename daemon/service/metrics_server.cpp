#include "daemon/service/metrics_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

#include "config/config.hpp"

namespace prefsync::service {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct MetricsServer::Impl {
    net::io_context ioc;
    tcp::acceptor acceptor{ioc};
    Metrics& metrics;
    std::string journal_path;
    std::unique_ptr<journal::Journal> journal;  // opened on the server thread's first scrape
    std::function<std::string()> health;

    Impl(Metrics& m, std::string path, std::function<std::string()> h)
        : metrics(m), journal_path(std::move(path)), health(std::move(h)) {}

    void accept() {
        acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
            if (ec) return;
            serve(std::move(socket));
            accept();
        });
    }

    // One request per connection (scrapers and health checks open a connection each time).
    void serve(tcp::socket socket) {
        auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
        auto buffer = std::make_shared<beast::flat_buffer>();
        auto request = std::make_shared<http::request<http::string_body>>();
        stream->expires_after(std::chrono::seconds(10));
        http::async_read(
            *stream, *buffer, *request, [this, stream, buffer, request](beast::error_code ec, std::size_t) {
                if (ec) return;
                auto response = std::make_shared<http::response<http::string_body>>();
                response->version(request->version());
                response->keep_alive(false);
                std::string target(request->target());
                if (target == "/metrics") {
                    try {
                        if (!journal) journal = std::make_unique<journal::Journal>(journal_path);
                        response->body() = metrics.render(*journal, journal->updates.jobs());
                        response->result(http::status::ok);
                        response->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                    } catch (const std::exception& e) {
                        response->result(http::status::internal_server_error);
                        response->body() = std::string(e.what()) + "\n";
                    }
                } else if (target == "/healthz") {
                    auto body = health();
                    response->result(body.starts_with("ok") ? http::status::ok : http::status::service_unavailable);
                    response->body() = body + "\n";
                    response->set(http::field::content_type, "text/plain");
                } else {
                    response->result(http::status::not_found);
                    response->body() = "/metrics or /healthz\n";
                }
                response->prepare_payload();
                http::async_write(*stream, *response, [stream, response](beast::error_code, std::size_t) {
                    beast::error_code ignored;
                    stream->socket().shutdown(tcp::socket::shutdown_send, ignored);
                });
            });
    }
};

MetricsServer::MetricsServer(const std::string& listen, Metrics& metrics, std::string journal_path,
                             std::function<std::string()> health)
    : impl_(std::make_unique<Impl>(metrics, std::move(journal_path), std::move(health))) {
    auto colon = listen.rfind(':');
    auto host = listen.substr(0, colon);
    if (host == "localhost") host = "127.0.0.1";
    if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
    // config::parse_config has checked both; a caller that did not gets an error, not a
    // port truncated to 16 bits.
    auto port =
        colon == std::string::npos ? std::nullopt : config::parse_port(std::string_view(listen).substr(colon + 1));
    if (!port)
        throw std::runtime_error("daemon.metrics_listen " + listen + ": the port is not a number from 0 to 65535");
    beast::error_code address_ec;
    auto address = net::ip::make_address(host, address_ec);
    if (address_ec) throw std::runtime_error("daemon.metrics_listen " + listen + ": " + address_ec.message());
    tcp::endpoint endpoint(address, *port);
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(net::socket_base::reuse_address(true));
    beast::error_code ec;
    impl_->acceptor.bind(endpoint, ec);
    if (ec) throw std::runtime_error("daemon.metrics_listen " + listen + ": " + ec.message());
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    impl_->accept();
    thread_ = std::thread([this] { impl_->ioc.run(); });
}

MetricsServer::~MetricsServer() {
    impl_->ioc.stop();
    thread_.join();
}

}  // namespace prefsync::service
