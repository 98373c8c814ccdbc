#include "daemon/sync/push_run.hpp"

#include <boost/asio.hpp>
#include <cstdio>
#include <algorithm>
#include <deque>
#include <unistd.h>

#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "daemon/api/outcome.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/http/http_pool.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/sync/dispatch_support.hpp"
#include "daemon/base/log.hpp"
#include "daemon/sync/oauth_token.hpp"
#include "daemon/sync/rate_limiter.hpp"
#include "daemon/sync/shared_tokens.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::sync {
namespace {

namespace net = boost::asio;
using journal::Millis;

using base::now_ms;

// Phase 1: source → mapper → journal, in transactions of a thousand rows. An incremental
// source's position is stored in the same transaction as the rows read up to it, so the
// watermark never runs ahead of what is journaled. A source that fails mid-way (a lost
// database connection) ends the reading, not the run: what was journaled is still sent.
void enqueue_all(const config::JobConfig& job, journal::Journal& journal, bool force,
                 std::optional<std::int64_t> backfill_run, PushReport& report) {
    auto source_identity = connectors::position_identity(job.source);
    std::optional<connectors::Position> since;
    // A backfill reads everything; a sync only what is past the watermark.
    if (job.source.incremental && !force)
        if (auto mark = journal.watermark(job.name, source_identity)) since = connectors::Position{mark->value, mark->key};
    auto source = connectors::open_source(job.source, since);
    auto mapper = mapping::Mapper::compile(job, source->columns());
    connectors::RejectFile rejects(job.source.reject_file, job.name);
    std::vector<connectors::Row> rows;
    while (true) {
        try {
            if (!source->next_batch(rows, 1000)) break;
        } catch (const connectors::SourceError& e) {
            report.source_error = e.what();
            break;
        }
        journal::Journal::Transaction tx(journal);
        auto now = now_ms();
        for (const auto& row : rows) {
            ++report.read;
            if (row.rejected()) {
                ++report.rejected;
                rejects.write(row.origin, row.error, row.raw);
                continue;
            }
            auto result = mapper.map(row);
            if (auto* err = std::get_if<mapping::RowError>(&result)) {
                ++report.rejected;
                rejects.write(row.origin, err->key_path + ": " + err->message, row.raw);
                continue;
            }
            auto& m = std::get<mapping::MappedRow>(result);
            journal::NewUpdate u;
            u.identity = m.identity.key();
            u.alt_type = m.identity.alternate_id_type;
            u.alt_id = m.identity.alternate_id;
            u.profile_id = m.identity.profile_id;
            u.origin = row.origin;
            u.body = std::move(m.body);
            u.hash = std::move(m.hash);
            switch (journal.enqueue(job.name, u, now, force, backfill_run)) {
                case journal::EnqueueResult::Queued: ++report.queued; break;
                case journal::EnqueueResult::Unchanged: ++report.unchanged; break;
                case journal::EnqueueResult::AlreadyPending:
                case journal::EnqueueResult::AlreadyInRun: break;
            }
        }
        if (auto position = source->position())
            journal.set_watermark(job.name, source_identity, {position->value, position->key}, now);
        // Rejects first: a row is in the reject file before the watermark moves past it.
        rejects.flush();
        tx.commit();
    }
    rejects.flush();
    if (report.rejected > 0)
        std::fprintf(stderr, "%s%lld rejected row(s) written to %s\n", base::priority_prefix(base::Priority::Warning), static_cast<long long>(report.rejected),
                     rejects.path().c_str());
}

// Phase 2: journal → rate limiter → HTTP pool → outcomes → journal.
class Dispatcher {
public:
    Dispatcher(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
               const std::string& token, const PushOptions& options, PushReport& report)
        : config_(config), job_(job), journal_(journal), token_(token), options_(options), report_(report),
          builder_(api::parse_base_url(config.api.base_url), config.api.client_id),
          pool_(ioc_, config.http, builder_.base(), options.user_agent),
          limiter_(config.rate_limit.requests_per_second, config.rate_limit.burst, config.rate_limit.adaptive,
                   [] { return SteadyClock::now(); }),
          backoff_(config.retry.base_delay, config.retry.max_delay, static_cast<std::uint64_t>(getpid())),
          tokens_(ioc_, config, token, options.user_agent),
          wake_(ioc_), progress_timer_(ioc_), started_(SteadyClock::now()) {}

