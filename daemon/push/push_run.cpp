#include "daemon/push/push_run.hpp"

#include <cstdio>

#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/push/intake.hpp"

namespace prefsync::push {
namespace {

using base::now_ms;

bool stop_requested(const dispatch::RunContext& c) {
    return c.stop && c.stop->load();
}

// Phase 1: source → mapper → journal, in transactions of a thousand rows. An incremental
// source's position is stored in the same transaction as the rows read up to it, so the
// watermark never runs ahead of what is journaled. A source that fails mid-way (a lost
// database connection) ends the reading, not the run: what was journaled is still sent.
// After a complete read of a full snapshot, the profiles whose rows left it (and rows a
// deleted_column marks) are journaled for removal, within max_missing.
void enqueue_all(const dispatch::RunContext& c, const config::JobConfig& job, const PushOptions& options,
                 std::optional<std::int64_t> backfill_run, PushReport& report) {
    auto& journal = c.journal;
    bool force = options.backfill;
    Intake intake(c, job, !force);
    struct Removal {
        std::string identity, alt_type, alt_id, origin;
        std::optional<std::int64_t> profile_id;
    };
    std::vector<Removal> removals;  // rows the source marks deleted
    std::vector<IntakeRow> batch;
    while (intake.next(batch)) {
        journal::Database::Transaction tx(journal.db);
        auto now = now_ms();
        for (auto& r : batch) {
            if (!r.mapped) continue;
            auto& m = *r.mapped;
            if (r.duplicate) intake.note_duplicate(r);
            if (m.deleted) {
                if (auto known = journal.synced.get(job.name, m.identity.key()); known && known->gone.empty())
                    removals.push_back({m.identity.key(), m.identity.alternate_id_type, m.identity.alternate_id,
                                        r.row->origin,
                                        m.identity.profile_id ? m.identity.profile_id : known->profile_id});
                continue;
            }
            journal::NewUpdate u;
            u.identity = m.identity.key();
            u.alt_type = m.identity.alternate_id_type;
            u.alt_id = m.identity.alternate_id;
            u.profile_id = m.identity.profile_id;
            u.origin = r.row->origin;
            u.body = std::move(m.body);
            u.hash = std::move(m.hash);
            switch (journal.updates.enqueue(job.name, u, now, force, backfill_run)) {
                case journal::EnqueueResult::Queued: ++report.queued; break;
                case journal::EnqueueResult::Unchanged: ++report.unchanged; break;
                case journal::EnqueueResult::AlreadyPending:
                case journal::EnqueueResult::AlreadyInRun: break;
            }
        }
        if (auto position = intake.position())
            journal.watermarks.set(job.name, intake.source_identity(), {position->value, position->key}, now);
        // Rejects first: a row is in the reject file before the watermark moves past it.
        intake.flush_rejects();
        tx.commit();
    }
    intake.finish();
    report.read = intake.read;
    report.rejected = intake.rejected;
    report.duplicates = intake.duplicates;
    report.source_error = intake.source_error();
    if (job.on_missing == config::OnMissing::Ignore) return;
    if (intake.complete_snapshot()) {
        journal.synced.for_each_present(job.name, [&](const journal::KnownIdentity& k) {
            if (!intake.seen(k.identity))
                removals.push_back({k.identity, k.alt_type, k.alt_id, "no longer in the source", k.profile_id});
        });
    }
    report.missing = static_cast<std::int64_t>(removals.size());
    auto verdict =
        judge_missing(job, report.missing, journal.synced.count_present(job.name), options.allow_mass_delete);
    if (!verdict.allowed) {
        report.missing_refused = verdict.refusal;
        base::logger().warn("Profiles no longer in the source left alone",
                            {{"missing", report.missing}, {"reason", verdict.refusal}});
        return;
    }
    journal::Database::Transaction tx(journal.db);
    for (const auto& r : removals)
        if (journal.updates.enqueue(job.name,
                                    removal_update(job, r.identity, r.alt_type, r.alt_id, r.profile_id, r.origin),
                                    now_ms(), true) == journal::EnqueueResult::Queued)
            ++report.queued;
    tx.commit();
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
    if (options.read_source) enqueue_all(c, job, options, options.backfill ? backfill_run : std::nullopt, report);
    if (auto n = journal.updates.release_dead_claims(job.name); n > 0)
        base::logger().info(
            "Resuming updates left in flight by a stopped process; each is checked before it is re-sent",
            {{"updates", n}});
    if (!stop_requested(c)) {
        PushProducer producer(
            job, journal, dispatcher.requests(), dispatch::loop_settings(c.config, job.name).max_in_flight,
            PushProducer::lease_for(c.config), report, c.progress_tty ? Progress::Terminal : Progress::Lines);
        dispatcher.run(producer);
        producer.release_unsent();
        report.fatal = dispatcher.fatal();
    }
    report.connections = dispatcher.connections();
    if (c.progress_tty) std::fprintf(stderr, "\r\033[K");
    report.pending = journal.updates.counts(job.name).pending();
    report.interrupted = stop_requested(c);
    report.seconds = std::chrono::duration<double>(dispatch::SteadyClock::now() - started).count();
    if (!report.fatal.empty() || !report.source_error.empty())
        report.exit_code = 3;
    else if (report.interrupted)
        report.exit_code = 4;
    else if (report.failed > 0 || report.rejected > 0 || !report.missing_refused.empty())
        report.exit_code = 2;
    else
        report.exit_code = 0;

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
    r.duplicates = report.duplicates;
    r.missing = report.missing;
    journal.runs.end(r, now_ms());
    journal.apply_retention(now_ms(), c.config.journal.retain_days);
    return report;
}

}  // namespace prefsync::push
