#include "daemon/emulator/server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url.hpp>
#include <cstdio>
#include <array>
#include <deque>
#include <map>
#include <mutex>

namespace prefsync::emulator {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// Counters the admin API reports. One mutex; never held across I/O.
struct Stats {
    std::mutex mutex;
    std::uint64_t requests = 0;
    std::map<std::string, std::map<int, std::uint64_t>> by_endpoint;
    std::map<int, std::uint64_t> by_status;
    std::map<std::string, std::uint64_t> faults;
    std::deque<SteadyClock::time_point> window;  // API requests in the last second
    std::size_t peak_rps = 0;
    int open_connections = 0, peak_connections = 0;
    std::uint64_t connections_total = 0;
    int in_flight = 0, peak_in_flight = 0;

    json::object to_json() {
        std::lock_guard lock(mutex);
        json::object endpoints;
        for (auto& [name, statuses] : by_endpoint) {
            json::object s;
            for (auto& [status, n] : statuses) s[std::to_string(status)] = n;
            endpoints[name] = std::move(s);
        }
        json::object statuses;
        for (auto& [status, n] : by_status) statuses[std::to_string(status)] = n;
        json::object f;
        for (auto& [name, n] : faults) f[name] = n;
        return {{"requests", requests},
                {"by_endpoint", std::move(endpoints)},
                {"by_status", std::move(statuses)},
                {"faults", std::move(f)},
                {"peak_rps", peak_rps},
                {"open_connections", open_connections},
                {"peak_connections", peak_connections},
                {"connections_total", connections_total},
                {"in_flight", in_flight},
                {"peak_in_flight", peak_in_flight}};
    }
    void reset() {
        std::lock_guard lock(mutex);
        requests = 0;
        by_endpoint.clear();
        by_status.clear();
        faults.clear();
        window.clear();
        peak_rps = 0;
        peak_connections = open_connections;
        connections_total = static_cast<std::uint64_t>(open_connections);
        peak_in_flight = in_flight;
    }
};

struct Server::Impl {
    EmulatorApi& api;
    ProfileStore& store;
    FaultInjector& faults;
    ServerOptions options;
    net::io_context ioc;
    tcp::acceptor acceptor{ioc};
    std::vector<std::thread> threads;
    Stats stats;
    std::mutex log_mutex;
    std::FILE* log = nullptr;
    std::atomic<std::uint64_t> next_connection{1};
    bool started = false;

    Impl(EmulatorApi& a, ProfileStore& s, FaultInjector& f, ServerOptions o)
        : api(a), store(s), faults(f), options(std::move(o)) {}

    void accept();
    void count(const std::string& endpoint, int status) {
        std::lock_guard lock(stats.mutex);
        ++stats.by_endpoint[endpoint][status];
        ++stats.by_status[status];
    }
    void count_fault(const char* name) {
        std::lock_guard lock(stats.mutex);
        ++stats.faults[name];
    }
    void note_request() {
        auto now = SteadyClock::now();
        std::lock_guard lock(stats.mutex);
        ++stats.requests;
        while (!stats.window.empty() && now - stats.window.front() >= std::chrono::seconds(1)) stats.window.pop_front();
        stats.window.push_back(now);
        stats.peak_rps = std::max(stats.peak_rps, stats.window.size());
    }
    // One JSON line per request, answered or not (status 0), so a test can count what reached
    // the server per endpoint and per alternate id, faults included.
    void log_request(const HttpRequest& request, bool admin_request, int status, std::size_t bytes,
                     std::uint64_t connection, const char* fault) {
        if (!log) return;
        auto now =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        auto info = admin_request ? RequestInfo{"admin", {}} : api.describe(request);
        json::object line{
            {"t_ms", now},      {"method", request.method}, {"target", request.target}, {"endpoint", info.endpoint},
            {"status", status}, {"bytes", bytes},           {"connection", connection}};
        if (!info.alternate_id.id.empty()) {
            line["alternate_id_type"] = info.alternate_id.type;
            line["alternate_id"] = info.alternate_id.id;
        }
        if (fault) line["fault"] = fault;
        if (options.log_bodies && !request.body.empty()) line["body"] = request.body;
        auto text = json::serialize(line);
        std::lock_guard lock(log_mutex);
        std::fprintf(log, "%s\n", text.c_str());
        std::fflush(log);
    }
    std::pair<int, std::string> admin(const std::string& method, const std::string& path, const std::string& body);
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, Server::Impl& server)
        : stream_(std::move(socket)), timer_(stream_.get_executor()), server_(server), id_(server.next_connection++) {}

