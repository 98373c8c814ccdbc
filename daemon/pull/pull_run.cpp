#include "daemon/pull/pull_run.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_set>

#include "connectors/csv/csv_writer.hpp"
#include "connectors/file_sink.hpp"
#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/api/outcome.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/http/http_pool.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/pull/flattener.hpp"
#include "daemon/pull/reconcile.hpp"
#include "daemon/pull/response_reader.hpp"
#include "daemon/sync/dispatch_support.hpp"
#include "daemon/base/log.hpp"
#include "daemon/sync/oauth_token.hpp"
#include "daemon/sync/rate_limiter.hpp"
#include "daemon/sync/shared_tokens.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::pull {
namespace {

namespace net = boost::asio;
using journal::Millis;
using sync::SteadyClock;

using base::now_ms;

// --- outputs -----------------------------------------------------------------------------

class Output {
public:
    virtual ~Output() = default;
    // Writes the rows of one profile.
    virtual void write(std::string_view profile_json) = 0;
    // Makes what was written durable; the size to journal (0 for tables).
    virtual std::int64_t commit() = 0;
    // The run completed: the output takes its final name.
    virtual void finish() = 0;
    std::int64_t rows = 0;
};

// Outputs to a file: durable on commit, renamed from .partial on finish.
class FileOutput : public Output {
public:
    FileOutput(const std::string& path, std::int64_t offset) : file_(path, offset) {}
    std::int64_t commit() override { return file_.sync(); }
    void finish() override { file_.finish(); }

protected:
    connectors::FileSink file_;
};

class JsonlOutput final : public FileOutput {
public:
    JsonlOutput(const std::string& path, std::int64_t offset) : FileOutput(path, offset) {}
    void write(std::string_view json) override {
        // One line per profile whatever the server's formatting: minified.
        line_.resize(json.size() + 1);
        std::size_t length = 0;
        if (simdjson::minify(json.data(), json.size(), line_.data(), length) != simdjson::SUCCESS) {
            line_.assign(json);
            length = json.size();
        }
        line_.resize(length);
        line_ += '\n';
        file_.append(line_);
        ++rows;
    }

private:
    std::string line_;
};

class CsvOutput final : public FileOutput {
public:
    CsvOutput(const config::SinkConfig& sink, std::int64_t offset)
        : FileOutput(sink.path, offset), flattener_(Flattener::compile(sink)) {
        if (offset == 0) {
            std::string header;
            for (const auto& name : flattener_.column_names()) {
                if (!header.empty()) header += ',';
                connectors::append_csv_field(header, name);
            }
            file_.append(header + "\r\n");
        }
    }
    void write(std::string_view json) override {
        out_.clear();
        flattener_.rows(json, out_);
        for (const auto& row : out_) {
            line_.clear();
            for (std::size_t i = 0; i < row.size(); ++i) {
                if (i) line_ += ',';
                if (row[i]) connectors::append_csv_field(line_, *row[i]);
            }
            line_ += "\r\n";
            file_.append(line_);
            ++rows;
        }
    }

private:
    Flattener flattener_;
    std::vector<OutputRow> out_;
    std::string line_;
};

class TableOutput final : public Output {
public:
    explicit TableOutput(const config::SinkConfig& sink) : flattener_(Flattener::compile(sink)) {
        connectors::TableLayout layout;
        for (std::size_t i = 0; i < sink.columns.size(); ++i) {
            const auto& c = sink.columns[i];
            layout.columns.push_back({c.name, c.path == "ProfileId" ? connectors::ColumnType::Integer
                                                                     : connectors::ColumnType::Text});
            if (c.name == sink.key) layout.key = i;
        }
        table_ = connectors::open_table_sink(sink, layout);
    }
    void write(std::string_view json) override {
        out_.clear();
        flattener_.rows(json, out_);
        for (const auto& row : out_) {
            table_->upsert(row);
            ++rows;
        }
    }
    std::int64_t commit() override {
        table_->commit();
        return 0;
    }
    void finish() override { table_->commit(); }

private:
    Flattener flattener_;
    std::unique_ptr<connectors::TableSink> table_;
    std::vector<OutputRow> out_;
};

std::unique_ptr<Output> open_output(const config::SinkConfig& sink, std::int64_t offset) {
    if (sink.type == "jsonl") return std::make_unique<JsonlOutput>(sink.path, offset);
    if (sink.type == "csv") return std::make_unique<CsvOutput>(sink, offset);
    return std::make_unique<TableOutput>(sink);
}

std::string describe_output(const config::SinkConfig& sink) {
    if (sink.type == "postgres") return "postgres table " + sink.table;
    if (sink.type == "sqlite") return sink.path + " table " + sink.table;
    return sink.path;
}

// --- items -------------------------------------------------------------------------------

constexpr char kSep = '\x1f';

// Phase 1: what to fetch, into the journal (a resumed run adds nothing new).
void enumerate(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
               PullReport& report) {
    const auto& pull = *job.pull;
    for (std::size_t i = 0; i < pull.searches.size(); ++i) {
        journal.add_pull_item(job.name, "search:" + std::to_string(i),
                              "searches[" + std::to_string(i) + "] " + pull.searches[i].endpoint);
        ++report.items;
    }
    const config::JobConfig* ids = pull.reconcile.empty() ? (job.has_source ? &job : nullptr)
                                                          : config.find_job(pull.reconcile);
    if (!ids) return;
    auto source = connectors::open_source(ids->source);
    std::optional<mapping::Mapper> mapper;
    std::size_t id_column = 0;
    const auto& identity = ids->identity;
    if (!pull.reconcile.empty()) {
        mapper.emplace(mapping::Mapper::compile(*ids, source->columns()));
    } else {
        const auto& name = identity.by_profile_id() ? identity.profile_id_column : identity.column;
        auto it = std::find(source->columns().begin(), source->columns().end(), name);
        if (it == source->columns().end())
            throw connectors::SourceError(identity.key_path + ": " + source->describe() + " has no column \"" + name + "\"");
        id_column = static_cast<std::size_t>(it - source->columns().begin());
    }
    connectors::RejectFile rejects(ids->source.reject_file, job.name);
    std::vector<connectors::Row> rows;
    while (source->next_batch(rows, 1000)) {
        journal::Journal::Transaction tx(journal);
        for (const auto& row : rows) {
            std::string item, expected, error = row.error;
            if (error.empty() && mapper) {
                auto result = mapper->map(row);
                if (auto* e = std::get_if<mapping::RowError>(&result)) {
                    error = e->key_path + ": " + e->message;
                } else {
                    auto& m = std::get<mapping::MappedRow>(result);
                    item = m.identity.profile_id ? "pid:" + std::to_string(*m.identity.profile_id)
                                                 : "alt:" + m.identity.alternate_id_type + kSep + m.identity.alternate_id;
                    expected = std::move(m.body);
                }
            } else if (error.empty()) {
                std::string value = row.values[id_column].value_or("");
                while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
                while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
                if (value.empty()) {
                    error = "the identity column is empty";
                } else if (identity.by_profile_id()) {
                    bool digits = std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
                    if (!digits || value.size() > 18) error = "\"" + value + "\" is not a profile id";
                    else item = "pid:" + value;
                } else {
                    item = "alt:" + identity.alternate_id_type + kSep + value;
                }
            }
            if (!error.empty()) {
                ++report.rejected;
                rejects.write(row.origin, error, row.raw);
                continue;
            }
            journal.add_pull_item(job.name, item, row.origin, expected);
            ++report.items;
        }
        rejects.flush();
        tx.commit();
    }
    if (report.rejected > 0)
        std::fprintf(stderr, "%s%lld rejected row(s) written to %s\n", base::priority_prefix(base::Priority::Warning), static_cast<long long>(report.rejected),
                     rejects.path().c_str());
}

// --- dispatch ----------------------------------------------------------------------------

class PullDispatcher {
public:
    PullDispatcher(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                   const std::string& token, const PullOptions& options, Output& output, PullReport& report)
        : config_(config), job_(job), pull_(*job.pull), journal_(journal), options_(options), output_(output),
          report_(report), builder_(api::parse_base_url(config.api.base_url), config.api.client_id),
          pool_(ioc_, config.http, builder_.base(), options.user_agent),
          limiter_(config.rate_limit.requests_per_second, config.rate_limit.burst, config.rate_limit.adaptive,
                   [] { return SteadyClock::now(); }),
          backoff_(config.retry.base_delay, config.retry.max_delay, static_cast<std::uint64_t>(getpid())),
          tokens_(ioc_, config, token, options.user_agent), wake_(ioc_) {}

