#include "daemon/http/http_pool.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace prefsync::http {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
// The loop's io_context's own executor, not the type-erased any_io_executor the defaults
// use: every operation copied, compared and destroyed one (a few % of a request's CPU).
using Executor = net::io_context::executor_type;
using TcpStream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Timer =
    net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>, Executor>;

// An answer as the pool needs it: the status, the body and Retry-After. Beast's
// response_parser keeps every header field (an allocation each, five for a small 202) that
// nothing here reads; this parser keeps what it is told and lets Beast's basic_parser do
// the parsing, limits and keep-alive rules as before.
class AnswerParser final : public bhttp::basic_parser<false> {
public:
    int status = 0;
    std::string body;
    std::string retry_after;

private:
    bool retry_after_seen_ = false;

    void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int, beast::error_code&) override {}
    void on_response_impl(int code, beast::string_view, int, beast::error_code&) override { status = code; }
    void on_field_impl(bhttp::field name, beast::string_view, beast::string_view value, beast::error_code&) override {
        // The first, as message[field] would have answered.
        if (name == bhttp::field::retry_after && !retry_after_seen_) {
            retry_after_seen_ = true;
            retry_after.assign(value.data(), value.size());
        }
    }
    void on_header_impl(beast::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
        // Within body_limit: basic_parser refuses a longer Content-Length before this.
        if (length) body.reserve(static_cast<std::size_t>(*length));
    }
    std::size_t on_body_impl(beast::string_view part, beast::error_code&) override {
        body.append(part.data(), part.size());
        return part.size();
    }
    void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view part, beast::error_code&) override {
        body.append(part.data(), part.size());
        return part.size();
    }
    void on_finish_impl(beast::error_code&) override {}
};

struct Pending {
    api::ApiRequest request;
    std::string authorization;
    ResponseHandler done;
};

class Connection;

constexpr std::size_t kReadRoom = 16 << 10;

struct HttpPool::Impl : std::enable_shared_from_this<HttpPool::Impl> {
    net::io_context& ioc;
    config::HttpConfig config;
    api::BaseUrl base;
    std::string user_agent;
    std::optional<ssl::context> tls;
    tcp::resolver resolver;
    // The server's addresses: one lookup serves every connection opened while it runs, and
    // its result the connections opened for a minute after. Each connection looking the name
    // up itself was, for 512 connections opening at once, 512 lookups one after another on
    // the resolver's one thread (and as many DNS queries). A connection that cannot connect
    // drops them, so the next one looks the name up again (a server that moved), unless a
    // newer lookup replaced them meanwhile (each lookup's addresses have its number).
    using Addresses = tcp::resolver::results_type;
    using LookupDone = std::function<void(beast::error_code, const Addresses&, std::uint64_t lookup)>;
    std::optional<Addresses> addresses;
    std::uint64_t addresses_lookup = 0;  // the number of the lookup that found `addresses`
    std::chrono::steady_clock::time_point looked_up_at;
    std::vector<LookupDone> awaiting_lookup;
    std::vector<std::shared_ptr<Connection>> connections;  // never shrinks: `idle` points into it
    // The connections not busy, the last to finish on top: a request takes one in O(1) (a scan
    // of 512 connections for a free one cost a cache miss each), and the most recently used
    // goes first, which leaves the others idle long enough for their idle timeout to close them.
    std::vector<Connection*> idle;
    std::deque<Pending> queue;
    PoolStats stats;
    bool closed = false;

    // The Host header: the port too when it is not the scheme's (RFC 9110, 7.2).
    std::string host_header;
    // What follows every request's target, the same for the pool's life: the protocol, Host
    // and User-Agent, written once here rather than in four appends per request; and whether
    // it is free of line breaks (Connection::write's header guard, checked once).
    std::string fixed_headers;
    bool fixed_headers_safe = true;

    Impl(net::io_context& io, const config::HttpConfig& c, api::BaseUrl b, std::string ua)
        : ioc(io), config(c), base(std::move(b)), user_agent(std::move(ua)), resolver(io) {
        bool default_port = base.port == (base.scheme == "https" ? "443" : "80");
        host_header = default_port ? base.host : base.host + ":" + base.port;
        fixed_headers = " HTTP/1.1\r\nHost: " + host_header + "\r\nUser-Agent: " + user_agent;
        for (std::string_view v : {std::string_view(host_header), std::string_view(user_agent)})
            if (v.find('\n') != std::string_view::npos || v.find('\r') != std::string_view::npos)
                fixed_headers_safe = false;
    }

