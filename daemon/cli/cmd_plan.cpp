// `plan` and `explain`: what a sync would do, and what happened to one identity. Neither
// sends anything nor needs the API token; neither changes the journal or the reject file.
#include <boost/json.hpp>
#include <cstdio>
#include <ctime>

#include "daemon/api/value_convert.hpp"
#include "daemon/base/json_text.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/push/intake.hpp"
#include "daemon/push/mirror.hpp"
#include "daemon/push/plan.hpp"
#include "daemon/push/push_producer.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {
namespace {

// A patch's operations as one readable line: "remove /Emails/1; add /Emails/- {...}".
std::string describe_operations(const std::string& operations) {
    auto v = boost::json::parse(operations);
    std::string out;
    for (const auto& op : v.as_array()) {
        const auto& o = op.as_object();
        if (!out.empty()) out += "; ";
        out += std::string(o.at("op").as_string()) + " " + std::string(o.at("path").as_string());
        if (auto* value = o.if_contains("value")) out += " " + boost::json::serialize(*value);
    }
    return out;
}

const config::JobConfig* push_job(const LoadedJob& loaded) {
    if (loaded.job->pull) {
        std::fprintf(stderr, "error: %s is a pull job; plan and explain are for push jobs\n", loaded.job->name.c_str());
        return nullptr;
    }
    return loaded.job;
}

// What plan and explain share: the job's config, its journal (read-only: common.hpp), and a
// run context that sends nothing; `body` gets the context and the job and returns the exit
// code. Their output is not read again if a writer overlapped the read (as status's is):
// that is an error, after what was printed.
template <class Body>
int with_push_job(const std::string& config_path, const std::string& job_name, Body body) {
    auto loaded = load_for_job(config_path, job_name);
    if (!loaded.ok()) return loaded.exit_code;
    const auto* job = push_job(loaded);
    if (!job) return kUsage;
    return guarded(job->name, [&] {
        service::Signals signals({});
        journal::Journal journal(loaded.config->journal.path, journal::Access::read_only);
        dispatch::RunContext context{*loaded.config, journal, "", user_agent(), &signals.stop()};
        int exit_code = body(context, *job);
        journal.db.confirm_unchanged();
        return exit_code;
    });
}

}  // namespace