    void run() {
        net::post(ioc_, [this] { pump(); });
        ticker_.start();
        ioc_.run();
        flush();
        tick_observer();
    }

private:
    struct Work {
        journal::PullItem item;
        int attempts = 0;
    };

    bool stopping() const { return !report_.fatal.empty() || (options_.stop && options_.stop->load()); }
    int max_in_flight() const { return std::max(1, config_.rate_limit.max_in_flight); }

    std::optional<Work> next_work() {
        auto now = now_ms();
        if (!retries_.empty() && retries_.begin()->first <= now) {
            auto work = std::move(retries_.begin()->second);
            retries_.erase(retries_.begin());
            return work;
        }
        if (page_.empty() && !exhausted_) {
            for (auto& item : journal_.pending_pull_items(job_.name, cursor_, 500)) {
                cursor_ = item.seq;
                page_.push_back(std::move(item));
            }
            exhausted_ = page_.empty();
        }
        if (page_.empty()) return std::nullopt;
        Work work{std::move(page_.front()), 0};
        page_.pop_front();
        return work;
    }

    void pump() {
        if (stopping()) return finish_if_idle();
        if (!tokens_.ready()) return fetch_token();
        while (in_flight_ < max_in_flight()) {
            Millis retry_at = 0;
            if (!shared_.ready(now_ms(), retry_at)) {
                schedule_wake(std::chrono::milliseconds(std::max<Millis>(1, retry_at - now_ms())));
                return;
            }
            if (auto wait = limiter_.try_acquire()) {
                schedule_wake(*wait);
                return;
            }
            auto work = next_work();
            if (!work) break;
            shared_.use();
            start(std::move(*work));
        }
        if (in_flight_ == 0 && page_.empty() && exhausted_) {
            if (retries_.empty()) return finish_if_idle();
            schedule_wake(std::chrono::milliseconds(std::max<Millis>(1, retries_.begin()->first - now_ms())));
        }
    }