    void pump();
    // Calls `done` with the server's addresses (or the lookup's error) and the lookup's
    // number, never before it returns.
    void lookup(LookupDone done);
    // A connection to the addresses of lookup `n` failed: they are not used again.
    void forget_addresses(std::uint64_t n) {
        if (n == addresses_lookup) addresses.reset();
    }
};

// How long the addresses of a lookup are used for new connections.
constexpr std::chrono::seconds kAddressesKept{60};

void HttpPool::Impl::lookup(LookupDone done) {
    if (addresses && std::chrono::steady_clock::now() - looked_up_at < kAddressesKept) {
        net::post(ioc, [self = shared_from_this(), done = std::move(done), a = *addresses, n = addresses_lookup] {
            done({}, a, n);
        });
        return;
    }
    awaiting_lookup.push_back(std::move(done));
    if (awaiting_lookup.size() > 1) return;  // the lookup under way answers this one too
    auto n = ++stats.lookups;
    resolver.async_resolve(base.address, base.port,
                           [self = shared_from_this(), n](beast::error_code ec, Addresses found) {
                               if (!ec) {
                                   self->addresses = found;
                                   self->addresses_lookup = n;
                                   self->looked_up_at = std::chrono::steady_clock::now();
                               }
                               for (auto& waiting : std::exchange(self->awaiting_lookup, {})) waiting(ec, found, n);
                           });
}

// One keep-alive connection: connect (and TLS handshake) on first use, then
// write request → read response, again and again until an error or the server closes.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    explicit Connection(HttpPool::Impl& pool) : pool_(pool), idle_timer_(pool.ioc.get_executor()) {}

    void run(Pending p) {
        busy_ = true;
        pending_ = std::move(p);
        started_ = std::chrono::steady_clock::now();
        sent_ = false;
        if (!open_) return connect();
        write();
    }

    // Closes the socket; the stream objects stay until the next connect(): an operation still
    // pending on them (a shut down pool's) completes aborted against a live stream, as a TLS
    // stream's operations hold references into it.
    void close() {
        open_ = false;
        closed_ = true;
        beast::error_code ec;
        if (tls_) beast::get_lowest_layer(*tls_).socket().close(ec);
        if (plain_) plain_->socket().close(ec);
        idle_timer_.cancel();
    }