    void run() {
        to_send_ = journal_.counts(job_.name).pending();
        net::post(ioc_, [this] { pump(); });
        tick_progress();
        ticker_.start();
        ioc_.run();
        flush();
        tick_observer();
        report_.connections = pool_.stats().connections_opened;
    }

private:
    struct Item {
        journal::ClaimedUpdate update;
        bool sent = false;
    };

    bool stopping() const {
        return !report_.fatal.empty() || (options_.stop && options_.stop->load());
    }

    int max_in_flight() const { return std::max(1, config_.rate_limit.max_in_flight); }

    void pump() {
        if (stopping()) {
            release_local();
            return finish_if_idle();
        }
        if (!tokens_.ready()) return fetch_token();
        while (in_flight_ < max_in_flight()) {
            if (local_.empty()) {
                // Completions still buffered are of rows leased to this run, so claiming
                // before flushing them cannot hand one out twice.
                auto claimed = journal_.claim(job_.name, std::max(256, max_in_flight() * 4), now_ms(), lease_ms());
                for (auto& c : claimed) local_.push_back({std::move(c), false});
                if (local_.empty()) break;
            }
            if (!take_shared_token()) return;
            if (auto wait = limiter_.try_acquire()) {
                schedule_wake(*wait);
                return;
            }
            shared_.use();
            Item item = std::move(local_.front());
            local_.pop_front();
            start(std::move(item));
        }
        if (local_.empty() && in_flight_ == 0) {
            // Nothing claimable now: wait for the next retry, or finish.
            flush();
            auto due = journal_.next_due(job_.name);
            if (!due) return finish_if_idle();
            auto wait = std::chrono::milliseconds(std::max<Millis>(1, *due - now_ms()));
            schedule_wake(wait);
        }
    }

    // OAuth: no request leaves without a current bearer token.
    void fetch_token() {
        if (token_fetching_) return;
        token_fetching_ = true;
        tokens_.refresh([this](const std::string& error, bool fatal) {
            token_fetching_ = false;
            if (error.empty()) return pump();
            if (fatal) {
                report_.fatal = error;
                std::fprintf(stderr, "%serror: aborting the run: %s\n", base::priority_prefix(base::Priority::Error), error.c_str());
                return pump();
            }
            std::fprintf(stderr, "%sToken fetch failed, retrying. error=\"%s\"\n", base::priority_prefix(base::Priority::Warning), error.c_str());
            schedule_wake(backoff_.delay(3));
        });
    }

    // The host-wide bucket in the journal, shared with other prefsync processes. False: wait
    // (a wake-up is scheduled).
    bool take_shared_token() {
        Millis retry_at = 0;
        if (shared_.ready(now_ms(), retry_at)) return true;
        schedule_wake(std::chrono::milliseconds(std::max<Millis>(1, retry_at - now_ms())));
        return false;
    }

    Millis lease_ms() const {
        // Long enough for the slowest request, so a live run never has its rows re-claimed.
        return std::chrono::duration_cast<std::chrono::milliseconds>(config_.http.request_timeout).count() * 2 + 60000;
    }

    void schedule_wake(std::chrono::nanoseconds wait) {
        if (wake_armed_) return;
        wake_armed_ = true;
        wake_.expires_after(wait);
        wake_.async_wait([this](boost::system::error_code ec) {
            wake_armed_ = false;
            if (!ec) pump();
        });
    }

    void finish_if_idle() {
        if (in_flight_ > 0) return;
        flush();
        finished_ = true;
        wake_.cancel();
        progress_timer_.cancel();
        batcher_.cancel();
        ticker_.cancel();
        pool_.shutdown();
        ioc_.stop();
    }

