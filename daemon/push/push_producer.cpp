#include "daemon/push/push_producer.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>

#include "daemon/base/json_text.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/base/personal_data.hpp"
#include "daemon/push/mirror.hpp"

namespace prefsync::push {
namespace {

using journal::Millis;

// Failed whole-array tests before appends, none passed, after which a run reads before it
// appends (PushProducer::reads_appends_first): few enough that a server writing its own
// fields into elements costs little, enough that another client's additions to a few
// profiles do not turn it on.
constexpr int kAppendGuardsBeforeReadFirst = 3;
constexpr int kAppendGuardProbe = 16;

// Whether a write that got this may have been applied: no answer, or one of 500 or above
// (the journal's `may exist` test, UpdateQueue::for_each_unsettled, says the same). A 503
// with Retry-After too: the reference's 503 is "an unexpected condition", not "not applied".
bool may_have_landed(const http::HttpResponse& r) {
    return r.transport == api::Transport::NoAnswer || (r.transport == api::Transport::Answered && r.status >= 500);
}

// W1 needs the alternate id in the body, or a retried create could not be found again; W6
// (PUT) blanks every collection it is not sent, so without it the profile would lose the id
// it is addressed by, and the next row for it would create another profile. A mapping that
// sends AlternateIds of other types gets the job's own added to them.
std::string with_alternate_id(std::string body, const journal::ClaimedUpdate& u) {
    if (u.alt_type.empty()) return body;
    if (body.find("\"AlternateIds\"") != std::string::npos) {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        auto* o = ec ? nullptr : v.if_object();
        if (!o) return body;
        auto& ids = (*o)["AlternateIds"];
        if (!ids.is_array()) ids = boost::json::array();
        for (const auto& a : ids.get_array())
            if (const auto* e = a.if_object();
                e && e->contains("AlternateIdType") && e->at("AlternateIdType") == boost::json::string_view(u.alt_type))
                return body;  // the mapping sends the job's own (its value is the row's)
        ids.get_array().push_back(boost::json::object{{"AlternateIdType", u.alt_type}, {"AlternateId", u.alt_id}});
        return boost::json::serialize(v);
    }
    std::string entry = "\"AlternateIds\":[{\"AlternateIdType\":";
    base::append_json_string(entry, u.alt_type);
    entry += ",\"AlternateId\":";
    base::append_json_string(entry, u.alt_id);
    entry += "}]";
    if (body == "{}" || body.empty()) return "{" + entry + "}";
    body.insert(body.size() - 1, "," + entry);
    return body;
}

// Back to the queue, untried, its "resolve first" mark kept.
journal::Completion released(const journal::ClaimedUpdate& u) {
    journal::Completion c;
    c.id = u.id;
    c.state = journal::State::Queued;
    c.resolve = u.resolve;
    c.count_attempt = false;
    return c;
}

// The first active alternate id of a profile (R2's answer), to read it again with R1.
std::optional<std::pair<std::string, std::string>> first_alternate_id(const std::string& profile) {
    boost::system::error_code ec;
    auto v = boost::json::parse(profile, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* ids = o ? o->if_contains("AlternateIds") : nullptr;
    if (!ids || !ids->is_array()) return std::nullopt;
    for (const auto& a : ids->get_array()) {
        const auto* e = a.if_object();
        const auto* type = e ? e->if_contains("AlternateIdType") : nullptr;
        const auto* id = e ? e->if_contains("AlternateId") : nullptr;
        if (type && id && type->is_string() && id->is_string() && !type->get_string().empty() &&
            !id->get_string().empty())
            return std::pair{std::string(type->get_string()), std::string(id->get_string())};
    }
    return std::nullopt;
}

// A patch as its operations and paths, without the values (personal data): enough to see
// which guard failed against the server's message.
std::string patch_outline(const std::string& operations) {
    boost::system::error_code ec;
    auto v = boost::json::parse(operations, ec);
    const auto* ops = ec ? nullptr : v.if_array();
    if (!ops) return "(unreadable)";
    std::string out;
    for (const auto& o : *ops) {
        const auto* e = o.if_object();
        const auto* op = e ? e->if_contains("op") : nullptr;
        const auto* path = e ? e->if_contains("path") : nullptr;
        if (!op || !path || !op->is_string() || !path->is_string()) continue;
        out += (out.empty() ? "" : ", ") + std::string(op->get_string()) + " " + std::string(path->get_string());
    }
    return out;
}

bool by_profile_id_only(config::Mode mode) {
    return mode == config::Mode::Update || mode == config::Mode::Delete || mode == config::Mode::Archive;
}

}  // namespace

PushProducer::PushProducer(const config::JobConfig& job, journal::Journal& journal, const api::RequestBuilder& requests,
                           int max_in_flight, Millis lease, PushCounts& counts, Progress progress)
    : job_(job),
      journal_(journal),
      requests_(requests),
      claim_batch_(claim_batch_for(max_in_flight)),
      idempotent_(idempotent(job)),
      lease_(lease),
      counts_(counts),
      accepted_before_(journal.synced.any_known(job.name)),
      progress_(progress) {}

std::int64_t PushProducer::refusal_scope(const config::Config& config, const config::JobConfig& job) {
    std::string what =
        std::string(config::to_string(job.mode)) + '\n' + config.api.base_url + '\n' + config.api.client_id;
    // Stored in the journal: a hash that is the same in every build (std::hash need not be).
    std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (unsigned char ch : what) h = (h ^ ch) * 1099511628211ULL;
    return static_cast<std::int64_t>(h >> 1) | 1;
}

Millis PushProducer::lease_for(const config::Config& config) {
    // Long enough for the slowest request; held rows are renewed long before it ends.
    return config.http.request_timeout.count() * 2 + 60000;
}

bool PushProducer::removal(const Item& item) {
    const auto& op = item.update.op;
    return op == "deactivate" || op == "archive" || op == "delete";
}

PushProducer::Item PushProducer::prepare(journal::ClaimedUpdate u) const {
    Item item;
    item.update = std::move(u);
    const auto& c = item.update;
    bool by_alt = !c.alt_type.empty();
    bool needs_profile_id = removal(item) ? c.op != "deactivate" : by_profile_id_only(job_.mode);
    // A create that may have landed is looked up first; a profile whose id is known is
    // written by that id (a merge, sent again as often as it takes: it is idempotent).
    // So is a reactivation without its id: the profile was deactivated by a removal of a row
    // known only by a write that may have landed (UpdateQueue::for_each_unsettled).
    if (by_alt && (c.resolve || c.op == "reactivate") && !c.profile_id && job_.mode == config::Mode::Create &&
        !removal(item))
        item.step = Step::Lookup;
    if (by_alt && !c.profile_id && needs_profile_id) item.step = Step::Lookup;
    if (mirror(item)) {
        item.last = journal_.synced.last_body(job_.name, c.identity);
        // A write whose fate is unknown may have landed: look at the profile before diffing.
        if (c.resolve)
            item.step = Step::Read;
        else
            plan(item);
    }
    return item;
}

namespace {
// A collection's path with its indices as "*": "/Emails", "/Emails/*/Consents".
std::string collection_of(const std::string& path) {
    std::string out;
    std::size_t i = 0;
    while (i < path.size()) {
        auto next = path.find('/', i + 1);
        auto token = path.substr(i, next == std::string::npos ? std::string::npos : next - i);
        bool index = token.size() > 1 && token.find_first_not_of("0123456789", 1) == std::string::npos;
        out += index ? std::string("/*") : token;
        if (next == std::string::npos) break;
        i = next;
    }
    return out;
}
}  // namespace

bool PushProducer::reads_appends_first(const Item& item) const {
    return std::any_of(item.guarded_appends.begin(), item.guarded_appends.end(), [&](const std::string& path) {
        auto it = append_guards_.find(collection_of(path));
        return it != append_guards_.end() && it->second.passed == 0 &&
               it->second.failed >= kAppendGuardsBeforeReadFirst;
    });
}

void PushProducer::count_append_guards(const Item& item, bool passed) {
    // A failed patch is counted against each collection it tested whole (which test failed
    // is the server's message, whose form the reference does not give); a pass clears each.
    for (const auto& path : item.guarded_appends) {
        auto collection = collection_of(path);
        auto& g = append_guards_[collection];
        (passed ? g.passed : g.failed) += 1;
        if (!passed && g.failed == kAppendGuardsBeforeReadFirst && g.passed == 0)
            base::logger().info(
                "Appends to a collection are read first: the API failed every test of it whole before an append so "
                "far, as a server that writes fields of its own into elements does (a read before the patch saves "
                "the failed one); one append in 16 is still tested, and a pass ends this",
                {{"collection", collection}, {"failed", g.failed}});
    }
}

void PushProducer::plan(Item& item) const {
    auto p = plan_mirror(item.last, item.update.body, job_.on_removed, item.update.op == "reactivate");
    item.operations = p.kind == MirrorPlan::Kind::Patch ? std::move(p.body) : "";
    item.accepted_body = std::move(p.accepted_body);
    item.guarded_appends = std::move(p.guarded_appends);
    item.done_without_request = p.kind == MirrorPlan::Kind::Nothing;
    if (p.kind == MirrorPlan::Kind::Upsert) item.update.body = std::move(p.body);
}

api::ApiRequest PushProducer::request_for(const Item& item) const {
    const auto& u = item.update;
    bool by_alt = !u.alt_type.empty();
    // A request by profile id never goes out without one (a removal looked up and not found
    // is done, not written): MissingProfileId, for next() to fail the update, not a guess.
    auto id = [&]() -> std::int64_t {
        if (!u.profile_id) throw MissingProfileId{};
        return *u.profile_id;
    };
    if (item.step == Step::Lookup) return requests_.get(u.alt_type, u.alt_id, true);
    if (item.step == Step::Read && item.read_by) return requests_.get(item.read_by->first, item.read_by->second, true);
    if (item.step == Step::Read) return by_alt ? requests_.get(u.alt_type, u.alt_id, true) : requests_.get(id());
    if (u.op == "deactivate")
        return by_alt ? requests_.patch(u.alt_type, u.alt_id, u.body) : requests_.patch(id(), u.body);
    if (u.op == "archive") return requests_.archive(id(), u.body);
    if (u.op == "delete") return requests_.remove(id());
    std::string body = u.op == "reactivate" && job_.mode != config::Mode::Mirror ? with_active(u.body) : u.body;
    switch (job_.mode) {
        case config::Mode::Create:
            // A profile that exists is updated (merge), never created again: one this job
            // created before (its id kept with the identity's synced hash: a changed row, a
            // later row of the same id) or one its lookup by alternate id found.
            if (u.profile_id) return requests_.update(*u.profile_id, std::move(body));
            return requests_.create(with_alternate_id(u.body, u));
        case config::Mode::Upsert: return requests_.upsert(u.alt_type, u.alt_id, std::move(body));
        case config::Mode::Replace:
            return by_alt ? requests_.replace(u.alt_type, u.alt_id, with_alternate_id(std::move(body), u))
                          : requests_.replace(id(), std::move(body));
        case config::Mode::Update: return requests_.update(id(), std::move(body));
        case config::Mode::Delete: return requests_.remove(id());
        case config::Mode::Archive: return requests_.archive(id(), std::move(body));
        case config::Mode::Mirror:
            if (!item.operations.empty())
                return by_alt ? requests_.patch(u.alt_type, u.alt_id, item.operations)
                              : requests_.patch(id(), item.operations);
            return by_alt ? requests_.upsert(u.alt_type, u.alt_id, std::move(body))
                          : requests_.update(id(), std::move(body));
    }
    return requests_.upsert(u.alt_type, u.alt_id, std::move(body));
}

std::optional<dispatch::Outgoing> PushProducer::next(Millis now) {
    while (true) {
        ripen(false);
        if (ready_.empty() && claimed_.empty()) {
            // One batch at a time (an unchanged file queues nothing for long stretches):
            // between batches the loop takes answers, ticks and signals (wake_at() says "now").
            if (!ripening_) {
                claim(now);
                if (feed_ && claimed_.empty()) read_feed(now);
            }
            if (claimed_.empty()) return std::nullopt;
        } else if (feed_ && !ripening_ && idempotent_ && claimed_.size() < 2 * static_cast<std::size_t>(claim_batch_)) {
            // The next batch is read while this one's last rows are sent, so its sync
            // (milliseconds on a busy disk) runs beside them. Only where a row sent again
            // does no harm: the feed claims all of such a batch at once, and a crash leaves
            // no lookups to make first. (For the others the feed claims one claim's worth and
            // queues the rest, which claim() takes once nothing is claimed: reading ahead would
            // read the whole source before them, and leave more creates to look up.) What the
            // journal has due (retries, rows an answer promoted) is claimed first, as when
            // nothing is claimed: not left until the whole source is read. A claim that finds
            // nothing writes nothing (no fsync).
            claim(now);
            read_feed(now);
        }
        // Looked at where it waits, and moved once, into out_ (an Item is some fifteen
        // strings: each move of one copies their bytes). Only pop_front() below lets go of it.
        auto& from = ready_.empty() ? claimed_ : ready_;
        Item& item = from.front();
        // One in kAppendGuardProbe still goes guarded, so a pass can end the reading first.
        if (item.step == Step::Write && !item.read_once && reads_appends_first(item) &&
            ++appends_read_first_ % kAppendGuardProbe != 0)
            item.step = Step::Read;
        if (item.done_without_request) {
            // Mirror: the fields the mapping owns are as they were (the body changed only in
            // a way the profile does not show, e.g. element order): recorded, nothing sent.
            succeed(item, journal::State::Done, 0, {});
            from.pop_front();
            continue;
        }
        if (job_.mode == config::Mode::Replace && item.update.alt_type.empty() && !removal(item) &&
            item.update.body.find("\"AlternateIds\"") == std::string::npos) {
            // W7 would blank the profile's AlternateIds: this row's mapped ones are all empty.
            fail(item, 0,
                 "not sent: a PUT by profile id blanks what it does not send, and this row maps no AlternateIds "
                 "(their columns are empty); fill them in, or send the row with mode update",
                 false);
            from.pop_front();
            continue;
        }
        std::optional<api::ApiRequest> request;
        try {
            request = request_for(item);
        } catch (const MissingProfileId&) {
            fail(item, 0,
                 "not sent: no profile id is known for this " +
                     (item.update.op.empty() ? std::string("write") : item.update.op),
                 false);
            from.pop_front();
            continue;
        }
        // The identity, not the update id: a row's id changes when a batch row is retried.
        dispatch::Outgoing out{++next_key_, std::move(*request), item.update.attempts,
                               std::hash<std::string>{}(item.update.identity)};
        out_.emplace(out.key, std::move(item));
        from.pop_front();
        ++counts_.sent;
        return out;
    }
}

void PushProducer::read_feed(Millis now) {
    bool more = feed_->more();
    std::deque<Item> items;
    for (auto& u : feed_->take_claimed()) items.push_back(prepare(std::move(u)));
    if (!more) feed_ = nullptr;
    if (items.empty()) {
        if (claimed_.empty()) claim(now);  // what the feed queued rather than handed over
        return;
    }
    // Record before send: the feed commits its batch without waiting for the disk, and its
    // claims leave once the write-ahead log's sync, begun now, is over (ripen()). A job that
    // does not read ahead waits for it here.
    ripening_ = Ripening{std::move(items), journal_.db.begin_sync()};
    ripen(!idempotent_);
}

void PushProducer::ripen(bool wait) {
    if (ripening_ && journal_.db.synced(ripening_->sync, wait)) take_ripening();
}

void PushProducer::take_ripening() {
    if (!ripening_) return;
    for (auto& item : ripening_->items) claimed_.push_back(std::move(item));
    ripening_.reset();
}

void PushProducer::claim(Millis now) {
    // Completions still buffered are of rows this process holds, which claim() never hands
    // out again: claiming before flushing them is safe.
    for (auto& u : journal_.updates.claim(job_.name, claim_batch_, now, lease_))
        claimed_.push_back(prepare(std::move(u)));
}

std::optional<Millis> PushProducer::wake_at(Millis now) {
    if (!ready_.empty() || !claimed_.empty() || feed_ || ripening_) return now;
    flush();  // a retry recorded a moment ago must be visible to next_due()
    return journal_.updates.next_due(job_.name);
}

void PushProducer::on_answer(dispatch::Outgoing out, const http::HttpResponse& r, const dispatch::Verdict& v) {
    auto node = out_.extract(out.key);
    if (node.empty()) return;
    Item& item = node.mapped();  // the node owns it until the end: not moved out (fifteen strings)
    auto now = base::now_ms();
    if (v.outcome == api::Outcome::Fatal) {
        // Not the row's fault: back to the queue, untried, its marks kept.
        auto c = released(item.update);
        c.status = r.status;
        return complete(std::move(c));
    }
    // log.bodies: what was sent and what the server said about it, for a refused write.
    if (base::logger().logs_bodies() && item.step == Step::Write && r.status >= 400 && r.status < 500 &&
        v.outcome != api::Outcome::Retry)
        base::logger().debug("Update refused", {{"identity", item.update.identity},
                                                {"status", r.status},
                                                {"request", base::mask_personal_data(request_for(item).body)},
                                                {"answer", base::mask_personal_data(r.body)}});
    if (item.step == Step::Lookup) return lookup_answered(item, r, v, now);
    if (item.step == Step::Read) return read_answered(item, r, v, now);
    write_answered(item, r, v, now);
}

void PushProducer::read_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, Millis now) {
    auto& u = item.update;
    bool answered = r.transport == api::Transport::Answered;
    std::string profile;  // what was read; empty if nothing was
    if (item.read_by) {
        // R1 by one of its alternate ids, after R2: it must be the same profile (an id moved
        // to another in between is not). If it is not, or R1 answered it has none, R2's
        // answer stands: its indices are off only if the profile has inactive elements, and
        // the guards then refuse the patch. A read that failed for now is read again later
        // (a patch planned from R2 could fail for good on a passing 503).
        if (v.outcome == api::Outcome::Retry || v.outcome == api::Outcome::Unknown)
            return retry(item, r, v, u.resolve, now);
        bool same = answered && r.status == 200 && profile_id_of_(r.body) == u.profile_id;
        profile = same ? r.body : std::move(item.read_r2);
        item.read_by.reset();
    } else if (answered && r.status == 200) {
        if (!u.profile_id) u.profile_id = profile_id_of_(r.body);
        if (u.alt_type.empty()) {
            if (auto alt = first_alternate_id(r.body)) {
                item.read_by = std::move(alt);
                item.read_r2 = r.body;
                ready_.push_back(std::move(item));
                return;
            }
        }
        profile = r.body;
    }
    if (!profile.empty()) {
        auto p = replan_mirror(profile, item.last, u.body, job_.on_removed, u.op == "reactivate");
        item.read_once = true;
        item.step = Step::Write;
        item.accepted_body = std::move(p.accepted_body);
        if (p.kind == MirrorPlan::Kind::Nothing) return succeed(item, journal::State::Done, 200, u.profile_id);
        item.operations = std::move(p.body);
        ready_.push_back(std::move(item));
        return;
    }
    if (answered && r.status == 404) {
        // The profile is not there (deleted by someone, or our upsert never landed): the
        // whole body brings it back.
        item.step = Step::Write;
        item.operations.clear();
        item.last.reset();
        plan(item);
        ready_.push_back(std::move(item));
        return;
    }
    if (v.outcome == api::Outcome::Failed) return fail(item, r.status, v.reason + ": " + api::server_message(r.body));
    retry(item, r, v, u.resolve, now);  // the read failed: it is read again next time
}

void PushProducer::lookup_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, Millis now) {
    auto& u = item.update;
    bool answered = r.transport == api::Transport::Answered;
    if (answered && r.status == 200) {
        auto pid = profile_id_of_(r.body);
        if (!pid) return fail(item, r.status, "lookup answered without a ProfileId");
        u.profile_id = pid;
        item.step = Step::Write;
        ready_.push_back(std::move(item));  // the write follows, paced like any request
        return;
    }
    if (answered && r.status == 404) {
        if (job_.mode == config::Mode::Create && !removal(item) && (u.resolve || u.op == "reactivate")) {
            // Not there (yet): create it. The mark stays until the create succeeds, so a 409
            // to this create (a lagging index) is looked up again, not taken as a failure.
            item.step = Step::Write;
            ready_.push_back(std::move(item));
            return;
        }
        if ((job_.mode == config::Mode::Delete && u.resolve) || removal(item))
            return succeed(item, journal::State::Done, 404, {});  // nothing to remove: removed
        return fail(item, 404, "no profile with " + u.identity);
    }
    // The lookup itself failed: the row keeps its "resolve first" mark.
    if (v.outcome == api::Outcome::Failed) return fail(item, r.status, v.reason + ": " + api::server_message(r.body));
    retry(item, r, v, u.resolve, now);
}

