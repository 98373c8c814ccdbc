#include "daemon/push/mirror.hpp"

#include <boost/json.hpp>

#include "daemon/patch/profile_diff.hpp"

namespace prefsync::push {
namespace {

namespace json = boost::json;

json::object object_of(const std::string& text) {
    auto v = json::parse(text);
    return v.is_object() ? std::move(v.as_object()) : json::object();
}

patch::DiffOptions options(config::OnRemoved removed, patch::ServerView view) {
    patch::DiffOptions o;
    o.removed =
        removed == config::OnRemoved::Remove ? patch::RemovedElements::Remove : patch::RemovedElements::Deactivate;
    o.server = view;
    return o;
}

MirrorPlan plan(const json::object& server, const json::object& owned, const json::object& desired,
                config::OnRemoved removed, patch::ServerView view, bool reactivate) {
    auto o = options(removed, view);
    std::vector<std::string> guarded_appends;
    auto ops = patch::diff_profile(server, owned, desired, o, &guarded_appends);
    // Coming back after a deactivation: active again, whatever the mapping owns.
    if (reactivate) ops.push_back(json::object{{"op", "add"}, {"path", "/IsActive"}, {"value", true}});
    MirrorPlan p;
    p.accepted_body =
        patch::compact_body(patch::owned_after(owned, desired, o, view == patch::ServerView::Read ? &server : nullptr));
    if (ops.empty()) {
        p.kind = MirrorPlan::Kind::Nothing;
        return p;
    }
    p.kind = MirrorPlan::Kind::Patch;
    p.body = json::serialize(ops);
    p.guarded_appends = std::move(guarded_appends);
    return p;
}

}  // namespace

std::string without_base_warning(std::int64_t n) {
    return std::to_string(n) +
           " changed profile(s) this job synced in another mode go out whole: mirror has no diff base for "
           "them yet, so what the source cleared in them stays on the profile (mirror removes only what it sent). "
           "Switching modes on the source the last run read avoids this (config reference: Mirror mode)";
}

std::string with_active(const std::string& body) {
    auto o = object_of(body);
    if (!o.contains("IsActive")) o["IsActive"] = true;
    return json::serialize(o);
}

MirrorPlan plan_mirror(const std::optional<std::string>& last_accepted, const std::string& desired,
                       config::OnRemoved removed, bool reactivate) {
    if (!last_accepted) {
        MirrorPlan p;
        p.kind = MirrorPlan::Kind::Upsert;
        p.body = reactivate ? with_active(desired) : desired;
        p.accepted_body = patch::compact_body(object_of(desired));
        return p;
    }
    auto owned = object_of(*last_accepted);
    return plan(owned, owned, object_of(desired), removed, patch::ServerView::LastAccepted, reactivate);
}

MirrorPlan replan_mirror(const std::string& profile, const std::optional<std::string>& last_accepted,
                         const std::string& desired, config::OnRemoved removed, bool reactivate) {
    auto owned = last_accepted ? object_of(*last_accepted) : json::object();
    return plan(object_of(profile), owned, object_of(desired), removed, patch::ServerView::Read, reactivate);
}

}  // namespace prefsync::push