    void release_local() {
        for (auto& item : local_) completions_.push_back({item.update.id, journal::State::Queued, 0, "", 0, false, false, {}});
        local_.clear();
    }

    // What to send for an update, given what is known; may be a lookup first.
    api::ApiRequest request_for(const Item& item, bool& lookup) const {
        const auto& u = item.update;
        lookup = false;
        bool by_alt = !u.alt_type.empty();
        if (u.resolve && by_alt && job_.mode == config::Mode::Create) {
            lookup = true;
            return builder_.get(u.alt_type, u.alt_id, true);
        }
        switch (job_.mode) {
            case config::Mode::Create: return builder_.create(with_alternate_id(u));
            case config::Mode::Upsert: return builder_.upsert(u.alt_type, u.alt_id, u.body);
            case config::Mode::Replace:
                return by_alt ? builder_.replace(u.alt_type, u.alt_id, u.body) : builder_.replace(*u.profile_id, u.body);
            case config::Mode::Update:
            case config::Mode::Delete:
            case config::Mode::Archive:
                if (!u.profile_id) {
                    lookup = true;
                    return builder_.get(u.alt_type, u.alt_id, true);
                }
                if (job_.mode == config::Mode::Update) return builder_.update(*u.profile_id, u.body);
                if (job_.mode == config::Mode::Delete) return builder_.remove(*u.profile_id);
                return builder_.archive(*u.profile_id, u.body);
        }
        return builder_.upsert(u.alt_type, u.alt_id, u.body);
    }

    // W1 needs the alternate id in the body, or a retried create could not be found again.
    static std::string with_alternate_id(const journal::ClaimedUpdate& u) {
        if (u.body.find("\"AlternateIds\"") != std::string::npos || u.alt_type.empty()) return u.body;
        std::string entry = "\"AlternateIds\":[{\"AlternateIdType\":";
        base::append_json_string(entry, u.alt_type);
        entry += ",\"AlternateId\":";
        base::append_json_string(entry, u.alt_id);
        entry += "}]";
        std::string body = u.body;
        if (body == "{}") return "{" + entry + "}";
        body.insert(body.size() - 1, "," + entry);
        return body;
    }

    void start(Item item) {
        bool lookup = false;
        auto request = request_for(item, lookup);
        ++in_flight_;
        ++report_.sent;
        auto op = request.operation;
        int generation = tokens_.generation();
        pool_.send(std::move(request), tokens_.header(),
                   [this, item = std::move(item), lookup, op, generation](http::HttpResponse response) mutable {
                       --in_flight_;
                       if (options_.observer)
                           options_.observer->on_request(api::to_string(lookup ? api::Operation::Read : op),
                                                         response.status, response.elapsed);
                       if (response.status == 401 && !tokens_.refused(generation)) {
                           // An expired or revoked bearer token: fetch a new one and send again.
                           journal::Completion again{item.update.id, journal::State::Retry, 401, "401: token expired",
                                                     now_ms(), false, false, {}};
                           complete(again);
                           return pump();
                       }
                       if (response.status >= 200 && response.status < 300) tokens_.accepted();
                       on_response(std::move(item), lookup, op, std::move(response));
                       pump();
                   });
    }