void PushProducer::write_answered(Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, Millis now) {
    auto& u = item.update;
    bool create = job_.mode == config::Mode::Create && !u.profile_id && !removal(item);
    if (removal(item) && r.transport == api::Transport::Answered && r.status == 404)
        return succeed(item, journal::State::Done, 404, {});  // already gone
    if (mirror(item) && !item.guarded_appends.empty() && !item.read_once && !item.operations.empty()) {
        if (v.outcome == api::Outcome::Done || v.outcome == api::Outcome::Accepted)
            count_append_guards(item, true);
        else if (v.outcome == api::Outcome::Failed && (r.status == 409 || r.status == 400))
            count_append_guards(item, false);
    }
    if (mirror(item) && v.outcome == api::Outcome::Failed && !item.operations.empty()) {
        if (r.status == 404) {
            item.operations.clear();
            item.last.reset();
            plan(item);
            ready_.push_back(std::move(item));
            return;
        }
        if ((r.status == 409 || r.status == 400) && !item.read_once) {
            // Someone changed the profile (a guard failed), or it lacks what our last body
            // assumed: read what is really there and patch from it, once.
            item.step = Step::Read;
            ready_.push_back(std::move(item));
            return;
        }
        if (r.status == 409 || r.status == 400) {
            std::string detail = "the profile changed under the patch twice (" + std::to_string(r.status) + ": " +
                                 api::server_message(r.body) + "); last patch: " + patch_outline(item.operations);
            if (detail.size() > 4000) detail.resize(4000);
            return fail(item, r.status, detail);
        }
    }
    if (job_.mode == config::Mode::Create && !removal(item) && u.profile_id && !item.looked_for_gone &&
        r.transport == api::Transport::Answered && r.status == 404) {
        // The profile the job created is gone (deleted or merged away on the server): looked
        // for by its alternate id once, and created again if nothing has it.
        u.profile_id.reset();
        u.resolve = true;
        item.looked_for_gone = true;
        item.step = Step::Lookup;
        ready_.push_back(std::move(item));
        return;
    }
    switch (v.outcome) {
        case api::Outcome::Done:
        case api::Outcome::Accepted:
            return succeed(item, v.outcome == api::Outcome::Done ? journal::State::Done : journal::State::Accepted,
                           r.status, profile_id_of_(r.body));
        case api::Outcome::Unknown:
            if (create && r.status == 409) {
                // Only a create whose earlier attempt may have landed can meet itself.
                if (!u.resolve)
                    return fail(item, 409,
                                "409: a profile with " + u.identity + " already exists (" +
                                    api::server_message(r.body) + "); use mode upsert to update it");
                // It landed after all: looked up again after a backoff (a counted attempt, so
                // a server that keeps contradicting itself cannot hold the row forever).
                return retry(item, r, v, true, now);
            }
            return retry(item, r, v, true, now);
        case api::Outcome::Retry:
            // Sent without an answer, or answered 500 or above: whatever it did is unknown,
            // and stays so until it succeeds (a create is looked up, a delete's 404 is its
            // success, a mirror patch is planned again from the profile). The reference
            // documents its 500 and 503 as "an unexpected condition", not as "not applied",
            // and a gateway's 502 or 504 can come after the server applied the write: sent
            // again blindly, a create made a second profile. A 429 is a refusal to handle it.
            return retry(item, r, v, u.resolve || may_have_landed(r), now);
        case api::Outcome::Failed:
            if (job_.mode == config::Mode::Delete && r.status == 404 && u.resolve)
                return succeed(item, journal::State::Done, 404, {});  // the lost attempt deleted it
            return fail(item, r.status, v.reason + ": " + api::server_message(r.body), true, refused_body(item, r));
        case api::Outcome::Fatal: break;  // handled in on_answer
    }
}

