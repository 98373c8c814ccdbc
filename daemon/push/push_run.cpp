#include "daemon/push/push_run.hpp"

#include <algorithm>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/push/intake.hpp"
#include "daemon/push/mirror.hpp"
#include "daemon/push/target_guard.hpp"

namespace prefsync::push {
namespace {

using base::now_ms;

bool stop_requested(const dispatch::RunContext& c) {
    return c.stop && c.stop->load();
}

// The read side of a run, as the request loop pulls it: source → mapper → journal, in
// transactions of up to a thousand rows (250 for a job that reads ahead). An incremental
// source's position is stored in the same transaction as the rows read up to it, so the
// watermark never runs ahead of what is journaled. A source that fails mid-way (a lost
// database connection) ends the reading, not the run: what was journaled is still sent.
// After a complete read of a full snapshot, the profiles whose rows left it (and rows a
// deleted_column marks) are journaled for removal, within max_missing.
//
// Sending overlaps reading, so a row could leave before a later row of the same identity is
// read. The last row must win on every run and an unchanged file must send nothing, so the
// rows of an identity the source had more than once before are held until the read ends
// (a later one supersedes them, or "unchanged" drops them); an identity that becomes a
// duplicate for the first time may have its earlier row sent, and the later one after it.
class SourceFeed final : public Feed {
public:
    SourceFeed(const dispatch::RunContext& c, const config::JobConfig& job, const PushOptions& options,
               std::optional<std::int64_t> backfill_run, std::int64_t run_id, journal::Millis lease,
               std::size_t claim_limit, PushReport& report)
        : c_(c),
          job_(job),
          options_(options),
          backfill_run_(backfill_run),
          run_id_(run_id),
          lease_(lease),
          claim_limit_(claim_limit),
          report_(report),
          intake_(c, job, !options.backfill),
          hold_duplicates_(c.journal.synced.any_duplicates(job.name)),
          idempotent_(PushProducer::idempotent(job)) {
        // A batch is read, mapped and journaled on the loop's thread, and every answer that
        // arrives meanwhile waits for it. A job that reads ahead (idempotent) takes a quarter
        // of the usual batch: the loop is held about 3 ms, not 12. Measured at 50 ms, C=512:
        // 0.90-0.91 of C÷RTT in 4 runs against 0.88-0.90 with 1000 (3 of 4 interleaved pairs
        // faster); pinned C=64 no measurable difference (4 of 7 pairs faster, medians 26,297
        // against 27,014 rows/s). The price: one batch syncs at a time and the next is read
        // once it is over, so the feed journals at most 250 rows per sync and read: some
        // 54,000 rows/s at the 1.6 ms a sync took on the benchmark machine, 11,000 at a slow
        // disk's 20 ms (docs/ARCHITECTURE.md, 5.1). The others wait for each batch's sync before sending
        // it, so they keep the larger batch and do a quarter as many syncs.
        intake_.batch_rows(idempotent_ ? 250 : 1000);
    }

    bool more() override {
        if (finished_) return false;
        take_up_marked();
        if (intake_.next(batch_)) {
            journal_batch();
            return true;
        }
        finish();
        return true;
    }

    // The loop ended before the read did (a stop, a fatal answer): what the read found so
    // far is settled as after a read cut short.
    void close() {
        if (!finished_) finish();
    }

