#include "daemon/pull/pull_run.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/json_text.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/pull/pull_fingerprint.hpp"
#include "daemon/pull/pull_output.hpp"
#include "daemon/pull/reconcile.hpp"
#include "daemon/pull/response_reader.hpp"

namespace prefsync::pull {
namespace {

using base::now_ms;
using journal::Millis;

// --- items -------------------------------------------------------------------------------

constexpr char kSep = '\x1f';

// What to fetch, into the journal, a batch of source rows at a time (a resumed run adds
// nothing it has). The producer asks for the next batch when the journal has no pending item
// left, so the first request leaves after one batch rather than after the whole source, and
// reading the source overlaps with waiting for answers.
class Enumerator {
public:
    // Throws config::ConfigError / connectors::SourceError before anything is fetched.
    Enumerator(const dispatch::RunContext& c, const config::JobConfig& job, PullReport& report)
        : c_(c), job_(job), report_(report) {
        const auto& pull = *job.pull;
        journal::Database::Transaction tx(c.journal.db);
        for (std::size_t i = 0; i < pull.searches.size(); ++i)
            if (!c.journal.pulls.add_item(job.name, "search:" + std::to_string(i),
                                          "searches[" + std::to_string(i) + "] " + pull.searches[i].endpoint))
                ++report.items;
        tx.commit();
        journaled_before_ = c.journal.pulls.last_seq(job.name);
        ids_ = pull.reconcile.empty() ? (job.has_source ? &job : nullptr) : c.config.find_job(pull.reconcile);
        if (!ids_) return;
        source_ = connectors::open_source(ids_->source);
        const auto& identity = ids_->identity;
        if (!pull.reconcile.empty()) {
            mapper_.emplace(mapping::Mapper::compile(*ids_, source_->columns()));
        } else {
            const auto& name = identity.by_profile_id() ? identity.profile_id_column : identity.column;
            auto it = std::find(source_->columns().begin(), source_->columns().end(), name);
            if (it == source_->columns().end())
                throw connectors::SourceError(identity.key_path + ": " + source_->describe() + " has no column \"" +
                                              name + "\"");
            id_column_ = static_cast<std::size_t>(it - source_->columns().begin());
        }
        rejects_.emplace(ids_->source.reject_file, job.name);
    }

    // Journals the items of the source's next batch of rows; false once the source is read
    // to its end, could not be read further (source_error()) or the run is stopping.
    bool step() {
        if (!source_ || ended_ || !source_error_.empty() || (c_.stop && c_.stop->load())) return false;
        try {
            if (!source_->next_batch(rows_, 1000)) {
                ended_ = true;
                return false;
            }
            // Not worth an fsync: items lost with their commit (a power loss) are read from
            // the source again by the resumed pull, and an outcome's durable commit covers
            // every item before it.
            journal::Database::Transaction tx(c_.journal.db, journal::Database::Sync::deferred);
            // Every item journaled before this batch is fetched or being fetched: the producer
            // asks for a batch only once it holds every pending item.
            handed_out_ = c_.journal.pulls.last_seq(job_.name);
            for (const auto& row : rows_) add(row);
            rejects_->flush();
            tx.commit();
        } catch (const connectors::SourceError& e) {
            // What was read before stays journaled and is fetched; the run then stops, resumable.
            source_error_ = e.what();
            return false;
        }
        return true;
    }

    const std::string& source_error() const { return source_error_; }
    // Every item of the source is journaled (a job of searches only has no source).
    bool ended() const { return !source_ || ended_; }

