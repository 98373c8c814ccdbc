#include "daemon/dispatch/request_loop.hpp"

#include <algorithm>

#include "daemon/base/logger.hpp"

namespace prefsync::dispatch {
namespace {

// The API failing as a whole, as opposed to refusing one request.
bool failed_alike(const http::HttpResponse& r) {
    if (r.transport != api::Transport::Answered) return true;
    return r.status >= 500 || r.status == 408;
}

// "45 s", "12 min": how long a bound took, for the reason a run stopped.
std::string span_text(SteadyClock::duration d) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    return s < 120 ? std::to_string(s) + " s" : std::to_string(s / 60) + " min";
}

// Runs `fn` unless a run of it is under way, in which case that run goes round once more:
// a transport may answer synchronously (a closed pool), re-entering the pump.
template <class Fn>
void once_at_a_time(bool& running, bool& again, Fn&& fn) {
    if (running) {
        again = true;
        return;
    }
    running = true;
    struct Reset {
        bool& flag;
        ~Reset() { flag = false; }
    } reset{running};
    do {
        again = false;
        fn();
    } while (again);
}

}  // namespace

RequestLoop::RequestLoop(Runtime& runtime, Transport& transport, TokenSource& tokens, RateLimiter& limiter,
                         SharedBucket* shared, RunObserver* observer, const std::atomic<bool>* stop,
                         LoopSettings settings)
    : runtime_(runtime),
      transport_(transport),
      tokens_(tokens),
      limiter_(limiter),
      shared_(shared),
      observer_(observer),
      stop_(stop),
      settings_(std::move(settings)),
      policy_(settings_.retry, limiter, settings_.seed),
      breaker_(settings_.breaker),
      wake_timer_(runtime.make_timer()),
      tick_timer_(runtime.make_timer()) {
    progress_.job = settings_.job;
    settings_.max_in_flight = std::max(1, settings_.max_in_flight);
}

RequestLoop::~RequestLoop() {
    wake_timer_->cancel();
    tick_timer_->cancel();
}

bool RequestLoop::stopping() const {
    return !fatal_.empty() || !unavailable_.empty() || (stop_ && stop_->load());
}

void RequestLoop::run(Producer& producer) {
    producer_ = &producer;
    finished_ = broken_ = false;
    throttled_since_.reset();
    throttled_with_failures_ = false;
    row_throttles_.clear();  // a verify round's rows are numbered afresh
    runtime_.restart();
    runtime_.post([this] { pump(); });
    tick_timer_->start(settings_.tick, [this] { tick(); });
    try {
        runtime_.run();
    } catch (...) {
        // The producer could not go on (its journal failed): no callback may reach it again.
        auto error = std::current_exception();
        broken_ = true;
        wake_timer_->cancel();
        tick_timer_->cancel();
        transport_.shutdown();
        // The token endpoint's too: its idle connection would keep the run below going for
        // http.idle_timeout.
        tokens_.shutdown();
        for (int i = 0; i < 1000; ++i) {
            try {
                runtime_.restart();
                runtime_.run();
                break;
            } catch (...) {}
        }
        in_flight_.clear();
        staged_.reset();
        resend_.clear();
        producer_ = nullptr;
        std::rethrow_exception(error);
    }
    producer.flush();
    auto p = progress_;
    p.sent = stats_.sent;
    p.retries = stats_.retries;
    p.rate_limit = limiter_.rate();
    producer.on_tick(runtime_.wall_ms(), p);
    if (observer_) observer_->on_tick(p);  // a short run may never have ticked
    producer_ = nullptr;
}

void RequestLoop::pump() {
    once_at_a_time(pumping_, pump_again_, [this] {
        if (broken_ || finished_) return;
        if (stopping()) {
            release_held();
            return finish_if_idle();
        }
        if (!tokens_.ready()) return fetch_token();
        while (static_cast<int>(in_flight_.size()) < settings_.max_in_flight) {
            if (!staged_) {
                if (!resend_.empty()) {
                    staged_ = std::move(resend_.front());
                    resend_.pop_front();
                } else {
                    staged_ = producer_->next(runtime_.wall_ms());
                }
                if (!staged_) break;
            }
            if (shared_) {
                base::Millis retry_at = 0;
                if (!shared_->ready(runtime_.wall_ms(), retry_at)) {
                    auto wait = std::chrono::milliseconds(std::max<base::Millis>(1, retry_at - runtime_.wall_ms()));
                    return wake_at(runtime_.now() + wait);
                }
            }
            if (auto wait = limiter_.try_acquire()) return wake_at(runtime_.now() + *wait);
            bool probe = false;
            if (!breaker_.allow(runtime_.now(), probe)) {
                // Open: the staged item waits for the probe time (or the probe's answer).
                if (auto at = breaker_.next_probe()) wake_at(*at);
                return;
            }
            if (shared_) shared_->use();
            auto item = std::move(*staged_);
            staged_.reset();
            start(std::move(item), probe);
        }
        if (staged_ || !resend_.empty()) return;
        // Nothing to send now: wait for the producer's next due item, or finish.
        auto now = runtime_.wall_ms();
        auto due = producer_->wake_at(now);
        if (!due) {
            if (in_flight_.empty()) finish_if_idle();
            return;
        }
        // At most a day at a time: a due time near the end of time (a held row counted by
        // mistake) overflowed the clock into the past, and the loop spun at 100% CPU.
        constexpr base::Millis kLongestWait = 24 * 3600 * 1000;
        wake_at(runtime_.now() + std::chrono::milliseconds(std::clamp<base::Millis>(*due - now, 1, kLongestWait)));
    });
}