    std::vector<journal::ClaimedUpdate> take_claimed() override { return std::exchange(claimed_, {}); }

private:
    void journal_batch() {
        auto& journal = c_.journal;
        // Without waiting for the disk: the producer sends this batch's claims only once the
        // write-ahead log's sync it begins after more() is over (it runs beside the sending).
        // A power loss before that undoes the batch whole, watermark included: nothing of it
        // was sent, and the source is read again from where the journal stands.
        journal::Database::Transaction tx(journal.db, journal::Database::Sync::deferred);
        auto now = now_ms();
        // A row is journaled already claimed (sent at once) unless a later row of its identity
        // is in this batch too: then the later one replaces it before anything is sent.
        std::unordered_set<std::string> repeated;
        for (auto& r : batch_)
            if (r.mapped && r.duplicate) repeated.insert(r.mapped->identity.key());
        std::vector<journal::ClaimedUpdate> claimed;
        std::optional<journal::ClaimedUpdate> one;
        for (auto& r : batch_) {
            // A loaded machine can make a batch's inserts outlast the watchdog's interval.
            intake_.beat();
            if (!r.mapped) {
                // Its body rejected, but not marked deleted: the source lists the identity, so
                // the row takes back a removal an earlier row (or read) marked, as the removals
                // of rows that left count it present (Intake::seen()).
                if (!r.unmarked_rejected.empty()) cancel_removal(r.unmarked_rejected);
                continue;
            }
            auto& m = *r.mapped;
            auto identity = m.identity.key();
            // The identity's last row so far decides: a later one replaces a skipped row.
            if (!still_refused_.empty()) still_refused_.erase(identity);
            if (r.duplicate) {
                intake_.note_duplicate(r);
                journal.synced.note_duplicate(job_.name, identity, run_id_);
            }
            if (m.deleted) {
                auto known = journal.synced.get(job_.name, identity);
                std::optional<std::int64_t> profile_id;
                bool remove = false;
                if (known && known->gone.empty()) {
                    remove = true;
                    profile_id = known->profile_id;
                } else if (auto unsettled = journal.updates.unsettled_of(job_.name, identity)) {
                    // Known only by writes not yet settled: one that may have landed made a
                    // profile, removed like a synced one; writes that never reached the API
                    // are dropped (sent, or retried, they would make the profile of a row
                    // the source deleted). Dropped at once, in this batch with the source's
                    // watermark: after a kill, an incremental source does not read this row
                    // again. A later row of the identity queues its body anew. A failure the
                    // API refused waits for the read's end (a later row of the identity would
                    // otherwise send that body again).
                    remove = unsettled->may_exist;
                    profile_id = unsettled->profile_id;
                    if (!remove) {
                        journal.updates.drop_unsent_writes(job_.name, identity,
                                                           journal::UpdateQueue::Failures::ExceptRefused, now);
                        drop_refused_at_end_.insert(identity);
                    }
                }
                // Its writes wait for the read's end (due during the read, one went out first),
                // where settle_removals() has the removal take their place (or, refused, keep
                // them held). A failure the API refused stays one until then: a later row of
                // the identity may take the removal back, and the body must then still be
                // known as refused.
                if (remove) {
                    journal.updates.hold_writes(job_.name, identity, journal::UpdateQueue::Failures::ExceptRefused,
                                                now);
                    // A profile that may exist is a known one for max_missing (counted from
                    // `synced` alone, 20 such deletes were "20 of 10 known profiles").
                    // Once per identity, as its removal.
                    bool counted = known && known->gone.empty();
                    if (mark_removal({identity, m.identity.alternate_id_type, m.identity.alternate_id, r.row->origin,
                                      m.identity.profile_id ? m.identity.profile_id : profile_id, !counted}) &&
                        !counted)
                        ++deleted_unsettled_;
                }
                continue;
            }
            cancel_removal(identity);
            journal::NewUpdate u;
            u.identity = std::move(identity);
            u.alt_type = m.identity.alternate_id_type;
            u.alt_id = m.identity.alternate_id;
            u.profile_id = m.identity.profile_id;
            u.origin = r.row->origin;
            u.body = std::move(m.body);
            u.hash = std::move(m.hash);
            u.held = r.duplicate || (hold_duplicates_ && journal.synced.was_duplicate(job_.name, u.identity));
            u.keeps_body = job_.mode == config::Mode::Mirror;
            // A crash leaves what was claimed but not yet sent to be resolved first (a create
            // looked up, a delete's 404 taken as done): no more of it than claim() would take,
            // unless sending it again is all resolving means (then the producer also reads
            // ahead, until twice a claim's worth waits to be sent).
            bool at_once = !repeated.contains(u.identity) && (idempotent_ || claimed.size() < claim_limit_);
            auto result = !at_once ? journal.updates.enqueue(job_.name, u, now, options_.backfill, backfill_run_,
                                                             journal::Database::Sync::deferred)
                                   : journal.updates.enqueue_claimed(job_.name, std::move(u), now, options_.backfill,
                                                                     backfill_run_, lease_, one,
                                                                     journal::Database::Sync::deferred);
            if (one) {
                claimed.push_back(std::move(*one));  // moved once (through std::exchange, twice)
                one.reset();
            }
            if (result == journal::EnqueueResult::StillRefused) still_refused_.insert(m.identity.key());
            switch (result) {
                case journal::EnqueueResult::Queued: ++report_.queued; break;
                case journal::EnqueueResult::QueuedWithoutBase:
                    ++report_.queued;
                    // Per identity: a duplicate id's later row replaces the earlier one.
                    if (without_base_.insert(m.identity.key()).second) ++report_.without_base;
                    break;
                case journal::EnqueueResult::Unchanged:
                    ++report_.unchanged;
                    // A later row of a duplicate id back at what the API has: nothing goes out.
                    if (!without_base_.empty() && without_base_.erase(m.identity.key()) > 0) --report_.without_base;
                    break;
                case journal::EnqueueResult::AlreadyPendingFromEarlier: ++report_.from_earlier; break;
                case journal::EnqueueResult::StillRefused:  // counted per identity: still_refused_
                case journal::EnqueueResult::AlreadyPending:
                case journal::EnqueueResult::AlreadyInRun: break;
            }
        }
        if (auto position = intake_.position())
            journal.watermarks.set(job_.name, intake_.source_identity(), {position->value, position->key}, now);
        // Rejects first: a row is in the reject file before the watermark moves past it.
        intake_.flush_rejects();
        tx.commit();
        // Handed over only once they are committed: a batch rolled back claims nothing.
        for (auto& c : claimed) claimed_.push_back(std::move(c));
        report_.read = intake_.read;
        report_.rejected = intake_.rejected;
        report_.duplicates = intake_.duplicates;
    }