    void fetch_token() {
        if (token_fetching_) return;
        token_fetching_ = true;
        tokens_.refresh([this](const std::string& error, bool fatal) {
            token_fetching_ = false;
            if (error.empty()) return pump();
            if (fatal) {
                report_.fatal = error;
                return pump();
            }
            std::fprintf(stderr, "%sToken fetch failed, retrying. error=\"%s\"\n", base::priority_prefix(base::Priority::Warning), error.c_str());
            schedule_wake(backoff_.delay(3));
        });
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
        wake_.cancel();
        batcher_.cancel();
        ticker_.cancel();
        pool_.shutdown();
        ioc_.stop();
    }

    // The observer's view of the run (also once at its end: a short run may not see a tick).
    void tick_observer() {
        if (options_.observer)
            options_.observer->on_tick({job_.name, report_.requests, report_.done + report_.missing + report_.failed,
                                            report_.retries, report_.failed, limiter_.rate()});
    }

    // A signal only sets a flag: look at it (and report progress) every 100 ms.
    bool on_tick() {
        tick_observer();
        if (stopping()) {
            wake_.cancel();
            pump();
        }
        return true;  // until finish_if_idle() cancels it
    }

    api::ApiRequest request_for(const journal::PullItem& item) const {
        const auto& id = item.item;
        std::string history = pull_.history ? std::string(config::to_string(*pull_.history)) : "";
        api::RequestBuilder::ReadFlags flags{pull_.implied, pull_.match_inactive};
        if (id.starts_with("pid:")) {
            auto pid = std::stoll(id.substr(4));
            return pull_.history ? builder_.history(history, pid, pull_.filter_id) : builder_.read(pid, flags);
        }
        if (id.starts_with("alt:")) {
            auto sep = id.find(kSep);
            auto type = id.substr(4, sep - 4), value = id.substr(sep + 1);
            return pull_.history ? builder_.history(history, type, value, pull_.filter_id)
                                 : builder_.read(type, value, flags);
        }
        const auto& search = pull_.searches.at(std::stoul(id.substr(7)));
        auto params = search.params;
        bool has_implied = std::any_of(params.begin(), params.end(), [](auto& p) { return p.first == "implied"; });
        if (pull_.implied && !has_implied) params.emplace_back("implied", "true");
        auto request = builder_.search(search.endpoint, params);
        request.operation = api::Operation::Search;
        return request;
    }

    void start(Work work) {
        auto request = request_for(work.item);
        auto op = request.operation;
        ++in_flight_;
        ++report_.requests;
        int generation = tokens_.generation();
        pool_.send(std::move(request), tokens_.header(),
                   [this, work = std::move(work), op, generation](const http::HttpResponse& r) mutable {
                       --in_flight_;
                       if (options_.observer) options_.observer->on_request(api::to_string(op), r.status, r.elapsed);
                       if (r.status == 401 && !tokens_.refused(generation)) {
                           retries_.emplace(now_ms(), std::move(work));  // a new token, then again
                       } else {
                           if (r.status >= 200 && r.status < 300) tokens_.accepted();
                           on_response(std::move(work), op, r);
                       }
                       pump();
                   });
    }