private:
    // Closed while connecting (the pool shut down): the request ends, not sent, and the
    // handler goes no further.
    bool abandoned() {
        if (!closed_) return false;
        finish_error(api::Transport::NotSent, "shut down");
        return true;
    }
    TcpStream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }

    template <class Fn>
    void with_stream(Fn&& fn) {
        if (tls_)
            fn(*tls_);
        else
            fn(*plain_);
    }

    void connect() {
        // A connection is made only by an idle Connection: nothing is pending on the old
        // streams. What the old connection left unread (the rest of an answer over
        // max_response_bytes) is not the start of the new one's first answer.
        tls_.reset();
        plain_.reset();
        buffer_.consume(buffer_.size());
        closed_ = false;
        if (pool_.tls) {
            tls_.emplace(pool_.ioc.get_executor(), *pool_.tls);
            // SNI names a host; an address literal is not sent (RFC 6066). Verification checks
            // the certificate's names, or its IP addresses for a literal.
            beast::error_code not_an_address;
            boost::asio::ip::make_address(pool_.base.address, not_an_address);
            if (not_an_address && !SSL_set_tlsext_host_name(tls_->native_handle(), pool_.base.address.c_str()))
                return finish_error(api::Transport::NotSent, "cannot set TLS SNI");
            if (!pool_.config.insecure) tls_->set_verify_callback(ssl::host_name_verification(pool_.base.address));
        } else {
            plain_.emplace(pool_.ioc.get_executor());
        }
        auto self = shared_from_this();
        pool_.lookup([self](beast::error_code ec, const tcp::resolver::results_type& results, std::uint64_t lookup) {
            if (self->abandoned()) return;
            if (ec) return self->finish_error(api::Transport::NotSent, "resolve: " + ec.message());
            self->lowest().expires_after(self->pool_.config.connect_timeout);
            self->lowest().async_connect(results, [self, lookup](beast::error_code ec2, const tcp::endpoint&) {
                if (self->abandoned()) return;
                if (ec2) {
                    self->pool_.forget_addresses(lookup);
                    return self->finish_error(api::Transport::NotSent, "connect: " + ec2.message());
                }
                beast::error_code ignored;
                self->lowest().socket().set_option(tcp::no_delay(true), ignored);
                ++self->pool_.stats.connections_opened;
                if (!self->tls_) {
                    self->open_ = true;
                    return self->write();
                }
                self->lowest().expires_after(self->pool_.config.connect_timeout);
                self->tls_->async_handshake(ssl::stream_base::client, [self](beast::error_code ec3) {
                    if (self->abandoned()) return;
                    if (ec3) return self->finish_error(api::Transport::NotSent, "TLS handshake: " + ec3.message());
                    self->open_ = true;
                    self->write();
                });
            });
        });
    }

    void write() {
        // The request is written as one buffer, reused from request to request: Beast's
        // message, fields and serializer cost an allocation per header, a copy of the body
        // and a chain of buffer views per request (a tenth of a push's CPU), for a request
        // whose shape never changes.
        const auto& r = pending_.request;
        const auto& auth = pending_.authorization;
        bool has_body = !r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH";
        // A line break in a header value would end the header early (and let a value that
        // came from outside add headers of its own).
        auto line_break = [](std::string_view v) {
            // Two find()s: find_first_of() calls memchr once per character of the value
            // (142 calls a request, 3% of a push's instructions).
            return v.find('\n') != std::string_view::npos || v.find('\r') != std::string_view::npos;
        };
        if (!pool_.fixed_headers_safe || line_break(r.method) || line_break(r.target) || line_break(auth) ||
            line_break(r.content_type)) {
            // Secrets are checked when read (config, token endpoint): this is a guard.
            HttpResponse refused;
            refused.error = "a request header contains a line break; not sent";
            return finish(std::move(refused));
        }
        // Literals as string_views: their lengths are known here, not measured per request.
        using namespace std::string_view_literals;
        wire_.clear();
        wire_.append(r.method).append(1, ' ').append(r.target).append(pool_.fixed_headers);
        if (!auth.empty()) wire_.append("\r\nAuthorization: "sv).append(auth);
        wire_.append("\r\nAccept: application/json"sv);
        if (has_body) {
            char length[24];
            auto end = std::to_chars(length, length + sizeof length, r.body.size()).ptr;
            wire_.append("\r\nContent-Type: "sv).append(r.content_type);
            wire_.append("\r\nContent-Length: "sv).append(length, end);
        }
        wire_.append("\r\n\r\n"sv);
        if (has_body) wire_.append(r.body);
        lowest().expires_after(pool_.config.request_timeout);
        auto self = shared_from_this();
        ++pool_.stats.requests_sent;
        with_stream([&](auto& stream) {
            net::async_write(stream, net::buffer(wire_), [self](beast::error_code ec, std::size_t) {
                self->sent_ = true;  // from here on, the server may have acted on it
                if (ec) return self->finish_error(api::Transport::NoAnswer, "write: " + ec.message());
                self->read();
            });
        });
    }

    void read() {
        // Beast reads into what the buffer has room for, and no less than 512 bytes: an empty
        // flat_buffer took a 2.4 KB profile in six recvmsg calls. Room for a typical answer
        // up front makes it one (the pages are touched only as far as answers reach).
        if (buffer_.capacity() < kReadRoom) buffer_.reserve(kReadRoom);
        parser_.emplace();
        parser_->body_limit(pool_.config.max_response_bytes);
        auto self = shared_from_this();
        with_stream([&](auto& stream) {
            bhttp::async_read(stream, buffer_, *parser_, [self](beast::error_code ec, std::size_t) {
                if (ec == bhttp::error::body_limit && self->parser_->is_header_done()) {
                    // The server did answer; its answer will not fit however often it is asked.
                    self->close();
                    HttpResponse out;
                    out.transport = api::Transport::Answered;
                    out.status = self->parser_->status;
                    out.retry_after = std::move(self->parser_->retry_after);  // a 429's still counts
                    out.too_large = true;
                    out.error = "the answer is larger than http.max_response_bytes (" +
                                std::to_string(self->pool_.config.max_response_bytes) + " bytes)";
                    return self->finish(std::move(out));
                }
                if (ec) return self->finish_error(api::Transport::NoAnswer, "read: " + ec.message());
                auto& answer = *self->parser_;
                HttpResponse out;
                out.transport = api::Transport::Answered;
                out.status = answer.status;
                out.body = std::move(answer.body);
                out.retry_after = std::move(answer.retry_after);
                bool keep = answer.keep_alive();
                if (!keep) self->close();
                self->finish(std::move(out));
            });
        });
    }

    void finish_error(api::Transport transport, std::string error) {
        close();
        HttpResponse out;
        // A request that failed on a reused connection before any byte was written was
        // never seen by the server.
        out.transport =
            sent_ ? transport : (transport == api::Transport::NoAnswer ? api::Transport::NotSent : transport);
        out.error = std::move(error);
        finish(std::move(out));
    }

    void finish(HttpResponse out) {
        last_used_ = std::chrono::steady_clock::now();
        out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(last_used_ - started_);
        auto done = std::move(pending_.done);
        pending_ = {};
        busy_ = false;
        pool_.idle.push_back(this);
        --pool_.stats.in_flight;
        arm_idle();
        done(std::move(out));
        pool_.pump();
    }

    // Closes the connection once it was idle for idle_timeout. One wait at a time, which
    // looks again when it ends early (the connection was used meanwhile): re-armed per
    // request, the timer cost a cancellation and a handler for every request.
    void arm_idle() {
        if (!open_ || idle_armed_) return;
        idle_armed_ = true;
        idle_timer_.expires_at(last_used_ + pool_.config.idle_timeout);
        idle_timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
            auto self = weak.lock();
            if (!self) return;
            self->idle_armed_ = false;
            // In use: its finish() arms it again. Closed: nothing to watch (a cancelled wait
            // of a connection opened again meanwhile watches it afresh).
            if (self->busy_ || !self->open_) return;
            if (!ec && std::chrono::steady_clock::now() - self->last_used_ >= self->pool_.config.idle_timeout)
                self->close();
            else
                self->arm_idle();
        });
    }

    HttpPool::Impl& pool_;
    std::optional<TcpStream> plain_;
    std::optional<beast::ssl_stream<TcpStream>> tls_;
    Timer idle_timer_;
    beast::flat_buffer buffer_;
    std::string wire_;  // the request being written
    std::optional<AnswerParser> parser_;
    Pending pending_;
    std::chrono::steady_clock::time_point started_, last_used_;
    bool busy_ = false, open_ = false, sent_ = false, idle_armed_ = false;
    bool closed_ = false;  // close() was called since the last connect(): pending handlers stop
};