    // The read's end in one transaction: what it releases and what it holds again, drops
    // or journals for removal (killed between them, writes of rows that left went out).
    void finish() {
        finished_ = true;
        take_up_marked();
        journal::Database::Transaction tx(c_.journal.db);
        settle_read();
        tx.commit();
    }

    // The removals of rows an earlier read (a sync's or a backfill's) of a source with a
    // watermark marked deleted and did not journal (its run killed before the read's end, or
    // max_missing refused them): the source's next read starts past those rows and never
    // sees them again. They are this read's now: counted against max_missing, taken back by
    // a later row of theirs, journaled (or refused) at its end. Once, before the first batch
    // (after the run took over what the killed one left in flight), or at the end of a read
    // that never began (a stop). Not by a read of the whole source (a snapshot, a backfill),
    // which reads those rows again and decides anew, nor by a job that no longer has a
    // deleted_column.
    void take_up_marked() {
        if (marked_taken_) return;
        marked_taken_ = true;
        auto& journal = c_.journal;
        auto records = journal.marked.of(job_.name);
        any_records_ = !records.empty();
        if (records.empty() || job_.deleted_column.empty()) return;
        if (intake_.snapshot()) {
            // Decided anew as this read reaches them: an unmarked row ends its identity's
            // record (cancel_removal()), a marked one is this read's removal, journaled (and
            // its record ended) with the others. Records of rows it does not reach stay.
            for (auto& r : records) recorded_.insert(std::move(r.identity));
            return;
        }
        for (auto& r : records) {
            auto known = journal.synced.get(job_.name, r.identity);
            bool counted = known && known->gone.empty();
            if (add_removal({std::move(r.identity), std::move(r.alt_type), std::move(r.alt_id), std::move(r.origin),
                             r.profile_id, !counted}) &&
                !counted)
                ++deleted_unsettled_;
        }
    }

