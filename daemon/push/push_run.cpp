#include "daemon/push/push_run.hpp"

#include <cstdio>

#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/mapping/mapper.hpp"

namespace prefsync::push {
namespace {

using base::now_ms;

bool stop_requested(const dispatch::RunContext& c) { return c.stop && c.stop->load(); }

// Phase 1: source → mapper → journal, in transactions of a thousand rows. An incremental
// source's position is stored in the same transaction as the rows read up to it, so the
// watermark never runs ahead of what is journaled. A source that fails mid-way (a lost
// database connection) ends the reading, not the run: what was journaled is still sent.
void enqueue_all(const dispatch::RunContext& c, const config::JobConfig& job, bool force,
                 std::optional<std::int64_t> backfill_run, PushReport& report) {
    auto& journal = c.journal;
    auto source_identity = connectors::position_identity(job.source);
    std::optional<connectors::Position> since;
    // A backfill reads everything; a sync only what is past the watermark.
    if (job.source.incremental() && !force)
        if (auto mark = journal.watermarks.get(job.name, source_identity)) since = connectors::Position{mark->value, mark->key};
    auto source = connectors::open_source(job.source, since);
    auto mapper = mapping::Mapper::compile(job, source->columns());
    base::logger().info("Reading",
                        {{"source", source->describe()}, {"job", job.name}, {"past_watermark", since.has_value()}});
    connectors::RejectFile rejects(job.source.reject_file, job.name);
    dispatch::RunProgress progress;
    progress.job = job.name;
    dispatch::Heartbeat heartbeat(c.observer, progress);
    std::vector<connectors::Row> rows;
    while (!stop_requested(c)) {
        try {
            if (!source->next_batch(rows, 1000)) break;
        } catch (const connectors::SourceError& e) {
            report.source_error = e.what();
            break;
        }
        journal::Database::Transaction tx(journal.db);
        auto now = now_ms();
        for (const auto& row : rows) {
            ++report.read;
            progress.read = report.read;
            heartbeat.beat();
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
            switch (journal.updates.enqueue(job.name, u, now, force, backfill_run)) {
                case journal::EnqueueResult::Queued: ++report.queued; break;
                case journal::EnqueueResult::Unchanged: ++report.unchanged; break;
                case journal::EnqueueResult::AlreadyPending:
                case journal::EnqueueResult::AlreadyInRun: break;
            }
        }
        if (auto position = source->position())
            journal.watermarks.set(job.name, source_identity, {position->value, position->key}, now);
        // Rejects first: a row is in the reject file before the watermark moves past it.
        rejects.flush();
        tx.commit();
    }
    rejects.flush();
    if (report.rejected > 0)
        base::logger().warn("Rows rejected", {{"rejected", report.rejected}, {"reject_file", rejects.path()}});
}

}  // namespace

PushReport run_push(const dispatch::RunContext& c, const config::JobConfig& job, const PushOptions& options) {
    auto& journal = c.journal;
    PushReport report;
    auto started = dispatch::SteadyClock::now();
    std::string kind = options.backfill ? "backfill" : (options.read_source ? "sync" : "retry");
    std::optional<std::int64_t> backfill_run;
    if (options.backfill && options.resume) {
        auto last = journal.runs.last(job.name, "backfill");
        if (last && last->exit_code != 0) backfill_run = last->id;
    }
    report.run_id = backfill_run ? *backfill_run : journal.runs.begin(job.name, kind, now_ms());
    if (options.backfill && !backfill_run) backfill_run = report.run_id;
    base::LogScope log_scope(job.name, report.run_id);

    // Built before reading: a bad base_url or ca_file stops the run before anything changes.
    dispatch::Dispatcher dispatcher(c, job.name);
    if (options.read_source) enqueue_all(c, job, options.backfill, options.backfill ? backfill_run : std::nullopt, report);
    if (auto n = journal.updates.release_dead_claims(job.name); n > 0)
        base::logger().info(
            "Resuming updates left in flight by a stopped process; each is checked before it is re-sent",
            {{"updates", n}});
    if (!stop_requested(c)) {
        PushProducer producer(job, journal, dispatcher.requests(), dispatch::loop_settings(c.config, job.name).max_in_flight,
                              PushProducer::lease_for(c.config), report,
                              c.progress_tty ? Progress::Terminal : Progress::Lines);
        dispatcher.run(producer);
        producer.release_unsent();
        report.fatal = dispatcher.fatal();
    }
    report.connections = dispatcher.connections();
    if (c.progress_tty) std::fprintf(stderr, "\r\033[K");
    report.pending = journal.updates.counts(job.name).pending();
    report.interrupted = stop_requested(c);
    report.seconds = std::chrono::duration<double>(dispatch::SteadyClock::now() - started).count();
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
    journal.runs.end(r, now_ms());
    journal.apply_retention(now_ms(), c.config.journal.retain_days);
    return report;
}

}  // namespace prefsync::push