    void on_response(Item item, bool lookup, api::Operation op, http::HttpResponse r) {
        auto& u = item.update;
        journal::Completion c;
        c.id = u.id;
        c.status = r.status;
        if (lookup) {
            // A lookup by alternate id: to resolve an unknown create, or to learn the profile id.
            if (r.transport == api::Transport::Answered && r.status == 200) {
                auto pid = api::profile_id_of(r.body);
                if (u.resolve && job_.mode == config::Mode::Create) {
                    // The earlier create did land: done, never created twice.
                    c.state = journal::State::Done;
                    c.profile_id = pid;
                    ++report_.done;
                    return complete(c);
                }
                u.profile_id = pid;
                u.resolve = false;
                if (!pid) return fail(c, u, "lookup answered without a ProfileId");
                return start(std::move(item));  // no new token: the lookup was the paced request
            }
            if (r.transport == api::Transport::Answered && r.status == 404) {
                if (u.resolve && job_.mode == config::Mode::Create) {
                    u.resolve = false;  // it did not land: create it now
                    return start(std::move(item));
                }
                return fail(c, u, "no profile with " + u.identity);
            }
        }
        auto k = api::classify(lookup ? api::Operation::Read : op, r.transport, r.status, r.body);
        switch (k.outcome) {
            case api::Outcome::Done:
            case api::Outcome::Accepted:
                limiter_.on_success();
                c.state = k.outcome == api::Outcome::Done ? journal::State::Done : journal::State::Accepted;
                c.profile_id = api::profile_id_of(r.body);
                ++(k.outcome == api::Outcome::Done ? report_.done : report_.accepted);
                return complete(c);
            case api::Outcome::Unknown:
                // A create whose fate is unknown (or 409: it exists): look it up before anything else.
                return retry(c, u, k.reason + (r.error.empty() ? "" : " (" + r.error + ")"), r, true);
            case api::Outcome::Retry: return retry(c, u, k.reason + (r.error.empty() ? "" : " (" + r.error + ")"), r, false);
            case api::Outcome::Failed: return fail(c, u, k.reason + ": " + api::server_message(r.body));
            case api::Outcome::Fatal:
                report_.fatal = k.reason;
                std::fprintf(stderr, "%serror: aborting the run: %s\n", base::priority_prefix(base::Priority::Error), k.reason.c_str());
                c.state = journal::State::Queued;
                c.count_attempt = false;
                return complete(c);
        }
    }

    void retry(journal::Completion c, const journal::ClaimedUpdate& u, const std::string& reason,
               const http::HttpResponse& r, bool resolve) {
        ++report_.retries;
        if (options_.observer) options_.observer->on_retry(r.status);
        if (u.attempts + 1 >= config_.retry.max_attempts) return fail(c, u, "gave up after " +
                                                                      std::to_string(u.attempts + 1) + " attempts: " + reason);
        auto delay = retry_delay(backoff_, limiter_, r, u.attempts);
        c.state = journal::State::Retry;
        c.error = reason;
        c.due_at = now_ms() + delay.count();
        c.resolve = resolve;
        complete(c);
    }

    void fail(journal::Completion c, const journal::ClaimedUpdate& u, const std::string& reason) {
        c.state = journal::State::Failed;
        c.error = reason;
        ++report_.failed;
        std::fprintf(stderr, "%sfailed %s (%s): %s\n", base::priority_prefix(base::Priority::Warning), u.identity.c_str(), u.origin.c_str(), reason.c_str());
        complete(c);
    }

    void complete(const journal::Completion& c) {
        completions_.push_back(c);
        batcher_.added(completions_.size());
    }

    void flush() {
        if (completions_.empty()) return;
        journal_.complete(job_.name, completions_, now_ms());
        completions_.clear();
    }

    // The observer's view of the run (also once at its end: a short run may not see a tick).
    void tick_observer() {
        if (options_.observer)
            options_.observer->on_tick({job_.name, report_.sent, report_.done + report_.accepted + report_.failed,
                                            report_.retries, report_.failed, limiter_.rate()});
    }

    // A signal only sets a flag; look at it often enough that a run waiting for a distant
    // retry still stops promptly.
    bool on_tick() {
        tick_observer();
        if (stopping()) {
            wake_.cancel();
            pump();
        }
        return !finished_;
    }

