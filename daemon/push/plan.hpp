#pragma once
// `prefsync plan JOB`: what a sync of the job would send now, sending nothing and changing
// nothing: the source read as a sync reads it (past the watermark), each row compared with
// the journal, and each changed identity's request computed as the sync computes it (the
// same mirror plan, so the operations shown are the operations sent, unless the profile
// changed meanwhile and a guard fails).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/dispatch/dispatcher.hpp"

namespace prefsync::push {

struct PlannedAction {
    std::string identity, origin;
    std::string action;  // upsert, create, patch, update, replace, delete, archive, deactivate, reactivate
    std::string body;    // the operations (patch), the body (writes), or "" (delete)
};

struct PlanSummary {
    std::int64_t read = 0, rejected = 0, unchanged = 0, duplicates = 0, missing = 0;
    // Identities whose row is the body the API refused before (a 400, 413 or 422): not sent.
    std::int64_t still_refused = 0;
    // Identities no longer in the source, or marked deleted in it, whose writes never
    // reached the API (pending or failed): a sync deletes those writes unsent.
    std::int64_t dropped = 0;
    // Mirror: changed profiles the job synced in another mode (whole: no diff base), once each.
    std::int64_t without_base = 0;
    // Identities of updates already in the journal that a sync sends besides the actions
    // (their rows were not read: a retry, another file's rows).
    std::int64_t pending = 0;
    std::map<std::string, std::int64_t> actions;  // action → count
    std::string missing_refused;                  // over max_missing: what the sync would refuse
    bool complete = true;                         // false: the source could not be read to its end
    std::string source_error;
    bool source_changed = false;  // ... because it changed while it was read (planned again later)
};

// Calls `each` for every planned action (identities in first-seen order; removals last).
PlanSummary plan_job(const dispatch::RunContext& context, const config::JobConfig& job, bool allow_mass_delete,
                     const std::function<void(const PlannedAction&)>& each);

}  // namespace prefsync::push