void RequestLoop::start(Outgoing item, bool probe) {
    auto ticket = ++next_ticket_;
    // The body is needed again only to re-send after a token refresh (OAuth).
    api::ApiRequest request = tokens_.oauth() ? item.request : std::move(item.request);
    item.request.operation = request.operation;
    in_flight_.emplace(ticket, InFlight{std::move(item), probe, tokens_.generation()});
    ++stats_.sent;
    // Two words captured, which std::function keeps in place: a third (the token's
    // generation, now in InFlight) made it allocate the handler for every request.
    transport_.send(std::move(request), tokens_.header(),
                    [this, ticket](http::HttpResponse r) { answered(ticket, std::move(r)); });
}

void RequestLoop::answered(std::uint64_t ticket, http::HttpResponse r) {
    if (broken_) return;
    auto it = in_flight_.find(ticket);
    if (it == in_flight_.end()) return;
    InFlight f = std::move(it->second);
    in_flight_.erase(it);
    ++stats_.answered;
    auto op = f.item.request.operation;
    if (observer_) observer_->on_request(api::to_string(op), r.status, r.elapsed);
    if (r.status == 401 && tokens_.oauth() && !tokens_.refused(f.generation)) {
        // An expired or revoked bearer token: a new one, then the same request again. A
        // probe's 401 says nothing of the API: the resent request probes (left unrecorded,
        // the breaker waited for the probe's answer for ever, sending nothing).
        breaker_.inconclusive(f.probe, runtime_.now());
        resend_.push_back(std::move(f.item));
        return pump();
    }
    if (r.status >= 200 && r.status < 300) tokens_.accepted();
    auto now = runtime_.now();
    // An answered 500 (or other 5xx but 502-504) may be about its row (a profile the server
    // cannot handle); no answer, 408, 502, 503, 504 are about the server whatever the row,
    // so each counts as a row of its own: a small run in an outage still opens the breaker.
    bool about_row = r.transport == api::Transport::Answered && r.status >= 500 && r.status != 502 && r.status != 503 &&
                     r.status != 504;
    bool failed = failed_alike(r);
    bool read = op == api::Operation::Read || op == api::Operation::Search;
    if (!read) writes_failing_ = failed;
    // A read that works while writes fail alike (a gateway refusing writes only; a create
    // that failed is looked up before it is sent again) says nothing of the writes: counted
    // as a success, each lookup closed the breaker, and every create's failure then spent
    // its retries (a write-only outage dead-lettered every row at 70 requests/s).
    int changed = 0;
    if (read && !failed && writes_failing_)
        breaker_.inconclusive(f.probe, now);
    else
        changed = breaker_.record(failed, f.probe, now, about_row ? f.item.row : ~ticket);
    switch (changed) {
        case +1:
            ++stats_.breaker_trips;
            opened_at_ = now;
            base::logger().warn(
                "The API is failing: pausing the job, with one probe every probe_s seconds, doubling "
                "up to max_probe_s; requests failing meanwhile do not count against their retries",
                {{"job", settings_.job},
                 {"status", r.status ? base::LogValue(r.status) : base::LogValue(std::nullopt)},
                 {"error", base::omit_if_empty(r.status ? "" : r.error)},
                 {"probe_s", breaker_.probe_step().count() / 1000},
                 {"max_probe_s", settings_.breaker.max_probe.count() / 1000}});
            if (observer_) observer_->on_breaker(true);
            break;
        case -1:
            base::logger().info(
                "The API answers again: resuming the job",
                {{"job", settings_.job},
                 {"paused_s", std::chrono::duration_cast<std::chrono::seconds>(now - opened_at_).count()}});
            if (observer_) observer_->on_breaker(false);
            break;
        default: break;
    }
    if (breaker_.given_up() && unavailable_.empty()) {
        // An outage longer than a row's retries would last: the run stops as if interrupted
        // (nothing is marked failed, nothing learned about the job: a daemon does not park
        // it), and the next run, or the daemon's next retry, starts over.
        give_up("The API is unavailable", "the API failed " + std::to_string(breaker_.failed_probes()) +
                                              " probes in a row over " + span_text(now - opened_at_));
    }
    note_throttling(r, now);
    auto wall = std::chrono::system_clock::time_point(std::chrono::milliseconds(runtime_.wall_ms()));
    auto verdict = policy_.judge(op, r, f.item.attempts, breaker_.open(), wall);
    single_out_throttled_row(f, r, wall, verdict);
    if (verdict.outcome == api::Outcome::Retry || verdict.outcome == api::Outcome::Unknown) {
        ++stats_.retries;
        if (observer_) observer_->on_retry(r.status);
        if (auto ra = policy_.retry_after(r, wall); ra.count() > 0) breaker_.defer_probe(now + ra);
    }
    if (verdict.outcome == api::Outcome::Fatal) abort(verdict.reason);
    producer_->on_answer(std::move(f.item), r, verdict);
    pump();
}