    void finish() {
        if (report_.rejected > 0)
            base::logger().warn("Rows rejected", {{"rejected", report_.rejected}, {"reject_file", rejects_->path()}});
    }

private:
    void add(const connectors::Row& row) {
        ++report_.read;
        const auto& identity = ids_->identity;
        std::string item, expected, error = row.error;
        if (error.empty() && mapper_) {
            auto result = mapper_->map(row);
            if (auto* e = std::get_if<mapping::RowError>(&result)) {
                error = e->key_path + ": " + e->message;
            } else {
                auto& m = std::get<mapping::MappedRow>(result);
                item = m.identity.profile_id ? "pid:" + std::to_string(*m.identity.profile_id)
                                             : "alt:" + m.identity.alternate_id_type + kSep + m.identity.alternate_id;
                expected = std::move(m.body);
            }
        } else if (error.empty()) {
            std::string value = row.values[id_column_].value_or("");
            while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
            while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.erase(0, 1);
            if (value.empty()) {
                error = "the identity column is empty";
            } else if (identity.by_profile_id()) {
                bool digits = std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
                if (!digits || value.size() > 18)
                    error = "\"" + value + "\" is not a profile id";
                else  // "007" and "7" are one profile: one item, one request
                    item = "pid:" + std::to_string(std::stoll(value));
            } else if (auto alt = mapping::alternate_id_of(identity, value); !alt.empty()) {
                item = "alt:" + identity.alternate_id_type + kSep + alt;
            } else {
                error = "the identity column is empty once normalized";
            }
        }
        if (!error.empty()) {
            ++report_.rejected;
            rejects_->write(row.origin, error, row.raw);
            return;
        }
        auto known = c_.journal.pulls.add_item(job_.name, item, row.origin, expected);
        if (!known) {
            ++report_.items;
            return;
        }
        // The run has the item: from an earlier row of this read, or, when a resumed run reads
        // its source again from the start, from the interrupted run (whose first row of the
        // item is this one unless this read met the item before).
        if (known->seq <= journaled_before_ && met_.insert(std::hash<std::string>{}(item)).second) return;
        ++report_.duplicate_ids;
        // The interrupted run had taken this very row already.
        if (known->origin == row.origin) return;
        // The last occurrence wins, as in a push. The body compared with must be the last
        // row's: an item fetched (or being fetched) with an earlier one's is fetched again.
        bool again = mapper_ && known->seq <= handed_out_;
        if (mapper_ || known->pending)
            c_.journal.pulls.replace_item(job_.name, known->seq, row.origin, expected, again);
    }

    const dispatch::RunContext& c_;
    const config::JobConfig& job_;
    PullReport& report_;
    const config::JobConfig* ids_ = nullptr;
    std::unique_ptr<connectors::Source> source_;
    std::optional<mapping::Mapper> mapper_;
    std::size_t id_column_ = 0;
    std::optional<connectors::RejectFile> rejects_;
    std::vector<connectors::Row> rows_;
    std::string source_error_;
    bool ended_ = false;
    std::int64_t journaled_before_ = 0;    // the last item an interrupted run journaled (0 when not resumed)
    std::int64_t handed_out_ = 0;          // the last item journaled before the current batch
    std::unordered_set<std::size_t> met_;  // of the interrupted run's items, those this read met (hashed)
};

// --- dispatch ----------------------------------------------------------------------------

// The pull side of the request loop: pending items from the journal (and retries held in
// memory), one GET each; answers parsed with simdjson and written once per ProfileId.
class PullProducer final : public dispatch::Producer {
public:
    PullProducer(const config::JobConfig& job, journal::Journal& journal, const api::RequestBuilder& requests,
                 Output& output, PullReport& report, Enumerator& enumerator)
        : job_(job),
          pull_(*job.pull),
          journal_(journal),
          requests_(requests),
          output_(output),
          report_(report),
          enumerator_(enumerator) {}

    std::unordered_set<std::int64_t> seen;  // ProfileIds written (a resumed run starts with the old run's)

    std::optional<dispatch::Outgoing> next(Millis now) override {
        std::optional<Work> work;
        if (!retries_.empty() && retries_.begin()->first <= now) {
            work = std::move(retries_.begin()->second);
            retries_.erase(retries_.begin());
        } else {
            if (page_.empty() && !exhausted_) refill();
            if (page_.empty()) return std::nullopt;
            work = Work{std::move(page_.front()), 0};
            page_.pop_front();
        }
        dispatch::Outgoing out{++next_key_, request_for(work->item), work->attempts,
                               static_cast<std::uint64_t>(work->item.seq)};
        out_.emplace(out.key, std::move(*work));
        ++report_.requests;
        return out;
    }

    std::optional<Millis> wake_at(Millis now) override {
        if (!page_.empty() || !exhausted_) return now;
        if (retries_.empty()) return std::nullopt;
        return retries_.begin()->first;
    }