    void on_response(Work work, api::Operation op, const http::HttpResponse& r) {
        journal::PullOutcome o;
        o.seq = work.item.seq;
        o.status = r.status;
        auto k = api::classify(op, r.transport, r.status, r.body);
        switch (k.outcome) {
            case api::Outcome::Done:
            case api::Outcome::Accepted: limiter_.on_success(); return write(work, r, std::move(o));
            case api::Outcome::Retry:
            case api::Outcome::Unknown: return retry(std::move(work), k.reason + (r.error.empty() ? "" : " (" + r.error + ")"), r);
            case api::Outcome::Fatal:
                report_.fatal = k.reason;
                std::fprintf(stderr, "%serror: stopping the pull: %s\n", base::priority_prefix(base::Priority::Error), k.reason.c_str());
                return;  // the item stays pending: the next run fetches it
            case api::Outcome::Failed: break;
        }
        std::string message = api::server_message(r.body);
        if (r.status == 404 && op != api::Operation::Search) {
            o.state = "missing";
            o.error = "404: no such profile" + (message.empty() ? "" : " (" + message + ")");
            ++report_.missing;
        } else if (r.status == 403 && op == api::Operation::Search) {
            o.state = "failed";
            o.error = "403: more than 50 profiles match; narrow this search";
            ++report_.failed;
        } else {
            o.state = "failed";
            o.error = k.reason + (message.empty() ? "" : ": " + message);
            ++report_.failed;
        }
        std::fprintf(stderr, "%s%s %s: %s\n", base::priority_prefix(base::Priority::Warning), o.state.c_str(), work.item.origin.c_str(), o.error.c_str());
        complete(std::move(o));
    }

    void retry(Work work, const std::string& reason, const http::HttpResponse& r) {
        ++report_.retries;
        if (options_.observer) options_.observer->on_retry(r.status);
        if (++work.attempts >= config_.retry.max_attempts) {
            journal::PullOutcome o{work.item.seq, "failed", r.status,
                                   "gave up after " + std::to_string(work.attempts) + " attempts: " + reason, "", "", ""};
            ++report_.failed;
            std::fprintf(stderr, "%sfailed %s: %s\n", base::priority_prefix(base::Priority::Warning), work.item.origin.c_str(), o.error.c_str());
            return complete(std::move(o));
        }
        auto delay = sync::retry_delay(backoff_, limiter_, r, work.attempts);
        retries_.emplace(now_ms() + delay.count(), std::move(work));
    }

    void write(const Work& work, const http::HttpResponse& r, journal::PullOutcome o) {
        auto parse_start = SteadyClock::now();
        auto problem = reader_.read(r.body, profiles_);
        report_.parse_seconds += std::chrono::duration<double>(SteadyClock::now() - parse_start).count();
        report_.bytes_parsed += r.body.size();
        if (!problem.empty()) {
            o.state = "failed";
            o.error = "unreadable answer: " + problem;
            ++report_.failed;
            return complete(std::move(o));
        }
        o.state = "done";
        for (const auto& p : profiles_) {
            if (p.profile_id && !seen_.insert(*p.profile_id).second) {
                ++report_.duplicates;
                continue;
            }
            if (p.profile_id) seen_batch_.push_back(*p.profile_id);
            output_.write(p.json);
            ++report_.profiles;
            if (!work.item.expected.empty()) {
                auto diffs = differing_fields(work.item.expected, p.json);
                o.state = diffs.empty() ? "identical" : "differing";
                for (const auto& d : diffs) o.detail += (o.detail.empty() ? "" : ", ") + d;
            }
        }
        ++report_.done;
        complete(std::move(o));
    }

    void complete(journal::PullOutcome o) {
        outcomes_.push_back(std::move(o));
        batcher_.added(outcomes_.size());
    }