    void settle_read() {
        auto& journal = c_.journal;
        intake_.finish();
        report_.read = intake_.read;
        report_.rejected = intake_.rejected;
        report_.duplicates = intake_.duplicates;
        report_.source_error = intake_.source_error();
        report_.source_changed = intake_.source_changed();
        report_.source_warning = intake_.end_warning();
        journal::Database::Transaction tx(journal.db);
        // Held rows wait for the end of the read; a read cut short leaves them held for the
        // next complete one (a later row of theirs may be in what was not read). What
        // hold_pending() held waits for the removals below (a write of a row that left is
        // dropped or held again, never released in between).
        if (intake_.read_to_end()) {
            journal.updates.release_held(job_.name, journal::UpdateQueue::Held::ExceptForRead);
            journal.synced.forget_duplicates_before(job_.name, run_id_);
        } else {
            // What hold_pending() held is no longer: this read cannot tell which rows left.
            report_.from_earlier += journal.updates.release_held(job_.name, journal::UpdateQueue::Held::ForRead);
            if (auto held = journal.updates.held(job_.name); held > 0)
                base::logger().warn(
                    "Updates held until the source is read to its end: their identity had more than one row, and "
                    "a later row may be in what was not read; the next complete read sends them",
                    {{"held", held}});
        }
        tx.commit();
        report_.still_refused = static_cast<std::int64_t>(still_refused_.size());
        if (report_.still_refused > 0)
            base::logger().warn(
                "Rows the API refused before are unchanged: not sent again (`prefsync retry` sends them)",
                {{"identities", report_.still_refused}});
        // A read cut short journals the removals of rows its part marked deleted.
        settle_removals();
        if (!intake_.read_to_end()) return;
        // Writes earlier runs left that no row replaced and no removal took: sent now.
        journal::Database::Transaction release_tx(journal.db);
        report_.from_earlier += journal.updates.release_held(job_.name, journal::UpdateQueue::Held::ForRead);
        release_tx.commit();
    }