    void on_answer(dispatch::Outgoing out, const http::HttpResponse& r, const dispatch::Verdict& v) override {
        auto node = out_.extract(out.key);
        if (node.empty()) return;
        Work work = std::move(node.mapped());
        auto op = out.request.operation;
        journal::PullOutcome o;
        o.seq = work.item.seq;
        o.status = r.status;
        switch (v.outcome) {
            case api::Outcome::Done:
            case api::Outcome::Accepted: return write(work, r, std::move(o));
            case api::Outcome::Retry:
            case api::Outcome::Unknown: return retry(std::move(work), r, v);
            case api::Outcome::Fatal: return;  // the item stays pending: the next run fetches it
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
            o.error = v.reason + (message.empty() ? "" : ": " + message);
            ++report_.failed;
        }
        complete(std::move(o), work.item);
    }

    void release(dispatch::Outgoing out) override { out_.erase(out.key); }  // still pending in the journal

    // The loop's last call: every outcome recorded, its bytes durable first.
    void flush() override {
        settle(true);
        begin_commit();
        settle(true);
    }

    void on_tick(Millis now, dispatch::RunProgress& progress) override {
        settle(false);
        if (now - flushed_at_ >= 200) checkpoint();
        // The journal's deferred commits are made durable beside the fetching (a sync of its
        // log on a thread of its own), so its one-second bound never stops the loop for one.
        if (journal_.db.synced(log_sync_) && journal_.db.total_changes() != changes_synced_) {
            changes_synced_ = journal_.db.total_changes();
            log_sync_ = journal_.db.begin_sync();
        }
        progress.read = report_.items;
        progress.finished = report_.done + report_.missing + report_.failed;
        progress.failed = report_.failed;
    }

private:
    struct Work {
        journal::PullItem item;
        int attempts = 0;
    };

    // The next pending items; when none is left, the source's next batches first. For at most
    // 50 ms: a resumed run re-reads the part of its source it had journaled (every batch adds
    // nothing), and the loop must go on taking answers, ticking and feeding the watchdog; it
    // calls again at once (wake_at) while the source is not read to its end.
    void refill() {
        auto until = dispatch::SteadyClock::now() + std::chrono::milliseconds(50);
        for (;;) {
            for (auto& item : journal_.pulls.pending(job_.name, cursor_, 500)) {
                cursor_ = item.seq;
                page_.push_back(std::move(item));
            }
            if (!page_.empty()) return;
            if (!enumerator_.step()) {
                exhausted_ = true;
                return;
            }
            if (dispatch::SteadyClock::now() >= until) return;
        }
    }

    api::ApiRequest request_for(const journal::PullItem& item) const {
        const auto& id = item.item;
        std::string history = pull_.history ? std::string(config::to_string(*pull_.history)) : "";
        api::RequestBuilder::ReadFlags flags{pull_.implied, pull_.match_inactive};
        if (id.starts_with("pid:")) {
            auto pid = std::stoll(id.substr(4));
            return pull_.history ? requests_.history(history, pid, pull_.filter_id) : requests_.read(pid, flags);
        }
        if (id.starts_with("alt:")) {
            auto sep = id.find(kSep);
            auto type = id.substr(4, sep - 4), value = id.substr(sep + 1);
            return pull_.history ? requests_.history(history, type, value, pull_.filter_id)
                                 : requests_.read(type, value, flags);
        }
        const auto& search = pull_.searches.at(std::stoul(id.substr(7)));
        auto params = search.params;
        bool has_implied = std::any_of(params.begin(), params.end(), [](auto& p) { return p.first == "implied"; });
        if (pull_.implied && !has_implied && api::search_takes_implied(search.endpoint))
            params.emplace_back("implied", "true");
        auto request = requests_.search(search.endpoint, params);
        request.operation = api::Operation::Search;
        return request;
    }

    void retry(Work work, const http::HttpResponse& r, const dispatch::Verdict& v) {
        ++report_.retries;
        if (v.give_up) {
            journal::PullOutcome o{work.item.seq,
                                   "failed",
                                   r.status,
                                   "gave up after " + std::to_string(work.attempts + 1) + " attempts: " + v.reason,
                                   "",
                                   "",
                                   "",
                                   {}};
            ++report_.failed;
            return complete(std::move(o), work.item);
        }
        if (v.counted) ++work.attempts;
        retries_.emplace(base::now_ms() + v.delay.count(), std::move(work));
    }