int cmd_plan(const PlanCommand& cmd) {
    return with_push_job(
        cmd.config_path, cmd.job, [&](const dispatch::RunContext& context, const config::JobConfig& job_config) {
            const auto* job = &job_config;
            auto summary = push::plan_job(context, *job, cmd.allow_mass_delete, [&](const push::PlannedAction& a) {
                if (cmd.json) {
                    std::string line = "{\"identity\":" + base::json_string(a.identity) +
                                       ",\"origin\":" + base::json_string(a.origin) +
                                       ",\"action\":" + base::json_string(a.action);
                    if (a.action == "patch" || a.action == "deactivate")
                        line += ",\"operations\":" + a.body;
                    else if (!a.body.empty())
                        line += ",\"body\":" + a.body;
                    std::printf("%s}\n", line.c_str());
                    return;
                }
                std::string what = a.action == "patch" || a.action == "deactivate" ? describe_operations(a.body)
                                   : a.body.empty()                                ? ""
                                                                                   : a.body;
                std::printf("%-10s %s (%s)%s%s\n", a.action.c_str(), a.identity.c_str(), a.origin.c_str(),
                            what.empty() ? "" : ": ", what.c_str());
            });
            std::string actions;
            for (const auto& [action, n] : summary.actions)
                actions += (actions.empty() ? "" : ", ") + std::to_string(n) + " " + action;
            if (cmd.json) {
                std::string line = "{\"summary\":{\"job\":" + base::json_string(job->name) +
                                   ",\"read\":" + std::to_string(summary.read) +
                                   ",\"rejected\":" + std::to_string(summary.rejected) +
                                   ",\"unchanged\":" + std::to_string(summary.unchanged) +
                                   ",\"duplicates\":" + std::to_string(summary.duplicates) +
                                   ",\"still_refused\":" + std::to_string(summary.still_refused) +
                                   ",\"without_base\":" + std::to_string(summary.without_base) +
                                   ",\"missing\":" + std::to_string(summary.missing) +
                                   ",\"dropped\":" + std::to_string(summary.dropped) +
                                   ",\"pending\":" + std::to_string(summary.pending) + ",\"actions\":{";
                bool first = true;
                for (const auto& [action, n] : summary.actions) {
                    line += (first ? "" : ",") + base::json_string(action) + ":" + std::to_string(n);
                    first = false;
                }
                line += "},\"missing_refused\":" + base::json_string(summary.missing_refused) + "}}";
                std::printf("%s\n", line.c_str());
            } else {
                std::printf(
                    "plan %s: read %lld, rejected %lld, unchanged %lld, duplicate ids %lld | %s | "
                    "besides, already pending in the journal: %lld\n",
                    job->name.c_str(), (long long)summary.read, (long long)summary.rejected,
                    (long long)summary.unchanged, (long long)summary.duplicates,
                    actions.empty() ? "nothing to send" : actions.c_str(), (long long)summary.pending);
                if (summary.still_refused > 0)
                    std::printf(
                        "not sent: %lld row(s) unchanged since the API refused them (400, 413 or 422); `prefsync "
                        "retry %s` sends them\n",
                        (long long)summary.still_refused, job->name.c_str());
                if (summary.dropped > 0)
                    std::printf(
                        "dropped: the writes of %lld row(s) no longer in the source (or marked deleted), which "
                        "never reached the API (pending or failed), are deleted unsent\n",
                        (long long)summary.dropped);
                if (!summary.missing_refused.empty()) std::printf("refused: %s\n", summary.missing_refused.c_str());
                if (summary.without_base > 0)
                    std::printf("warning: %s\n", push::without_base_warning(summary.without_base).c_str());
            }
            if (!summary.source_error.empty()) {
                std::fprintf(stderr, "error: jobs.%s.source: %s (the plan covers the rows read before it)\n",
                             job->name.c_str(), summary.source_error.c_str());
                // Changed while read: likely whole once its writer is done, as a sync exits.
                return int(summary.source_changed ? kInterrupted : kFatal);
            }
            return int(summary.missing_refused.empty() ? kOk : kPartial);
        });
}