    void tick_progress() {
        progress_timer_.expires_after(std::chrono::seconds(options_.progress_tty ? 1 : 10));
        progress_timer_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            auto secs = std::chrono::duration<double>(SteadyClock::now() - started_).count();
            auto rate = secs > 0 ? static_cast<double>(report_.sent) / secs : 0;
            auto finished = report_.done + report_.accepted + report_.failed;
            auto left = std::max<std::int64_t>(0, to_send_ - finished);
            auto eta = rate > 0 ? static_cast<long long>(static_cast<double>(left) / rate) : -1;
            if (options_.progress_tty)
                std::fprintf(stderr, "\r\033[Kread %lld  sent %lld  ok %lld  retrying %lld  failed %lld  %.0f req/s  limit %.0f/s  ETA %s",
                             (long long)report_.read, (long long)report_.sent, (long long)(report_.done + report_.accepted),
                             (long long)report_.retries, (long long)report_.failed, rate, limiter_.rate(),
                             eta < 0 ? "-" : (std::to_string(eta / 60) + "m" + std::to_string(eta % 60) + "s").c_str());
            else
                std::fprintf(stderr, "Pushing. job=%s sent=%lld ok=%lld retries=%lld failed=%lld req_per_s=%.0f\n",
                             job_.name.c_str(), (long long)report_.sent, (long long)(report_.done + report_.accepted),
                             (long long)report_.retries, (long long)report_.failed, rate);
            tick_progress();
        });
    }

    const config::Config& config_;
    const config::JobConfig& job_;
    journal::Journal& journal_;
    const std::string& token_;
    const PushOptions& options_;
    PushReport& report_;
    net::io_context ioc_;
    api::RequestBuilder builder_;
    http::HttpPool pool_;
    RateLimiter limiter_;
    Backoff backoff_;
    TokenSource tokens_;
    net::steady_timer wake_, progress_timer_;
    Ticker ticker_{ioc_, std::chrono::milliseconds(100), [this] { return on_tick(); }};
    BatchedFlush batcher_{ioc_, 256, std::chrono::milliseconds(200), [this] { flush(); }};
    SteadyClock::time_point started_;
    std::deque<Item> local_;
    std::vector<journal::Completion> completions_;
    int in_flight_ = 0;
    SharedTokens shared_{journal_, config_.rate_limit};
    std::int64_t to_send_ = 0;  // pending in the journal when dispatch began, for the ETA
    bool token_fetching_ = false;
    bool wake_armed_ = false, finished_ = false;
};

}  // namespace

PushReport run_push(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                    const std::string& token, const PushOptions& options) {
    PushReport report;
    auto started = SteadyClock::now();
    std::string kind = options.backfill ? "backfill" : "sync";
    std::optional<std::int64_t> backfill_run;
    if (options.backfill && options.resume) {
        auto last = journal.last_run(job.name, "backfill");
        if (last && last->exit_code != 0) backfill_run = last->id;
    }
    report.run_id = backfill_run ? *backfill_run : journal.begin_run(job.name, kind, now_ms());
    if (options.backfill && !backfill_run) backfill_run = report.run_id;

    if (options.read_source)
        enqueue_all(job, journal, options.backfill, options.backfill ? backfill_run : std::nullopt, report);
    if (auto n = journal.release_dead_claims(job.name); n > 0)
        std::fprintf(stderr, "resuming %lld update(s) left in flight by a stopped process (each is checked before it is re-sent)\n",
                     static_cast<long long>(n));
    if (!(options.stop && options.stop->load())) {
        Dispatcher dispatcher(config, job, journal, token, options, report);
        dispatcher.run();
    }
    if (options.progress_tty) std::fprintf(stderr, "\r\033[K");
    auto counts = journal.counts(job.name);
    report.pending = counts.pending();
    report.interrupted = options.stop && options.stop->load();
    report.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    if (!report.fatal.empty() || !report.source_error.empty()) report.exit_code = 3;
    else if (report.interrupted) report.exit_code = 4;
    else if (report.failed > 0 || report.rejected > 0) report.exit_code = 2;
    else report.exit_code = 0;

    journal::RunRecord r;
    r.id = report.run_id;
    r.job = job.name;
    r.kind = kind;
    r.read = report.read;
    r.queued = report.queued;
    r.unchanged = report.unchanged;
    r.rejected = report.rejected;
    r.done = report.done;
    r.accepted = report.accepted;
    r.failed = report.failed;
    r.retries = report.retries;
    r.exit_code = report.exit_code;
    journal.end_run(r, now_ms());
    return report;
}

}  // namespace prefsync::sync