void HttpPool::Impl::pump() {
    while (!queue.empty() && !closed) {
        Connection* free = nullptr;
        if (!idle.empty()) {
            free = idle.back();
            idle.pop_back();
        } else if (connections.size() < static_cast<std::size_t>(config.connections)) {
            free = connections.emplace_back(std::make_shared<Connection>(*this)).get();
        }
        if (!free) return;
        Pending p = std::move(queue.front());
        queue.pop_front();
        --stats.queued;
        ++stats.in_flight;
        free->run(std::move(p));
    }
}

HttpPool::HttpPool(net::io_context& ioc, const config::HttpConfig& config, api::BaseUrl base, std::string user_agent)
    : impl_(std::make_shared<Impl>(ioc, config, std::move(base), std::move(user_agent))) {
    if (impl_->base.scheme == "https") {
        impl_->tls.emplace(ssl::context::tls_client);
        auto& ctx = *impl_->tls;
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        if (config.insecure) {
            ctx.set_verify_mode(ssl::verify_none);
        } else {
            ctx.set_verify_mode(ssl::verify_peer);
            ctx.set_default_verify_paths();
            if (!config.ca_file.empty()) {
                boost::system::error_code ec;
                ctx.load_verify_file(config.ca_file, ec);
                if (ec) throw std::runtime_error("http.ca_file " + config.ca_file + ": " + ec.message());
            }
        }
    }
}

HttpPool::~HttpPool() {
    shutdown();
}

void HttpPool::send(api::ApiRequest request, std::string authorization, ResponseHandler done) {
    if (impl_->closed) {
        HttpResponse out;
        out.error = "the pool is shut down";
        done(std::move(out));
        return;
    }
    impl_->queue.push_back({std::move(request), std::move(authorization), std::move(done)});
    ++impl_->stats.queued;
    impl_->pump();
}

PoolStats HttpPool::stats() const {
    return impl_->stats;
}

void HttpPool::shutdown() {
    if (impl_->closed) return;
    impl_->closed = true;
    impl_->resolver.cancel();
    for (auto& c : impl_->connections) c->close();
    auto queue = std::move(impl_->queue);
    impl_->queue.clear();
    for (auto& p : queue) {
        HttpResponse out;
        out.error = "shut down before sending";
        p.done(std::move(out));
    }
}

}  // namespace prefsync::http
