#pragma once
// What mirror mode sends for one identity, computed the same way by `sync` (when it sends)
// and `plan` (when it shows what a sync would send):
// - no last accepted body (a new identity, or one whose preferences were archived): the
//   whole body, as an upsert (W4) — or a merge update (W2) for a job by profile id;
// - otherwise the guarded JSON Patch (daemon/patch/profile_diff.hpp) from the last accepted
//   body to the new one over the fields the mapping owns, or nothing if they are equal.
// After a failed guard the engine reads the profile and plans again against what is really
// there (replan), once. The whole flow: docs/ARCHITECTURE.md, section 2.4.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace prefsync::push {

struct MirrorPlan {
    enum class Kind { Upsert, Patch, Nothing } kind = Kind::Upsert;
    std::string body;           // Upsert: the body; Patch: the operations (a JSON array)
    std::string accepted_body;  // what to keep as the last accepted body once it succeeds
    // Patch: it tests a whole array as the last accepted body shows it before appending to it
    // (patch::diff_profile's guarded_appends): their paths.
    std::vector<std::string> guarded_appends;
};

// `reactivate`: the profile was deactivated when its row left the source, and is back.
MirrorPlan plan_mirror(const std::optional<std::string>& last_accepted, const std::string& desired,
                       config::OnRemoved removed, bool reactivate);
// Against `profile`, the profile as read (R1 with matchInactive) after a failed guard.
MirrorPlan replan_mirror(const std::string& profile, const std::optional<std::string>& last_accepted,
                         const std::string& desired, config::OnRemoved removed, bool reactivate);

// What `sync` and `plan` say of `n` changed rows of profiles a job switched to mirror synced
// in another mode: they go out whole (no diff base), which cannot clear anything.
std::string without_base_warning(std::int64_t n);

// `body` with "IsActive": true unless it says otherwise (a profile coming back).
std::string with_active(const std::string& body);

}  // namespace prefsync::push