int cmd_explain(const ExplainCommand& cmd) {
    return with_push_job(
        cmd.config_path, cmd.job, [&](const dispatch::RunContext& context, const config::JobConfig& job_config) {
            const auto* job = &job_config;
            auto& journal = context.journal;
            // Read as the mapper reads a row's identity: trimmed (and normalized), a profile id
            // as its number ("0042" is the profile 42).
            auto id = api::trim(cmd.id);
            auto pid = api::parse_int(id);
            mapping::Identity wanted;
            if (!job->identity.by_profile_id()) {
                wanted.alternate_id_type = job->identity.alternate_id_type;
                wanted.alternate_id = mapping::alternate_id_of(job->identity, id);
            } else {
                wanted.profile_id = pid;
            }
            // Not a number: no row can have it, and the output names what was asked.
            std::string identity = job->identity.by_profile_id() && !pid ? "profile:" + std::string(id) : wanted.key();
            boost::json::object out{{"identity", identity}};
            // The source's rows with this identity (the last one is what a sync sends).
            boost::json::array rows;
            push::Intake intake(context, *job, false, false);
            std::vector<push::IntakeRow> batch;
            while (intake.next(batch))
                for (auto& r : batch)
                    if (r.mapped && r.mapped->identity.key() == identity)
                        rows.push_back({{"origin", r.row->origin},
                                        {"deleted", r.mapped->deleted},
                                        {"body", r.mapped->deleted ? boost::json::value(nullptr)
                                                                   : boost::json::parse(r.mapped->body)}});
            out["source_rows"] = std::move(rows);
            if (auto s = journal.synced.get(job->name, identity)) {
                boost::json::object last{{"hash", s->hash},
                                         {"gone", s->gone},
                                         {"at", base::iso_utc(s->synced_at)},
                                         {"verification", s->verification}};
                if (s->profile_id) last["profile_id"] = *s->profile_id;
                if (auto body = journal.synced.last_body(job->name, identity)) last["body"] = boost::json::parse(*body);
                out["last_accepted"] = std::move(last);
            } else {
                out["last_accepted"] = nullptr;
            }
            boost::json::array history;
            const auto scope = push::PushProducer::refusal_scope(context.config, *job);
            const auto now = base::now_ms();
            for (const auto& u : journal.updates.history(job->name, identity, 10)) {
                // Held back as a sync would hold it (same scope, not yet kRefusalHeld old).
                bool refused = u.refused_scope != 0 && u.refused_scope == scope &&
                               u.updated_at > now - journal::UpdateQueue::kRefusalHeld;
                // As the producer sends it: a create job's row whose profile it knows is a merge.
                std::string op = !u.op.empty() ? u.op
                                 : job->mode == config::Mode::Create && u.profile_id
                                     ? "update"
                                     : std::string(config::to_string(job->mode));
                history.push_back({{"update", u.id},
                                   {"state", u.state},
                                   {"op", op},
                                   {"refused", refused},
                                   {"origin", u.origin},
                                   {"attempts", u.attempts},
                                   {"last_status", u.status},
                                   {"last_error", u.error},
                                   {"resolve_first", u.resolve},
                                   {"created", base::iso_utc(u.created_at)},
                                   {"updated", base::iso_utc(u.updated_at)}});
            }
            out["updates"] = std::move(history);
            if (cmd.json) {
                std::printf("%s\n", boost::json::serialize(out).c_str());
                return int(kOk);
            }
            std::printf("%s in job %s\n", identity.c_str(), job->name.c_str());
            std::printf("source rows: %zu\n", out["source_rows"].as_array().size());
            for (const auto& r : out["source_rows"].as_array())
                std::printf("  %s%s\n    %s\n", std::string(r.at("origin").as_string()).c_str(),
                            r.at("deleted").as_bool() ? " (marked deleted)" : "",
                            boost::json::serialize(r.at("body")).c_str());
            if (out["last_accepted"].is_null()) {
                std::printf("last accepted: never (a sync would create or upsert it)\n");
            } else {
                const auto& l = out["last_accepted"].as_object();
                std::string verification(l.at("verification").as_string());
                std::printf(
                    "last accepted: %s, hash %s%s%s%s\n", std::string(l.at("at").as_string()).c_str(),
                    std::string(l.at("hash").as_string()).substr(0, 16).c_str(),
                    l.contains("profile_id") ? (", profile " + boost::json::serialize(l.at("profile_id"))).c_str() : "",
                    verification == "accepted"   ? " (202: not yet verified)"
                    : verification == "verified" ? " (202, verified complete)"
                                                 : "",
                    l.at("gone").as_string().empty()
                        ? ""
                        : (", " + std::string(l.at("gone").as_string()) + " (left the source)").c_str());
                if (l.contains("body")) std::printf("  %s\n", boost::json::serialize(l.at("body")).c_str());
            }
            std::printf("updates still to do or failed (newest first):%s\n",
                        out["updates"].as_array().empty() ? " none" : "");
            for (const auto& u : out["updates"].as_array()) {
                const auto& o = u.as_object();
                std::printf(
                    "  #%s %-10s %-10s attempts %s, last status %s%s%s  (%s, from %s)\n",
                    boost::json::serialize(o.at("update")).c_str(), std::string(o.at("state").as_string()).c_str(),
                    std::string(o.at("op").as_string()).c_str(), boost::json::serialize(o.at("attempts")).c_str(),
                    boost::json::serialize(o.at("last_status")).c_str(),
                    o.at("last_error").as_string().empty() ? "" : ": ",
                    std::string(o.at("last_error").as_string()).c_str(),
                    std::string(o.at("updated").as_string()).c_str(), std::string(o.at("origin").as_string()).c_str());
                if (o.at("refused").as_bool())
                    std::printf(
                        "    the API refused this body: a sync does not send it again while the row is unchanged "
                        "(`prefsync retry %s` does)\n",
                        job->name.c_str());
            }
            return int(kOk);
        });
}

}  // namespace prefsync::cli
