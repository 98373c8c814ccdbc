#include "daemon/push/plan.hpp"

#include <optional>
#include <unordered_map>
#include <vector>
#include <unordered_set>

#include "daemon/push/intake.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/push/mirror.hpp"
#include "daemon/push/push_producer.hpp"
#include "daemon/push/target_guard.hpp"

namespace prefsync::push {

PlanSummary plan_job(const dispatch::RunContext& c, const config::JobConfig& job, bool allow_mass_delete,
                     const std::function<void(const PlannedAction&)>& each) {
    PlanSummary summary;
    auto& journal = c.journal;
    // What the journal says the API has is the config's API's, or a sync would refuse.
    guard_target(journal, c.config, job, TargetUse::Check, base::now_ms());
    Intake intake(c, job, true, false);
    // Changed identities in first-seen order; a later row of the same identity replaces the
    // entry (or, unchanged, drops it), as the journal coalesces them in a sync.
    std::vector<PlannedAction> actions;
    std::unordered_map<std::string, std::size_t> index;
    auto drop = [&](const std::string& identity) {
        if (auto it = index.find(identity); it != index.end()) actions[it->second].action.clear();
    };
    auto put = [&](PlannedAction a) {
        if (auto it = index.find(a.identity); it != index.end())
            actions[it->second] = std::move(a);
        else {
            index.emplace(a.identity, actions.size());
            actions.push_back(std::move(a));
        }
    };
    // Identities whose last row so far is a body the API refused (a sync skips it), and those
    // a row of this read was queued or found unchanged for (which ends their failures, as a
    // sync's enqueue() does: a later row of the refused body is then sent).
    std::unordered_set<std::string> refused, settled;
    const auto queue = journal.updates.counts(job.name);
    const bool any_failed = queue.failed > 0, any_pending = queue.pending() > 0;
    const auto scope = PushProducer::refusal_scope(c.config, job);
    const auto now = base::now_ms();
    std::vector<IntakeRow> batch;
    std::vector<PlannedAction> removals;
    std::unordered_map<std::string, std::size_t> removed;  // identities: one removal each, its index in `removals`
    std::unordered_set<std::string> dropped;               // identities: one drop each
    // Writes a killed run left in flight: a sync takes them over before it reads, so they
    // count as writes that may have landed (unsettled_of() sees only ordinary rows).
    const auto elsewhere = journal.updates.in_flight_elsewhere(job.name);
    // Deleted rows known only by a write that may have landed: known profiles for
    // max_missing, as the sync counts them.
    std::int64_t deleted_unsettled = 0;
    // Identities a write of which may have landed: their rows are sent back at the synced
    // hash too (one set for the read, not queries per row).
    const auto landed = any_pending ? journal.updates.may_have_landed(job.name) : std::unordered_set<std::string>();
    std::unordered_set<std::string> without_base;  // mirror: identities going out whole (per identity)
    std::unordered_set<std::string> left_unsent;   // identities that left, whose writes are dropped
    // The identities with a write pending, asked for once and only if needed.
    std::optional<std::unordered_set<std::string>> pending;
    auto pending_now = [&]() -> const std::unordered_set<std::string>& {
        if (!pending)
            pending = any_pending ? journal.updates.pending_identities(job.name) : decltype(pending)::value_type();
        return *pending;
    };
    // Removals of rows an earlier read (a sync's or a backfill's) of a source with a
    // watermark marked deleted and did not journal (killed, or refused by max_missing): the
    // sync takes them up as its own before it reads (push_run.cpp, take_up_marked()).
    if (!intake.snapshot() && !job.deleted_column.empty())
        for (auto& r : journal.marked.of(job.name)) {
            if (!removed.try_emplace(r.identity, removals.size()).second) continue;
            auto synced = journal.synced.get(job.name, r.identity);
            if (!(synced && synced->gone.empty())) ++deleted_unsettled;
            auto u = removal_update(job, r.identity, r.alt_type, r.alt_id, r.profile_id, r.origin);
            removals.push_back({r.identity, r.origin, u.op, u.body});
        }
    // Marked deleted by an earlier row (or read), listed again unmarked: the last row decides
    // (as the sync's cancel_removal()).
    auto take_back = [&](const std::string& identity, const std::optional<journal::SyncedState>& synced) {
        if (removed.empty()) return;
        auto it = removed.find(identity);
        if (it == removed.end()) return;
        removals[it->second].identity.clear();  // taken back: left out below
        if (!(synced && synced->gone.empty())) --deleted_unsettled;
        removed.erase(it);
    };
    while (intake.next(batch)) {
        for (auto& r : batch) {
            if (!r.mapped) {
                // Its body rejected, not marked: the source still lists it (push_run.cpp).
                if (!r.unmarked_rejected.empty() && !removed.empty())
                    take_back(r.unmarked_rejected, journal.synced.get(job.name, r.unmarked_rejected));
                continue;
            }
            auto& m = *r.mapped;
            auto identity = m.identity.key();
            auto synced = journal.synced.get(job.name, identity);
            refused.erase(identity);
            if (m.deleted) {
                drop(identity);
                // As the sync decides (push_run.cpp): a profile that exists or may is removed;
                // writes that never reached the API are dropped.
                auto unsettled =
                    synced && synced->gone.empty() ? std::nullopt : journal.updates.unsettled_of(job.name, identity);
                if (!(synced && synced->gone.empty()) && elsewhere.contains(identity)) {
                    if (!unsettled) unsettled.emplace();
                    unsettled->may_exist = true;
                }
                if ((synced && synced->gone.empty()) || (unsettled && unsettled->may_exist)) {
                    if (removed.try_emplace(identity, removals.size()).second) {
                        if (!(synced && synced->gone.empty())) ++deleted_unsettled;
                        auto u = removal_update(job, identity, m.identity.alternate_id_type, m.identity.alternate_id,
                                                m.identity.profile_id, r.row->origin);
                        removals.push_back({identity, r.row->origin, u.op, u.body});
                    }
                } else if (unsettled && dropped.insert(identity).second) {
                    ++summary.dropped;
                }
                continue;
            }
            take_back(identity, synced);
            bool reactivate = synced && synced->gone == "deactivated";
            bool present = !synced || synced->gone.empty();
            // A write of it that may have landed (a failure's mark, or one still pending: a
            // killed run's in flight, or unanswered and waiting to be sent again): sent all
            // the same, back at the synced hash too, as enqueue() sends it, looking first.
            bool marked = any_failed && journal.updates.marked_failure(job.name, identity);
            if (!marked && present && synced && synced->hash == m.hash) marked = landed.contains(identity);
            if (!reactivate && present && synced && synced->hash == m.hash && !marked) {
                ++summary.unchanged;
                drop(identity);
                settled.insert(identity);
                continue;
            }
            if (!reactivate && present && any_failed && !settled.contains(identity) &&
                !(synced && synced->hash == m.hash) &&
                journal.updates.refused(job.name, identity, m.hash, scope, now)) {
                // As enqueue() judges it (it also sends a row whose identity has a write in
                // flight or waiting with a "resolve first" mark: plan does not weigh those).
                refused.insert(identity);
                drop(identity);
                // An earlier row of it, marked deleted, was counted as dropping its writes: the
                // sync keeps a refused failure for a later row (Failures::ExceptRefused), and
                // drops only its pending writes, if it has any.
                if (!dropped.empty() && dropped.contains(identity) && !pending_now().contains(identity)) {
                    dropped.erase(identity);
                    --summary.dropped;
                }
                continue;
            }
            settled.insert(identity);
            PlannedAction a{identity, r.row->origin, std::string(config::to_string(job.mode)), m.body};
            if (job.mode == config::Mode::Mirror) {
                auto p = plan_mirror(journal.synced.last_body(job.name, identity), m.body, job.on_removed, reactivate);
                switch (p.kind) {
                    case MirrorPlan::Kind::Upsert:
                        a.action = m.identity.profile_id ? "update" : "upsert";
                        a.body = p.body;
                        // As enqueue() counts it (EnqueueResult::QueuedWithoutBase).
                        if (present && synced && !synced->hash.empty() && !synced->has_body)
                            without_base.insert(identity);
                        break;
                    case MirrorPlan::Kind::Patch:
                        a.action = "patch";
                        a.body = p.body;
                        break;
                    case MirrorPlan::Kind::Nothing:
                        ++summary.unchanged;
                        drop(identity);
                        continue;
                }
            } else if (reactivate) {
                a.action = "reactivate";
                a.body = with_active(m.body);
            } else if (job.mode == config::Mode::Create && synced && synced->profile_id) {
                a.action = "update";  // created before: a merge into that profile (push_producer.cpp)
            }
            put(std::move(a));
        }
    }
    summary.still_refused = static_cast<std::int64_t>(refused.size());
    for (const auto& identity : without_base)
        if (auto it = index.find(identity); it != index.end() && !actions[it->second].action.empty())
            ++summary.without_base;
    summary.read = intake.read;
    summary.rejected = intake.rejected;
    summary.duplicates = intake.duplicates;
    summary.source_error = intake.source_error();
    summary.source_changed = intake.source_changed();
    summary.complete = summary.source_error.empty() && !(c.stop && c.stop->load());
    for (const auto& a : actions) {
        if (a.action.empty()) continue;
        ++summary.actions[a.action];
        each(a);
    }
    if (job.on_missing != config::OnMissing::Ignore) {
        // As the sync decides (push_run.cpp): no profile is taken for one that left the source
        // while a rejected row's identity is unknown.
        auto unknowable = intake.complete_snapshot() ? intake.missing_unknowable() : std::string();
        if (!unknowable.empty()) summary.missing_refused = "profiles no longer in the source left alone: " + unknowable;
        std::erase_if(removals, [](const PlannedAction& a) { return a.identity.empty(); });
        std::int64_t known = 0;
        if (intake.complete_snapshot() && unknowable.empty()) {
            auto left = left_the_source(journal, intake, job.name);
            known = left.known;
            summary.dropped += static_cast<std::int64_t>(left.unsent.size());
            left_unsent.insert(left.unsent.begin(), left.unsent.end());
            for (const auto& k : left.identities) {
                if (!removed.try_emplace(k.identity, removals.size()).second) continue;
                auto u =
                    removal_update(job, k.identity, k.alt_type, k.alt_id, k.profile_id, std::string(kLeftTheSource));
                removals.push_back({k.identity, u.origin, u.op, u.body});
            }
        } else {
            known = journal.synced.count_present(job.name) + deleted_unsettled;
        }
        summary.missing = static_cast<std::int64_t>(removals.size());
        auto verdict = judge_missing(job, summary.missing, known, allow_mass_delete);
        if (!verdict.allowed) {
            summary.missing_refused = verdict.refusal;
        } else {
            for (const auto& a : removals) {
                ++summary.actions[a.action];
                each(a);
            }
        }
    }
    // Pending updates of identities the plan does not cover (rows it did not read, not
    // removed, not dropped): a sync sends them besides its actions. Counted per identity, as
    // the actions are: a pending update of a row read again is replaced by that row's action
    // (or found unchanged), not sent too; counting it as well read as twice the requests.
    if (any_pending || !elsewhere.empty())
        for (const auto& identity : journal.updates.pending_identities(job.name))
            if (!intake.seen(identity) && !removed.contains(identity) && !left_unsent.contains(identity))
                ++summary.pending;
    return summary;
}

}  // namespace prefsync::push