void PushProducer::succeed(const Item& item, journal::State state, int status, std::optional<std::int64_t> profile_id) {
    ++(state == journal::State::Accepted ? counts_.accepted : counts_.done);
    journal::Completion c;
    c.id = item.update.id;
    c.state = state;
    c.status = status;
    c.profile_id = profile_id ? profile_id : item.update.profile_id;
    if (mirror(item)) c.accepted_body = item.accepted_body;
    complete(c);
}

void PushProducer::retry(const Item& item, const http::HttpResponse& r, const dispatch::Verdict& v, bool resolve,
                         Millis now) {
    ++counts_.retries;
    if (v.give_up)
        // Given up, a write that may have landed keeps its mark: the row that replaces the
        // failure (or `retry`) looks before it writes. Lost here, a create unanswered on its
        // last attempt was sent again blindly.
        return fail(item, r.status,
                    "gave up after " + std::to_string(item.update.attempts + 1) + " attempts: " + v.reason, true, false,
                    resolve);
    base::logger().debug("Retrying update", {{"identity", item.update.identity},
                                             {"status", r.status},
                                             {"attempt", item.update.attempts + 1},
                                             {"delay_ms", v.delay.count()},
                                             {"reason", v.reason}});
    journal::Completion c;
    c.id = item.update.id;
    c.state = journal::State::Retry;
    c.status = r.status;
    c.error = v.reason;
    c.due_at = now + v.delay.count();
    c.resolve = resolve;
    c.count_attempt = v.counted;
    c.profile_id = item.update.profile_id;
    complete(std::move(c));
}