    void start() {
        {
            std::lock_guard lock(server_.stats.mutex);
            ++server_.stats.connections_total;
            server_.stats.peak_connections = std::max(server_.stats.peak_connections, ++server_.stats.open_connections);
        }
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
    }

    ~Session() {
        std::lock_guard lock(server_.stats.mutex);
        --server_.stats.open_connections;
    }

private:
    void read() {
        parser_.emplace();
        parser_->body_limit(server_.options.body_limit);
        stream_.expires_after(server_.options.idle_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::body_limit) {
            // The header was read: the log names the request refused.
            current_ = {};
            current_.method = std::string(parser_->get().method_string());
            current_.target = std::string(parser_->get().target());
            begin();
            drain_after_reply_ = true;
            reply(413, R"({"Message":"request body too large"})", "too-large", false);
            return;
        }
        if (ec) return close();
        request_ = parser_->release();
        current_.method = std::string(request_.method_string());
        current_.target = std::string(request_.target());
        current_.authorization = std::string(request_[http::field::authorization]);
        current_.content_type = std::string(request_[http::field::content_type]);
        current_.body = std::move(request_.body());
        begin();
        if (current_.target.starts_with("/__admin/")) {
            auto [status, body] = server_.admin(current_.method, current_.target, current_.body);
            reply(status, body, "admin", request_.keep_alive());
            return;
        }
        server_.note_request();
        auto fault = server_.faults.decide(SteadyClock::now(), current_.target);
        switch (fault) {
            case Fault::Outage: return unanswered("outage");
            case Fault::Reset: return unanswered("reset");
            case Fault::RateLimited:
            case Fault::Throttled:
            case Fault::RowThrottled:
                return refuse(fault, 429, R"({"Message":"rate limit exceeded"})", "rate-limited", "429");
            case Fault::Forbidden:
                return refuse(fault, 403, R"j({"Message":"forbidden (injected)"})j", "forbidden", "403");
            case Fault::Unavailable:
                return refuse(fault, 503, R"j({"Message":"service unavailable (injected)"})j", "unavailable", "503");
            case Fault::OutageUnavailable:
                return refuse(fault, 503, R"j({"Message":"service unavailable (outage)"})j", "outage", "outage");
            case Fault::None: break;
        }
        auto latency = server_.faults.latency();
        if (latency.count() > 0) {
            timer_.expires_after(latency);
            timer_.async_wait([self = shared_from_this()](beast::error_code e) {
                if (!e) self->process();
            });
        } else {
            process();
        }
    }

    void process() {
        auto config = server_.faults.config();
        HttpResponse response = server_.api.handle(
            current_, Semantics{config.accept_duplicates, config.patch_test_status, config.stamp_elements});
        bool write = current_.method != "GET" && current_.method != "HEAD";
        if (write && response.status < 300 && server_.faults.ambiguous()) {
            // Applied, then never answered or answered as failed: the client cannot know
            // whether its write landed.
            if (config.ambiguous_status != 0) {
                server_.count_fault("ambiguous");
                fault_ = "ambiguous";
                return reply(config.ambiguous_status, R"j({"Message":"server error after applying (injected)"})j",
                             response.endpoint, request_.keep_alive());
            }
            server_.count(response.endpoint, 0);
            return unanswered("ambiguous");
        }
        auto slow = server_.faults.slow();
        if (slow.count() > 0) {
            pending_ = std::move(response);
            timer_.expires_after(slow);
            timer_.async_wait([self = shared_from_this()](beast::error_code e) {
                if (!e)
                    self->reply(self->pending_.status, self->pending_.body, self->pending_.endpoint,
                                self->request_.keep_alive());
            });
            return;
        }
        reply(response.status, response.body, response.endpoint, request_.keep_alive());
    }