    // The sink's bytes are durable before the journal says which items they hold.
    void flush() {
        if (outcomes_.empty()) return;
        auto offset = output_.commit();
        journal_.complete_pull(job_.name, outcomes_, seen_batch_, offset);
        outcomes_.clear();
        seen_batch_.clear();
    }

public:
    std::unordered_set<std::int64_t> seen_;

private:
    const config::Config& config_;
    const config::JobConfig& job_;
    const config::PullConfig& pull_;
    journal::Journal& journal_;
    const PullOptions& options_;
    Output& output_;
    PullReport& report_;
    net::io_context ioc_;
    api::RequestBuilder builder_;
    http::HttpPool pool_;
    sync::RateLimiter limiter_;
    sync::Backoff backoff_;
    sync::TokenSource tokens_;
    sync::SharedTokens shared_{journal_, config_.rate_limit};
    net::steady_timer wake_;
    sync::Ticker ticker_{ioc_, std::chrono::milliseconds(100), [this] { return on_tick(); }};
    sync::BatchedFlush batcher_{ioc_, 500, std::chrono::milliseconds(200), [this] { flush(); }};
    ResponseReader reader_;
    std::vector<PulledProfile> profiles_;
    std::deque<journal::PullItem> page_;
    std::multimap<Millis, Work> retries_;
    std::vector<journal::PullOutcome> outcomes_;
    std::vector<std::int64_t> seen_batch_;
    std::int64_t cursor_ = 0;
    int in_flight_ = 0;
    bool exhausted_ = false, token_fetching_ = false, wake_armed_ = false;
};

void write_reconcile_report(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                            PullReport& report) {
    auto dir = std::filesystem::path(config.journal.path).parent_path() / "reports";
    std::filesystem::create_directories(dir);
    report.reconcile_report = (dir / (job.name + ".reconcile.jsonl")).string();
    std::ofstream out(report.reconcile_report, std::ios::trunc);
    auto line = [&](const journal::PullOutcome& o, const char* state, const std::string& detail) {
        std::string s = "{\"state\":";
        base::append_json_string(s, state);
        s += ",\"origin\":";
        base::append_json_string(s, o.origin);
        s += ",\"fields\":";
        base::append_json_string(s, detail);
        out << s << "}\n";
    };
    for (const auto& o : journal.pull_outcomes(job.name, "differing", 1 << 30)) line(o, "differing", o.detail);
    for (const auto& o : journal.pull_outcomes(job.name, "missing", 1 << 30)) line(o, "missing", o.error);
}

}  // namespace

PullReport run_pull(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                    const std::string& token, const PullOptions& options) {
    PullReport report;
    auto started = SteadyClock::now();
    const auto& sink = *job.sink;
    report.output = describe_output(sink);

    auto state = journal.pull_state(job.name);
    auto last = journal.last_run(job.name, "pull");
    report.resumed = state && last && last->id == state->run_id && (last->ended_at == 0 || last->exit_code >= 3);
    std::int64_t offset = 0;
    if (report.resumed) {
        report.run_id = state->run_id;
        offset = state->sink_offset;
        std::fprintf(stderr, "resuming pull run %lld: finished items are not fetched again\n",
                     static_cast<long long>(report.run_id));
    } else {
        report.run_id = journal.begin_run(job.name, "pull", now_ms());
        journal.begin_pull(job.name, report.run_id);
    }
    auto output = open_output(sink, offset);
    enumerate(config, job, journal, report);

    PullDispatcher dispatcher(config, job, journal, token, options, *output, report);
    // Profiles the interrupted run wrote are not written again (searches overlap).
    if (report.resumed)
        for (auto id : journal.pull_seen_ids(job.name)) dispatcher.seen_.insert(id);
    if (!(options.stop && options.stop->load())) dispatcher.run();

    report.rows = output->rows;
    auto counts = journal.pull_counts(job.name);
    report.interrupted = options.stop && options.stop->load();
    bool complete = report.fatal.empty() && !report.interrupted && counts["pending"] == 0;
    report.done = counts["done"] + counts["identical"] + counts["differing"];
    report.missing = counts["missing"];
    report.failed = counts["failed"];
    report.identical = counts["identical"];
    report.differing = counts["differing"];
    if (complete) {
        output->finish();
        if (!job.pull->reconcile.empty()) write_reconcile_report(config, job, journal, report);
    }
    report.seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    report.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    if (!report.fatal.empty()) report.exit_code = 3;
    else if (!complete) report.exit_code = 4;
    else if (report.missing + report.failed + report.differing + report.rejected > 0) report.exit_code = 2;

    journal::RunRecord r;
    r.id = report.run_id;
    r.job = job.name;
    r.kind = "pull";
    r.read = report.items;
    r.rejected = report.rejected;
    r.done = report.done;
    r.failed = report.failed + report.missing;
    r.retries = report.retries;
    r.exit_code = report.exit_code;
    journal.end_run(r, now_ms());
    return report;
}

}  // namespace prefsync::pull