bool PushProducer::refused_body(const Item& item, const http::HttpResponse& r) const {
    // Only answers about the body's content or size, to a write of the whole row: not a
    // 403, 404 or 409 (they depend on permissions, on what the server holds, on the mode), nor
    // a 415 (about the Content-Type every request has, not this body), not a patch (planned
    // from the server's state), not a removal or reactivation. And only once the API has
    // accepted writes of this job (before or in this run): a gateway, or an endpoint, that
    // refuses every write says nothing about the bodies.
    bool whole_row = job_.mode == config::Mode::Create || job_.mode == config::Mode::Update ||
                     job_.mode == config::Mode::Upsert || job_.mode == config::Mode::Replace;
    bool about_body = r.status == 400 || r.status == 413 || r.status == 422;
    bool accepted = accepted_before_ || counts_.done + counts_.accepted > 0;
    return whole_row && about_body && accepted && r.transport == api::Transport::Answered && item.update.op.empty() &&
           !removal(item);
}

void PushProducer::fail(const Item& item, int status, const std::string& reason, bool counted, bool refused,
                        bool resolve) {
    ++counts_.failed;
    base::logger().warn(
        "Update failed",
        {{"identity", item.update.identity}, {"origin", item.update.origin}, {"status", status}, {"reason", reason}});
    journal::Completion c;
    c.id = item.update.id;
    c.state = journal::State::Failed;
    c.status = status;
    c.error = reason;
    c.count_attempt = counted;
    c.refused = refused;
    c.resolve = resolve;
    complete(std::move(c));
}