    void write(const Work& work, const http::HttpResponse& r, journal::PullOutcome o) {
        auto parse_start = dispatch::SteadyClock::now();
        auto problem = reader_.read(r.body, profiles_);
        report_.parse_seconds += std::chrono::duration<double>(dispatch::SteadyClock::now() - parse_start).count();
        report_.bytes_parsed += r.body.size();
        if (!problem.empty()) {
            o.state = "failed";
            o.error = "unreadable answer: " + problem;
            ++report_.failed;
            return complete(std::move(o), work.item);
        }
        o.state = "done";
        std::string not_written;  // a profile the sink cannot hold fails the item; the others are written
        for (const auto& p : profiles_) {
            if (p.profile_id && seen.contains(*p.profile_id)) {
                ++report_.duplicates;  // written already (a search found it first): not twice
            } else {
                if (auto problem = output_.write(p.json); !problem.empty()) {
                    not_written = std::move(problem);
                    continue;
                }
                if (p.profile_id) {
                    // Written: recorded with the item's outcome (pull_seen holds a search's
                    // further ones), so a resumed run does not write it again.
                    seen.insert(*p.profile_id);
                    if (!o.profile_id)
                        o.profile_id = p.profile_id;
                    else
                        seen_batch_.push_back(*p.profile_id);
                }
                ++report_.profiles;
            }
            // Compared whoever wrote the profile: a reconciled item is identical or differing.
            if (!work.item.expected.empty()) {
                auto diffs = differing_fields(work.item.expected, p.json);
                o.state = diffs.empty() ? "identical" : "differing";
                for (const auto& d : diffs) o.detail += (o.detail.empty() ? "" : ", ") + d;
            }
        }
        if (!not_written.empty()) {
            o.state = "failed";
            o.error = "not written: " + not_written;
            o.detail.clear();
            ++report_.failed;
            return complete(std::move(o), work.item);
        }
        ++report_.done;
        complete(std::move(o), work.item);
    }

    // Each item that failed or is missing is named once, by where it came from and why (never
    // by a profile's body: personal data).
    void complete(journal::PullOutcome o, const journal::PullItem& item) {
        if (o.state == "missing" || o.state == "failed")
            base::logger().warn(o.state == "missing" ? "Profile missing" : "Fetch failed",
                                {{"identity", describe_item(item.item)}, {"origin", item.origin}, {"reason", o.error}});
        outcomes_.push_back(std::move(o));
        // Each commit is an fsync of the output: a few hundred outcomes at a time and at most
        // every 100 ms unless thousands wait (as pushes record theirs).
        if (outcomes_.size() < 500) return;
        if (outcomes_.size() >= 4096 || base::now_ms() - flushed_at_ >= 100) checkpoint();
        // A disk slower than the fetching: wait for it rather than hold ever more outcomes.
        if (outcomes_.size() >= 65536) {
            settle(true);
            checkpoint();
        }
    }

    // Records what a finished commit made durable, then starts the next one if none is
    // running: the output's fsync runs beside the fetching instead of stopping it.
    void checkpoint() {
        settle(false);
        if (!committing_) begin_commit();
        settle(false);
    }

    // The output's bytes are made durable before the journal says which items they hold
    // (on a thread of their own for a file); outcomes answered meanwhile wait for the next.
    void begin_commit() {
        if (committing_ || outcomes_.empty()) return;
        auto offset = output_.begin_commit();
        committing_ = Committing{std::exchange(outcomes_, {}), std::exchange(seen_batch_, {}), offset};
        flushed_at_ = base::now_ms();
    }

    // Once the output's commit is durable: its outcomes in the journal. Without an fsync:
    // a power loss can only undo the newest of them (never one without the next), and the
    // resumed run then cuts the output back to the size they recorded and fetches their
    // items again. A later durable commit covers them (the run's end is one).
    void settle(bool wait) {
        if (!committing_ || !output_.commit_done(wait)) return;
        journal_.pulls.complete(job_.name, committing_->outcomes, committing_->seen, committing_->offset,
                                journal::Database::Sync::deferred);
        committing_.reset();
    }