    // After a read: the profiles whose rows left the source (or are marked deleted) removed,
    // or their writes dropped or held (judge_missing).
    void settle_removals() {
        auto& journal = c_.journal;
        // What rows marked deleted decided, now that no later row can take it back: their
        // refused failures dropped, or, where the profile is removed, held with their writes
        // (`retry` would send the body of a row the source deleted) for the removal to take
        // their place.
        std::int64_t marked_held = 0;
        {
            std::erase_if(removals_, [](const Removal& r) { return r.cancelled; });
            removed_.clear();
            for (std::size_t i = 0; i < removals_.size(); ++i) removed_.emplace(removals_[i].identity, i);
            journal::Database::Transaction tx(journal.db);
            for (const auto& identity : drop_refused_at_end_) journal.updates.drop_unsent_writes(job_.name, identity);
            for (const auto& r : removals_) marked_held += journal.updates.hold_writes(job_.name, r.identity);
            tx.commit();
            drop_refused_at_end_.clear();
        }
        // A record ends with its removal journaled below, in the same transaction (finish()
        // makes the whole settling one, so a kill before its end leaves them for the next
        // read), or with a later unmarked row of its identity. Refused by max_missing, they
        // stay for the next incremental read to judge again (it does not see those rows
        // again), which holds their writes again. A job that no longer judges removals of
        // rows marked deleted (its config changed since) drops them.
        if (any_records_ && (job_.on_missing == config::OnMissing::Ignore || job_.deleted_column.empty())) {
            journal::Database::Transaction tx(journal.db);
            journal.marked.clear(job_.name);
            tx.commit();
        }
        if (job_.on_missing == config::OnMissing::Ignore) return;
        // Rows the source marks deleted are removed either way; those that left it only when
        // every rejected row's identity is known.
        auto unknowable = intake_.complete_snapshot() ? intake_.missing_unknowable() : std::string();
        if (!unknowable.empty()) {
            report_.missing_refused = "profiles no longer in the source left alone: " + unknowable;
            base::logger().warn("Profiles no longer in the source left alone", {{"reason", unknowable}});
        }
        // Identities known only by a write that may have landed count too (their profile may
        // exist); writes that never reached the API of rows that left are dropped, or they
        // would still go out (pending) or be sent by `retry` (failed).
        std::int64_t known = 0;
        std::vector<std::string> unsent;
        if (intake_.complete_snapshot() && unknowable.empty()) {
            auto left = left_the_source(journal, intake_, job_.name);
            known = left.known;
            for (const auto& k : left.identities)
                add_removal({k.identity, k.alt_type, k.alt_id, std::string(kLeftTheSource), k.profile_id});
            unsent = std::move(left.unsent);
        } else {
            known = journal.synced.count_present(job_.name) + deleted_unsettled_;
            if (intake_.complete_snapshot()) {
                // Which rows left cannot be told (a rejected row's identity is unknown): the
                // writes of those not seen are neither sent (released by the read's end, they
                // went out for rows no longer in the source) nor dropped (one may be the
                // rejected row's): held for the next read.
                auto left = left_the_source(journal, intake_, job_.name);
                journal::Database::Transaction hold_tx(journal.db);
                std::int64_t held = 0;
                for (const auto& k : left.identities) held += journal.updates.hold_writes(job_.name, k.identity);
                for (const auto& identity : left.unsent) held += journal.updates.hold_writes(job_.name, identity);
                hold_tx.commit();
                log_held_writes(held);
            }
        }
        // Whatever the verdict on removals: dropping a write that never reached the API loses
        // nothing (a row that comes back is queued again), and released by the read's end it
        // would go out now.
        if (!unsent.empty()) {
            journal::Database::Transaction drop_tx(journal.db);
            std::int64_t dropped = 0;
            for (const auto& identity : unsent) dropped += journal.updates.drop_unsent_writes(job_.name, identity);
            drop_tx.commit();
            if (dropped > 0)
                base::logger().info(
                    "Writes the API never received of rows no longer in the source dropped (pending or failed)",
                    {{"identities", static_cast<std::int64_t>(unsent.size())}, {"updates", dropped}});
        }
        report_.missing = static_cast<std::int64_t>(removals_.size());
        auto verdict = judge_missing(job_, report_.missing, known, options_.allow_mass_delete);
        if (!verdict.allowed) {
            report_.missing_refused = verdict.refusal;
            base::logger().warn("Profiles no longer in the source left alone",
                                {{"missing", report_.missing}, {"reason", verdict.refusal}});
            // Their writes that may have landed, released by the read's end, would go out
            // now: held again until a read settles them (the row back, or the removal
            // allowed); not released by a run that reads nothing (`retry`, the daemon's).
            journal::Database::Transaction hold_tx(journal.db);
            std::int64_t held = 0;
            for (const auto& r : removals_) held += journal.updates.hold_writes(job_.name, r.identity);
            hold_tx.commit();
            log_held_writes(held + marked_held);
            return;
        }
        journal::Database::Transaction removal_tx(journal.db);
        if (any_records_)
            for (const auto& r : removals_) journal.marked.erase(job_.name, r.identity);
        for (const auto& r : removals_)
            if (journal.updates.enqueue(job_.name,
                                        removal_update(job_, r.identity, r.alt_type, r.alt_id, r.profile_id, r.origin),
                                        now_ms(), true) == journal::EnqueueResult::Queued)
                ++report_.queued;
        removal_tx.commit();
    }