void PushProducer::release(dispatch::Outgoing out) {
    auto node = out_.extract(out.key);
    if (node.empty()) return;
    --counts_.sent;  // handed out, never sent
    const auto& u = node.mapped().update;
    complete(released(u));
}

void PushProducer::release_unsent() {
    take_ripening();  // claimed all the same: released with the rest
    for (auto* q : {&ready_, &claimed_})
        for (auto& item : *q) complete(released(item.update));
    ready_.clear();
    claimed_.clear();
    flush();
}

void PushProducer::complete(journal::Completion c) {
    completions_.push_back(std::move(c));
    // Outcomes are recorded a few hundred at a time, and at most every 50 ms unless two
    // thousand wait: each record is a commit (made durable by the next claim's fsync, or
    // after a second), and the synced rows of a commit share its pages. Measured at 20,000
    // rows/s, when each was a commit with its fsync, 256 per commit spent 15-25% of a push
    // on fsync waits. The price: a crash (or a journal error) forgets the answers not yet
    // recorded, at most ~100 ms of them (the loop's tick records whatever is left), and those
    // rows are sent again by the next run as any row left in flight (a create looked up
    // first, an upsert re-sent).
    if (completions_.size() < 256) return;
    auto now = base::now_ms();
    if (completions_.size() >= 2048 || now - flushed_at_ >= 50) flush();
}