    const config::JobConfig& job_;
    const config::PullConfig& pull_;
    journal::Journal& journal_;
    const api::RequestBuilder& requests_;
    Output& output_;
    PullReport& report_;
    Enumerator& enumerator_;
    ResponseReader reader_;
    std::vector<PulledProfile> profiles_;
    std::deque<journal::PullItem> page_;
    std::multimap<Millis, Work> retries_;
    std::unordered_map<std::uint64_t, Work> out_;
    std::vector<journal::PullOutcome> outcomes_;
    std::vector<std::int64_t> seen_batch_;
    std::uint64_t next_key_ = 0;
    std::int64_t cursor_ = 0;
    struct Committing {
        std::vector<journal::PullOutcome> outcomes;
        std::vector<std::int64_t> seen;
        std::int64_t offset = 0;
    };
    std::optional<Committing> committing_;  // outcomes whose output bytes are being made durable
    Millis flushed_at_ = 0;
    std::uint64_t log_sync_ = 0;       // the journal's last sync begun (Database::begin_sync)
    std::int64_t changes_synced_ = 0;  // the journal's total_changes() when it began
    bool exhausted_ = false;
};

// The differing fields are personal data: written 0600 whatever the umask, never through a
// symbolic link at its path, and atomically (a temporary file renamed over the old report),
// so a reader never sees half a report and a crash leaves the previous one whole.
// Throws std::runtime_error naming the file when it cannot be written (after the run is
// recorded: the pull itself is done, only its report is missing).
void write_reconcile_report(const config::Config& config, const config::JobConfig& job, journal::Journal& journal,
                            PullReport& report) {
    auto dir = std::filesystem::path(config.journal.path).parent_path() / "reports";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto path = (dir / (job.name + ".reconcile.jsonl")).string();
    auto fail = [&](const std::string& why) {
        throw std::runtime_error("cannot write the reconcile report " + path + ": " + why);
    };
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        fail("it is a symbolic link; refusing to write personal data through it (remove the link)");
    // A fixed temporary name, removed first: O_EXCL then creates it afresh with our mode
    // (a leftover from a crash would keep its own), and a stale one never piles up.
    auto tmp = path + ".tmp";
    ::unlink(tmp.c_str());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) fail(std::strerror(errno));
    std::string out;
    auto write_out = [&] {
        for (std::size_t done = 0; done < out.size();) {
            auto n = ::write(fd, out.data() + done, out.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int err = n < 0 ? errno : EIO;
                ::close(fd);
                ::unlink(tmp.c_str());
                fail(std::strerror(err));
            }
            done += static_cast<std::size_t>(n);
        }
        out.clear();
    };
    auto line = [&](const journal::PullOutcome& o, const char* state, const std::string& detail) {
        out += "{\"state\":";
        base::append_json_string(out, state);
        out += ",\"origin\":";
        base::append_json_string(out, o.origin);
        out += ",\"fields\":";
        base::append_json_string(out, detail);
        out += "}\n";
        if (out.size() >= 64 * 1024) write_out();
    };
    for (const auto& o : journal.pulls.outcomes(job.name, "differing", 1 << 30)) line(o, "differing", o.detail);
    for (const auto& o : journal.pulls.outcomes(job.name, "missing", 1 << 30)) line(o, "missing", o.error);
    for (const auto& o : journal.pulls.outcomes(job.name, "failed", 1 << 30)) line(o, "failed", o.error);
    write_out();
    // Durable before it takes the report's name: a crash must not leave an empty report.
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fail(std::strerror(err));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        fail(std::strerror(err));
    }
    report.reconcile_report = path;
}

}  // namespace

journal::RunRecord run_record(const config::JobConfig& job, const PullReport& report) {
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
    if (!report.fatal.empty())
        r.reason = report.fatal;
    else if (!report.unavailable.empty())
        r.reason = report.unavailable;
    else if (report.interrupted || report.exit_code == 4)
        r.reason = "stopped before its end: the next run resumes it";
    else if (report.exit_code == 2)
        r.reason = std::to_string(report.missing) + " not found, " + std::to_string(report.failed) + " failed, " +
                   std::to_string(report.differing) + " differing, " + std::to_string(report.rejected) + " rejected";
    return r;
}

std::string describe_item(const std::string& item) {
    if (item.starts_with("pid:")) return "profile:" + item.substr(4);
    if (item.starts_with("alt:")) {
        auto text = item.substr(4);
        if (auto sep = text.find(kSep); sep != std::string::npos) text[sep] = ':';
        return text;
    }
    if (item.starts_with("search:")) return "searches[" + item.substr(7) + "]";
    return item;
}