    void begin() {
        std::lock_guard lock(server_.stats.mutex);
        server_.stats.peak_in_flight = std::max(server_.stats.peak_in_flight, ++server_.stats.in_flight);
        in_request_ = true;
    }
    void end() {
        if (!in_request_) return;
        in_request_ = false;
        std::lock_guard lock(server_.stats.mutex);
        --server_.stats.in_flight;
    }

    // Answers an injected fault instead of handling the request. A rate limit's 429 always
    // carries a Retry-After; an injected 429 or 503 only when one is configured, as servers
    // differ.
    void refuse(Fault fault, int status, const char* body, const char* endpoint, const char* name) {
        server_.count_fault(name);
        fault_ = name;
        int seconds = server_.faults.retry_after_seconds(fault);
        if (fault == Fault::RateLimited || seconds > 0) retry_after_ = seconds;
        reply(status, body, endpoint, request_.keep_alive());
    }

    // Drops the connection with the request unanswered.
    void unanswered(const char* name) {
        server_.count_fault(name);
        server_.log_request(current_, false, 0, 0, id_, name);
        reset();
    }

    void reply(int status, const std::string& body, const std::string& endpoint, bool keep_alive) {
        if (endpoint != "admin") server_.count(endpoint, status);
        server_.log_request(current_, endpoint == "admin", status, body.size(), id_, fault_);
        fault_ = nullptr;
        // An idle keep-alive connection holds no request body.
        std::string().swap(current_.body);
        response_ = {};
        response_.version(11);
        response_.result(static_cast<unsigned>(status));
        response_.set(http::field::server, "prefsync-emulator");
        if (!body.empty()) response_.set(http::field::content_type, "application/json; charset=utf-8");
        if (retry_after_) response_.set(http::field::retry_after, std::to_string(*retry_after_));
        retry_after_.reset();
        response_.body() = body;
        if (keep_alive && endpoint != "admin" && server_.faults.close_after()) {
            server_.count_fault("close");
            keep_alive = false;
        }
        response_.keep_alive(keep_alive);
        response_.prepare_payload();
        stream_.expires_after(server_.options.idle_timeout);
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            self->end();
            if (!ec && self->drain_after_reply_) return self->drain();
            if (ec || !self->response_.keep_alive()) return self->close();
            self->read();
        });
    }

    // An abrupt close (RST): what a client sees when a server or a proxy drops it.
    void reset() {
        end();
        beast::error_code ec;
        stream_.socket().set_option(net::socket_base::linger(true, 0), ec);
        stream_.socket().close(ec);
    }

    // After refusing a body mid-upload: stop sending, swallow what the client still sends
    // (bounded in time), then close, so the client reads the 413 instead of a reset.
    void drain() {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.expires_after(std::chrono::seconds(2));
        stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code e, std::size_t) {
            if (e) return self->close();
            self->drain();
        });
    }

    void close() {
        end();
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.socket().close(ec);
    }

    beast::tcp_stream stream_;
    net::steady_timer timer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::request<http::string_body> request_;
    HttpRequest current_;  // request_ as the API takes it (its body moved here)
    http::response<http::string_body> response_;
    HttpResponse pending_;
    Server::Impl& server_;
    std::uint64_t id_;
    std::optional<int> retry_after_;  // for the answer being written
    const char* fault_ = nullptr;     // the fault that answer is, for the log
    bool in_request_ = false;
    bool drain_after_reply_ = false;
    std::array<char, 16384> discard_{};
};

}  // namespace