void RequestLoop::fetch_token() {
    if (token_fetching_) return;
    // Whatever calls for a token meanwhile (answers still coming in pump again) waits too.
    if (runtime_.now() < token_retry_at_) return wake_at(token_retry_at_);
    token_fetching_ = true;
    tokens_.refresh([this](const std::string& error, bool fatal) {
        token_fetching_ = false;
        if (broken_) return;
        if (error.empty()) {
            token_failures_ = 0;
            return pump();
        }
        if (fatal) {
            abort(error);
            return pump();
        }
        // A token endpoint that fails transiently is asked again later, never in a loop, and
        // not for ever: as long as the breaker would probe an API that fails, then the run
        // stops as one the API was unavailable to (exit 4, nothing failed).
        if (token_failures_ == 0) token_failing_since_ = runtime_.now();
        if (++token_failures_ > settings_.breaker.give_up_probes) {
            give_up("The token endpoint is unavailable",
                    "the token endpoint failed " + std::to_string(token_failures_) + " times in a row over " +
                        span_text(runtime_.now() - token_failing_since_) + " (" + error + ")");
            return pump();
        }
        auto delay = policy_.backoff(std::min(2 + token_failures_, 30));
        // A token endpoint that says when to come back (429 or 503 with Retry-After) is
        // asked no sooner, as the API would be.
        auto wall = std::chrono::system_clock::time_point(std::chrono::milliseconds(runtime_.wall_ms()));
        delay = std::max(delay, policy_.retry_after(tokens_.last_answer(), wall));
        base::logger().warn("Token fetch failed, retrying", {{"error", error}, {"delay_ms", delay.count()}});
        token_retry_at_ = runtime_.now() + std::max(delay, std::chrono::milliseconds(100));
        wake_at(token_retry_at_);
    });
}

void RequestLoop::wake_at(SteadyClock::time_point when) {
    if (wake_armed_ && *wake_armed_ <= when) return;
    wake_armed_ = when;
    auto delay = std::max(SteadyClock::duration(0), when - runtime_.now());
    wake_timer_->start(delay, [this] {
        wake_armed_.reset();
        pump();
    });
}

void RequestLoop::tick() {
    if (broken_ || finished_) return;
    auto p = progress_;
    p.sent = stats_.sent;
    p.retries = stats_.retries;
    p.rate_limit = limiter_.rate();
    producer_->on_tick(runtime_.wall_ms(), p);
    if (observer_) observer_->on_tick(p);
    // A signal only sets a flag: look at it often enough that a run waiting for a distant
    // retry still stops promptly.
    if (stopping()) {
        wake_timer_->cancel();
        wake_armed_.reset();
        pump();
    }
    if (!finished_) tick_timer_->start(settings_.tick, [this] { tick(); });
}

void RequestLoop::release_held() {
    if (staged_) {
        producer_->release(std::move(*staged_));
        staged_.reset();
    }
    while (!resend_.empty()) {
        producer_->release(std::move(resend_.front()));
        resend_.pop_front();
    }
}

void RequestLoop::finish_if_idle() {
    if (!in_flight_.empty() || finished_) return;
    finished_ = true;
    wake_timer_->cancel();
    wake_armed_.reset();
    tick_timer_->cancel();
    runtime_.stop();
}