void run_pull(const dispatch::RunContext& c, const config::JobConfig& job, PullReport& report) {
    auto& journal = c.journal;
    auto started = dispatch::SteadyClock::now();
    const auto& sink = *job.sink;
    report.output = describe_output(sink);
    auto stopped = [&] { return c.stop && c.stop->load(); };

    auto state = journal.pulls.state(job.name);
    auto last = journal.runs.last(job.name, "pull");
    // A run that did not complete: still open, or ended by anything but a complete run (0, 2):
    // a signal or fatal answer (4, 3), or an error it was aborted by (3, or 1 for the config).
    report.resumed = state && last && last->id == state->run_id &&
                     (last->ended_at == 0 || (last->exit_code != 0 && last->exit_code != 2));
    auto fingerprint = pull_fingerprint(c.config, job);
    if (report.resumed && !state->fingerprint.empty() && state->fingerprint != fingerprint) {
        // Its items are keyed by position and its output holds the old settings' rows:
        // resumed, it would lose results or mix two layouts.
        report.resumed = false;
        base::logger().warn(
            "Pull settings changed since the unfinished run of job " + job.name + "; starting afresh",
            {{"job", job.name}, {"run", state->run_id}, {"output", discard_partial(state->partial_path)}});
    }
    if (report.resumed && !can_resume(sink, state->sink_offset)) {
        // The partial output is gone or shorter than the journal recorded (removed by hand,
        // or a crash between finishing and renaming): starting over is the only safe way.
        base::logger().warn(
            "The partial output of the interrupted pull is missing or shorter than recorded; starting over",
            {{"run", state->run_id}});
        report.resumed = false;
    }
    std::int64_t offset = 0;
    if (report.resumed) {
        report.run_id = state->run_id;
        offset = state->sink_offset;
        journal.pulls.adopt_settings(job.name, fingerprint, partial_path(sink));  // journaled before fingerprints
        base::logger().info("Resuming the pull: finished items are not fetched again", {{"run", report.run_id}});
    } else {
        report.run_id = journal.runs.begin(job.name, "pull", now_ms());
        journal.pulls.begin(job.name, report.run_id, fingerprint, partial_path(sink));
    }
    base::LogScope log_scope(job.name, report.run_id);
    dispatch::Dispatcher dispatcher(c, job.name);
    auto output = open_output(sink, offset);
    if (report.resumed)
        for (const auto& [state, n] : journal.pulls.counts(job.name)) report.items += n;
    Enumerator enumerator(c, job, report);

    PullProducer producer(job, journal, dispatcher.requests(), *output, report, enumerator);
    // Profiles the interrupted run wrote are not written again (searches overlap).
    if (report.resumed)
        for (auto id : journal.pulls.seen_ids(job.name)) producer.seen.insert(id);
    if (!stopped()) {
        dispatcher.run(producer);
        report.fatal = dispatcher.fatal();
    }
    enumerator.finish();
    // As before anything was fetched: the run ends with the exception's exit code, and the
    // next one resumes it (what was fetched is recorded and not fetched again).
    if (!enumerator.source_error().empty()) throw connectors::SourceError(enumerator.source_error());

    report.rows = output->rows;
    auto counts = journal.pulls.counts(job.name);
    // An outage that outlasted the probes, or throttling that outlasted retry.max_throttled.
    report.unavailable = dispatcher.unavailable();
    report.interrupted = stopped() || !report.unavailable.empty();
    bool complete = report.fatal.empty() && !report.interrupted && enumerator.ended() && counts["pending"] == 0;
    // The run's distinct items, as journaled (a resumed run's included; a repeated id once).
    report.items = 0;
    for (const auto& [state, n] : counts) report.items += n;
    report.done = counts["done"] + counts["identical"] + counts["differing"];
    report.missing = counts["missing"];
    report.failed = counts["failed"];
    report.identical = counts["identical"];
    report.differing = counts["differing"];
    if (complete) output->commit();
    report.seconds = std::chrono::duration<double>(dispatch::SteadyClock::now() - started).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    report.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    if (!report.fatal.empty())
        report.exit_code = 3;
    else if (!complete)
        report.exit_code = 4;
    else if (report.missing + report.failed + report.differing + report.rejected > 0)
        report.exit_code = 2;

    // Recorded as finished before the output takes its final name: a crash in between
    // leaves a run that is not resumed (so a fresh .partial is never "resumed" into NUL
    // bytes), and the previous export stays in place until the next run replaces it.
    journal.runs.end(run_record(job, report), now_ms());
    if (complete) {
        output->publish();
        if (!job.pull->reconcile.empty()) write_reconcile_report(c.config, job, journal, report);
    }
    dispatch::end_of_run_retention(c);
}

}  // namespace prefsync::pull
