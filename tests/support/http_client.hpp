#pragma once
// A small synchronous HTTP/1.1 client for tests (Boost.Beast), keeping one connection alive
// across requests and reconnecting when the server closed it.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <string>

namespace prefsync::testing {

struct HttpResult {
    int status = 0;  // 0: no response (connection reset or closed)
    std::string body;
    std::string retry_after;
    boost::beast::error_code error;

    boost::json::value json() const { return boost::json::parse(body); }
};

class HttpClient {
public:
    explicit HttpClient(unsigned short port, std::string token = "emulator-token")
        : port_(port), token_(std::move(token)) {}

    HttpResult request(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::string& content_type = "application/json",
                       std::optional<std::string> authorization = std::nullopt) {
        namespace http = boost::beast::http;
        HttpResult out;
        if (!stream_) {
            stream_.emplace(*ioc_);
            boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port_);
            stream_->connect(ep, out.error);
            if (out.error) {
                stream_.reset();
                return out;
            }
        }
        http::request<http::string_body> req{http::string_to_verb(method), target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::authorization, authorization.value_or(token_));
        if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
            req.set(http::field::content_type, content_type);
            req.body() = body;
        }
        req.keep_alive(true);
        req.prepare_payload();
        http::write(*stream_, req, out.error);
        // Even when the write failed (a server refusing a large body stops reading), the
        // server may have answered: read what it said.
        boost::beast::flat_buffer buffer;
        http::response<http::string_body> res;
        boost::beast::error_code read_error;
        http::read(*stream_, buffer, res, read_error);
        if (!read_error)
            out.error = {};
        else if (!out.error)
            out.error = read_error;
        if (out.error) {
            stream_.reset();
            return out;
        }
        out.status = static_cast<int>(res.result_int());
        out.body = res.body();
        out.retry_after = std::string(res[http::field::retry_after]);
        if (!res.keep_alive()) stream_.reset();
        return out;
    }

    HttpResult get(const std::string& target) { return request("GET", target); }
    HttpResult post(const std::string& target, const boost::json::value& body) {
        return request("POST", target, boost::json::serialize(body));
    }
    void disconnect() { stream_.reset(); }

private:
    std::unique_ptr<boost::asio::io_context> ioc_ = std::make_unique<boost::asio::io_context>();
    unsigned short port_;
    std::string token_;
    std::optional<boost::beast::tcp_stream> stream_;
};

}  // namespace prefsync::testing