// A 429 counts against no row (the server's limit is everybody's), so one row a server always
// throttles while it accepts the others (a per-profile limit, a gateway rule) was re-sent as
// fast as the limiter let it for the whole run, each 429 cutting every row's rate, and once
// it was alone the run ended as interrupted after retry.max_throttled. Now a row throttled
// again backs off on its own (doubling with jitter, as a counted retry), and it fails only
// on strong evidence that the limit is the row's:
// - `threshold` 429s in a row of one operation, the last three with nothing else sent since
//   the one before (the server had only this row for the length of its backoff, so a limit
//   weighted by cost or size had its bucket refill: a large row that only needs a quiet
//   moment gets one); a breaker's probe never counts as alone;
// - since its first 429, at least 100 other requests of the same operation succeeded (a
//   limit on one endpoint is not taken for the row's), and throttles (429, 503 with
//   Retry-After) were at most one in ten of that operation's successes and throttles (a
//   limit for everybody throttles a row ten times in a row about once in 10^10 at that
//   share).
// Left: a quota spent for the day just as only this row is left looks the same.
void RequestLoop::single_out_throttled_row(const InFlight& f, const http::HttpResponse& r,
                                           std::chrono::system_clock::time_point wall, Verdict& verdict) {
    auto op = f.item.request.operation;
    auto row = f.item.row;
    auto& counts = op_answers_[static_cast<std::size_t>(op)];
    bool answered = r.transport == api::Transport::Answered;
    bool throttled = answered && r.status == 429 &&
                     (verdict.outcome == api::Outcome::Retry || verdict.outcome == api::Outcome::Unknown);
    if (throttled || (answered && r.status == 503 && policy_.retry_after(r, wall).count() > 0)) ++counts.throttled;
    if (answered && r.status >= 200 && r.status < 300) ++counts.succeeded;
    if (!throttled) {
        if (!row_throttles_.empty()) row_throttles_.erase(row);
        return;
    }
    auto& t = row_throttles_[row];
    if (t.count > 0 && t.op != op) t = RowThrottle{};  // a lookup after a write: a streak of its own
    if (t.count++ == 0) {
        t.op = op;
        t.succeeded = counts.succeeded;
        t.throttled = counts.throttled;
    } else {
        t.alone = !f.probe && stats_.sent == t.sent + 1 ? t.alone + 1 : 0;
    }
    t.sent = stats_.sent;
    // The first 429 is the limiter's to pace (a limit for everybody); a row throttled again waits.
    if (verdict.delay.count() == 0 && t.count > 1) verdict.delay = policy_.backoff(t.count - 1);
    // Each of the row's own later 429s was counted in `throttled` after the snapshot.
    auto others_ok = counts.succeeded - t.succeeded;
    auto others_throttled = counts.throttled - t.throttled - static_cast<std::uint64_t>(t.count - 1);
    int threshold = std::max(10, settings_.retry.max_attempts);
    if (t.count < threshold || t.alone < 3 || others_ok < 100 || others_throttled * 10 > others_ok + others_throttled)
        return;
    verdict.outcome = api::Outcome::Failed;
    verdict.give_up = false;
    verdict.reason = "429 (rate limited) " + std::to_string(t.count) +
                     " times in a row for this row, the last ones with nothing else sent, while the API accepted " +
                     std::to_string(others_ok) + " other " + std::string(api::to_string(op)) +
                     " requests: it refuses this one";
    row_throttles_.erase(row);
}

void RequestLoop::note_throttling(const http::HttpResponse& r, SteadyClock::time_point now) {
    bool throttled = r.transport == api::Transport::Answered && r.status == 429;
    if (!throttled && !failed_alike(r)) {
        // The server processed a request (2xx, or refused it on its merits: 4xx): it works.
        throttled_since_.reset();
        throttled_with_failures_ = false;
        return;
    }
    if (!throttled) {
        // A failure is the breaker's to bound; it neither starts nor ends a throttled spell.
        if (throttled_since_) throttled_with_failures_ = true;
        return;
    }
    if (!throttled_since_) {
        throttled_since_ = now;
        return;
    }
    // A 429 counts against no row, and the limiter only slows down: without this bound a
    // server that always throttles (a quota spent for the day, one row a WAF always refuses
    // once the others are sent) keeps the run going for ever. Time waited for a Retry-After
    // counts: it is wall time since the throttling began.
    auto spell = now - *throttled_since_;
    if (spell < settings_.max_throttled || !unavailable_.empty()) return;
    give_up("The API throttles every request", std::string("the API answered only 429 (rate limited)") +
                                                   (throttled_with_failures_ ? " and failures" : "") + " for " +
                                                   span_text(spell) + " (retry.max_throttled)");
}

void RequestLoop::give_up(const char* title, const std::string& reason) {
    if (!unavailable_.empty()) return;
    unavailable_ = reason + ": stopping the run; what is left stays queued for the next one";
    base::logger().error(title, {{"job", settings_.job}, {"reason", unavailable_}});
}

void RequestLoop::abort(const std::string& reason) {
    if (!fatal_.empty()) return;
    fatal_ = reason;
    base::logger().error("Aborting the run", {{"job", settings_.job}, {"reason", reason}});
}

}  // namespace prefsync::dispatch