    static void log_held_writes(std::int64_t held) {
        if (held > 0)
            base::logger().warn(
                "Writes of rows not in the source held until a complete read settles them (the row back: sent; "
                "its removal allowed: removed); neither `retry` nor the daemon's runs between reads send them",
                {{"updates", held}});
    }

    struct Removal {
        std::string identity, alt_type, alt_id, origin;
        std::optional<std::int64_t> profile_id;
        bool unsettled = false;  // counted in deleted_unsettled_
        bool cancelled = false;  // a later row took it back (cancel_removal)
    };
    // One removal per identity (two rows of it marked deleted counted twice against
    // max_missing).
    // False if `r`'s identity has its removal already.
    bool add_removal(Removal r) {
        if (!removed_.try_emplace(r.identity, removals_.size()).second) return false;
        removals_.push_back(std::move(r));
        return true;
    }
    // add_removal() for a row marked deleted, recorded in its batch's transaction too when the
    // source has a watermark, for its next incremental read if this one does not journal it
    // (take_up_marked()). A backfill of such a source too: it moves the watermark past the
    // row as a sync does.
    bool mark_removal(Removal r) {
        std::optional<journal::MarkedRemoval> recorded;
        if (job_.source.incremental() != nullptr)
            recorded = journal::MarkedRemoval{r.identity, r.alt_type, r.alt_id, r.origin, r.profile_id};
        if (!add_removal(std::move(r))) return false;
        if (recorded) {
            c_.journal.marked.put(job_.name, *recorded);
            any_records_ = true;
        }
        return true;
    }
    // A row of an identity an earlier row of this read marked deleted: the last row decides,
    // as for any repeated id, and this one keeps the profile (the deleted row's removal was
    // sent after it, deactivating a profile the source has). The writes the deleted row held
    // are released by the read's end with the rest (a read cut short: by the next complete
    // one).
    void cancel_removal(const std::string& identity) {
        if (!drop_refused_at_end_.empty()) drop_refused_at_end_.erase(identity);
        if (!recorded_.empty() && recorded_.erase(identity) > 0)
            c_.journal.marked.erase(job_.name, identity);  // in the batch's transaction, with this row
        if (removed_.empty()) return;
        auto it = removed_.find(identity);
        if (it == removed_.end()) return;
        auto& r = removals_[it->second];
        if (r.unsettled) --deleted_unsettled_;
        r.cancelled = true;
        removed_.erase(it);
        c_.journal.marked.erase(job_.name, identity);  // in the batch's transaction, with this row
    }
    const dispatch::RunContext& c_;
    const config::JobConfig& job_;
    const PushOptions& options_;
    std::optional<std::int64_t> backfill_run_;
    std::int64_t run_id_;
    journal::Millis lease_;
    std::size_t claim_limit_;
    PushReport& report_;
    Intake intake_;
    bool hold_duplicates_;
    bool idempotent_;
    std::vector<IntakeRow> batch_;
    std::vector<Removal> removals_;                         // rows the source marks deleted, then those that left it
    std::unordered_map<std::string, std::size_t> removed_;  // their identities: the index of each
    std::unordered_set<std::string> drop_refused_at_end_;   // marked deleted, a refused failure: dropped at the end
    std::int64_t deleted_unsettled_ = 0;                    // of them, marked deleted and known only by writes
    bool finished_ = false;
    bool marked_taken_ = false;  // take_up_marked() ran
    bool any_records_ = false;   // the job has records of marked removals (marked_removals)
    // A read of the whole source: the identities with such a record that no row of it has
    // reached yet (take_up_marked()).
    std::unordered_set<std::string> recorded_;
    std::vector<journal::ClaimedUpdate> claimed_;  // journaled already claimed, for take_claimed()
    // Identities whose last row so far was skipped as still refused (few: a set of names).
    std::unordered_set<std::string> still_refused_;
    std::unordered_set<std::string> without_base_;  // identities counted in report_.without_base
};

std::string kind_of(const PushOptions& options) {
    return options.backfill ? "backfill" : (options.read_source ? "sync" : "retry");
}

}  // namespace

std::string run_reason(const PushReport& r) {
    if (!r.fatal.empty()) return r.fatal;
    if (r.source_changed) return "the source changed while it was read: the next run reads it again";
    if (!r.source_error.empty()) return "source: " + r.source_error + " (the rows before it were read)";
    if (!r.unavailable.empty()) return r.unavailable;
    if (r.interrupted) return "stopped before its end: the next run continues";
    std::string out;
    auto add = [&](std::int64_t n, const std::string& what) {
        if (n > 0) out += (out.empty() ? "" : "; ") + std::to_string(n) + " " + what;
    };
    add(r.failed, "failed");
    add(r.failed_in_backfill > r.failed ? r.failed_in_backfill - r.failed : 0,
        "failed in earlier parts of the backfill");
    add(r.still_refused, "still refused (unchanged since the API refused them)");
    add(r.rejected, "rejected row(s)");
    if (!r.missing_refused.empty()) out += (out.empty() ? "" : "; ") + r.missing_refused;
    return out;
}

journal::RunRecord run_record(const config::JobConfig& job, const PushOptions& options, const PushReport& report) {
    journal::RunRecord r;
    r.id = report.run_id;
    r.job = job.name;
    r.kind = kind_of(options);
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
    r.reason = run_reason(report);
    return r;
}

void run_push(const dispatch::RunContext& c, const config::JobConfig& job, const PushOptions& options,
              PushReport& report) {
    auto& journal = c.journal;
    auto started = dispatch::SteadyClock::now();
    std::string kind = kind_of(options);
    // Before anything reads the job's state: it must be the config's API's.
    guard_target(journal, c.config, job, options.new_target ? TargetUse::Adopt : TargetUse::Check, now_ms());
    std::optional<std::int64_t> backfill_run;
    std::optional<journal::Millis> resumed_at;
    if (options.backfill && options.resume) {
        // Only a backfill that did not exit 0 is continued; after one that did, this starts a
        // new one (what `prefsync-backfill@.service` relies on: started again, it backfills
        // again; stopped midway, started again, it continues). One that ended with failures
        // (exit 2) is continued: a row rejected then and mended since is sent; the rows it
        // gave up on are counted, not sent again (`retry` sends them).
        auto last = journal.runs.last(job.name, "backfill");
        if (last && last->exit_code == 0)
            base::logger().info("The last backfill of the job finished (exit 0): starting a new one",
                                {{"job", job.name}, {"run", last->id}});
        else if (last) {
            backfill_run = last->id;
            resumed_at = now_ms();
            journal.runs.reopen(last->id);
        }
    }
    report.run_id = backfill_run ? *backfill_run : journal.runs.begin(job.name, kind, now_ms());
    if (options.backfill && !backfill_run) backfill_run = report.run_id;
    base::LogScope log_scope(job.name, report.run_id);
    journal.updates.scope_refusals(job.name, PushProducer::refusal_scope(c.config, job));

    // Built before reading: a bad base_url or ca_file stops the run before anything changes.
    dispatch::Dispatcher dispatcher(c, job.name);
    // Opened before sending: a source that cannot be opened or mapped stops the run first.
    std::optional<SourceFeed> feed;
    if (options.read_source)
        feed.emplace(c, job, options, options.backfill ? backfill_run : std::nullopt, report.run_id,
                     PushProducer::lease_for(c.config),
                     PushProducer::claim_batch_for(dispatch::loop_settings(c.config, job.name).max_in_flight), report);
    // Answers a stopped process staged and did not merge, before anything reads `synced`.
    journal.synced.merge_leftovers();
    // What a stopped process (or an earlier run of this daemon) left in flight, first: its
    // in-flight batches become ordinary rows, which the updates that waited for them then
    // take over, before anything is read.
    journal.updates.take_over_batches(job.name);
    journal.updates.promote_all_waiting(job.name, now_ms());
    if (auto n = journal.updates.release_dead_claims(job.name); n > 0)
        base::logger().info(
            "Resuming updates left in flight by a stopped process; each is checked before it is re-sent",
            {{"updates", n}});
    // Writes an earlier run left to send wait for the end of the read, where a row that left
    // the source has its writes dropped or its profile removed: sent first, they made the
    // profiles of people no longer in the source (an outside-in test: 100 inactive profiles
    // after a run stopped by 429s). Rows still in the source take them over as they are read,
    // and a row back at what the API has supersedes its write: in a job that judges no
    // removals, sent first, 5 stale values reached the API and the read then reverted them
    // (outside-in tester). Held, each keeps its due time: a retry's backoff still stands.
    if (feed) {
        if (auto n = journal.updates.hold_pending(job.name); n > 0)
            base::logger().info("Updates an earlier run left to send wait until the source is read to its end",
                                {{"updates", n}});
    } else {
        // Held by a run that stopped before its read ended and could not release them (killed).
        journal.updates.release_held(job.name, journal::UpdateQueue::Held::ForRead);
    }
    if (!stop_requested(c)) {
        PushProducer producer(
            job, journal, dispatcher.requests(), dispatch::loop_settings(c.config, job.name).max_in_flight,
            PushProducer::lease_for(c.config), report, c.progress_tty ? Progress::Terminal : Progress::Lines);
        if (feed) producer.feed_from(&*feed);
        dispatcher.run(producer);
        producer.release_unsent();
        report.fatal = dispatcher.fatal();
    }
    // What the run's answers staged is in `synced` before the run ends: for `status`, the
    // next run and anything else that reads it.
    journal.synced.merge();
    if (feed) feed->close();
    report.connections = dispatcher.connections();
    if (c.progress_tty) std::fprintf(stderr, "\r\033[K");
    // From the queue alone: counts() also counts the job's `synced` rows, a read of every
    // identity the job knows at every run's end (about 1,600 instructions each), for
    // figures pending() does not use.
    report.pending = journal.updates.pending(job.name);
    // An outage that outlasted the probes, or throttling that outlasted retry.max_throttled,
    // stopped it: cut short, nothing learned (exit 4).
    report.unavailable = dispatcher.unavailable();
    report.interrupted = stop_requested(c) || !report.unavailable.empty();
    report.seconds = std::chrono::duration<double>(dispatch::SteadyClock::now() - started).count();
    if (report.without_base > 0)
        base::logger().warn(without_base_warning(report.without_base), {{"rows", report.without_base}});
    // Including what earlier parts of a resumed backfill gave up on: the backfill is not
    // complete while they are failed.
    if (options.backfill) {
        report.failed_in_backfill = journal.updates.failed_of_run(*backfill_run);
        if (resumed_at) report.failed_before_resume = journal.updates.failed_of_run(*backfill_run, *resumed_at);
    }
    // A source that changed while it was read is whole again once its writer is done: the run
    // is interrupted (the next one reads it), not failed (the daemon parked the job until
    // its next slot, a nightly job's next night).
    if (!report.fatal.empty() || (!report.source_error.empty() && !report.source_changed))
        report.exit_code = 3;
    else if (report.interrupted || report.source_changed)
        report.exit_code = 4;
    else if (report.failed > 0 || report.failed_in_backfill > 0 || report.still_refused > 0 || report.rejected > 0 ||
             !report.missing_refused.empty())
        report.exit_code = 2;
    else
        report.exit_code = 0;

    // The API that accepted a write of the job is the one its state belongs to.
    if (report.done + report.accepted > 0) record_target(journal, c.config, job, now_ms());
    journal.runs.end(run_record(job, options, report), now_ms());
    dispatch::end_of_run_retention(c);
}

}  // namespace prefsync::push