void PushProducer::flush() {
    if (completions_.empty()) return;
    flushed_at_ = base::now_ms();
    journal_.updates.complete(job_.name, completions_, flushed_at_);
    completions_.clear();
}

void PushProducer::on_tick(Millis now, dispatch::RunProgress& progress) {
    flush();
    // Also while no answer comes (an outage, a long Retry-After): staged answers reach
    // `synced`, where other connections read them, within kMergeAfter.
    journal_.synced.merge_if_due(base::now_ms());  // the clock record() is given
    // Rows held in memory (a quota pause, a long Retry-After) keep their leases.
    bool holding = !out_.empty() || !claimed_.empty() || !ready_.empty() || ripening_;
    if (holding && now - renewed_at_ >= lease_ / 4) {
        journal_.updates.renew(job_.name, now, lease_);
        renewed_at_ = now;
    }
    progress.read = counts_.read;
    progress.finished = counts_.done + counts_.accepted + counts_.failed;
    progress.failed = counts_.failed;
    print_progress(now);
}

void PushProducer::print_progress(Millis now) {
    if (progress_ == Progress::None) return;
    bool tty = progress_ == Progress::Terminal;
    if (started_at_ == 0) {
        started_at_ = now;
        progress_at_ = now;
        to_send_ = journal_.updates.pending(job_.name) - counts_.queued;  // the queue's alone: no `synced` scan
        return;
    }
    if (now - progress_at_ < (tty ? 1000 : 10000)) return;
    progress_at_ = now;
    double secs = static_cast<double>(now - started_at_) / 1000.0;
    double rate = secs > 0 ? static_cast<double>(counts_.sent) / secs : 0;
    auto finished = counts_.done + counts_.accepted + counts_.failed;
    auto left = std::max<std::int64_t>(0, to_send_ + counts_.queued - finished);
    auto eta = rate > 0 ? static_cast<long long>(static_cast<double>(left) / rate) : -1;
    if (tty)
        std::fprintf(stderr, "\r\033[Kread %lld  sent %lld  ok %lld  retrying %lld  failed %lld  %.0f req/s  ETA %s",
                     (long long)counts_.read, (long long)counts_.sent, (long long)(counts_.done + counts_.accepted),
                     (long long)counts_.retries, (long long)counts_.failed, rate,
                     eta < 0 ? "-" : (std::to_string(eta / 60) + "m" + std::to_string(eta % 60) + "s").c_str());
    else
        base::logger().info("Pushing", {{"job", job_.name},
                                        {"sent", counts_.sent},
                                        {"ok", counts_.done + counts_.accepted},
                                        {"retries", counts_.retries},
                                        {"failed", counts_.failed},
                                        {"req_per_s", std::llround(rate)}});
}

}  // namespace prefsync::push