std::pair<int, std::string> Server::Impl::admin(const std::string& method, const std::string& target,
                                                const std::string& body) {
    auto path = target.substr(0, target.find('?'));
    auto error = [](int status, const std::string& message) {
        return std::pair{status, json::serialize(json::object{{"Message", message}})};
    };
    if (path == "/__admin/state" && method == "GET")
        return {200, json::serialize(json::object{{"profiles", store.dump()}})};
    if (path == "/__admin/stats" && method == "GET") return {200, json::serialize(stats.to_json())};
    if (path == "/__admin/alternate-ids" && method == "GET") {
        // ?alternateIdType=&alternateId= narrows the list to that one id.
        std::optional<AltId> only;
        if (auto url = boost::urls::parse_origin_form(target)) {
            AltId alt;
            for (auto p : url->params(boost::urls::encoding_opts(true))) {  // '+' is a space, as ASP.NET reads it
                if (p.key == "alternateIdType") alt.type = p.value;
                if (p.key == "alternateId") alt.id = p.value;
            }
            if (!alt.type.empty() || !alt.id.empty()) only = alt;
        }
        auto ids = store.alternate_ids(only);
        auto duplicated = std::count_if(ids.begin(), ids.end(),
                                        [](const json::value& a) { return a.at("ProfileIds").as_array().size() > 1; });
        return {200, json::serialize(json::object{{"alternate_ids", std::move(ids)}, {"duplicated", duplicated}})};
    }
    if (path == "/__admin/reset" && method == "POST") {
        store.reset();
        stats.reset();
        return {200, R"({"reset":true})"};
    }
    if (path == "/__admin/faults") {
        if (method == "GET") {
            auto j = faults.config().to_json();
            j["processing_delay_ms"] = store.processing_delay().count();
            return {200, json::serialize(j)};
        }
        if (method != "POST" && method != "PUT") return error(405, "use GET or POST");
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        if (ec || !v.is_object()) return error(400, "expected a JSON object of faults");
        auto& o = v.as_object();
        if (auto* d = o.if_contains("processing_delay_ms")) {
            if (!d->is_int64() || d->as_int64() < 0) return error(400, "processing_delay_ms: expected a whole number");
            store.set_processing_delay(std::chrono::milliseconds(d->as_int64()));
            o.erase("processing_delay_ms");
        }
        if (auto problem = faults.configure(o, SteadyClock::now())) return error(400, *problem);
        return {200, json::serialize(faults.config().to_json())};
    }
    return error(404, "admin endpoints: GET state, GET stats, GET alternate-ids, POST reset, GET/POST faults");
}

void Server::Impl::accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec) {
            if (ec == net::error::operation_aborted) return;
        } else {
            socket.set_option(tcp::no_delay(true), ec);
            std::make_shared<Session>(std::move(socket), *this)->start();
        }
        accept();
    });
}

Server::Server(EmulatorApi& api, ProfileStore& store, FaultInjector& faults, ServerOptions options)
    : impl_(std::make_unique<Impl>(api, store, faults, std::move(options))) {
    auto& i = *impl_;
    tcp::endpoint endpoint(net::ip::make_address(i.options.host), i.options.port);
    i.acceptor.open(endpoint.protocol());
    i.acceptor.set_option(net::socket_base::reuse_address(true));
    i.acceptor.bind(endpoint);
    i.acceptor.listen(net::socket_base::max_listen_connections);
    if (!i.options.request_log.empty()) {
        i.log = std::fopen(i.options.request_log.c_str(), "a");
        if (!i.log) throw std::runtime_error("cannot open the request log " + i.options.request_log);
    }
}

Server::~Server() {
    stop();
    if (impl_->log) std::fclose(impl_->log);
}

std::uint16_t Server::port() const {
    return impl_->acceptor.local_endpoint().port();
}

std::uint64_t Server::requests() const {
    std::lock_guard lock(impl_->stats.mutex);
    return static_cast<std::uint64_t>(impl_->stats.requests);
}

net::io_context& Server::io_context() {
    return impl_->ioc;
}

void Server::start() {
    auto& i = *impl_;
    if (i.started) return;
    i.started = true;
    i.accept();
    for (int t = 0; t < std::max(1, i.options.threads); ++t) i.threads.emplace_back([&i] { i.ioc.run(); });
}

void Server::stop() {
    auto& i = *impl_;
    if (!i.started) return;
    i.started = false;
    net::post(i.ioc, [&i] {
        beast::error_code ec;
        i.acceptor.close(ec);
    });
    i.ioc.stop();
    for (auto& t : i.threads) t.join();
    i.threads.clear();
}

}  // namespace prefsync::emulator
