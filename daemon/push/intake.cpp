#include "daemon/push/intake.hpp"

#include <cmath>
#include <filesystem>

#include "connectors/open_source.hpp"
#include "daemon/base/logger.hpp"

namespace prefsync::push {
namespace {

std::uint64_t identity_hash(std::string_view identity) {
    return std::hash<std::string_view>{}(identity);
}

// Beside the journal: a directory the service may write, sized for data, and not a tmpfs.
std::string spill_dir(const std::string& journal_path) {
    return std::filesystem::path(journal_path).parent_path().string();  // SeenSet takes "" as "."
}

}  // namespace

Intake::Intake(const dispatch::RunContext& c, const config::JobConfig& job, bool from_watermark, bool record_rejects)
    : context_(c),
      identity_(job.identity),
      source_identity_(connectors::position_identity(job.source)),
      rejects_(job.source.reject_file, job.name),
      seen_(spill_dir(c.config.journal.path)),
      heartbeat_(c.observer, progress_),
      record_rejects_(record_rejects) {
    progress_.job = job.name;
    progress_.reading = true;
    incremental_ = job.source.incremental() != nullptr && from_watermark;  // a backfill reads everything
    std::optional<connectors::Position> since;
    if (incremental_ && from_watermark)
        if (auto mark = c.journal.watermarks.get(job.name, source_identity_))
            since = connectors::Position{mark->value, mark->key};
    connectors::SettleWait settle{.check = true, .wait = c.wait_for_source, .stop = c.stop, .now = {}, .sleep = {}};
    settle.sleep = [&](std::chrono::milliseconds ms, const std::string& why) {
        base::logger().info("Waiting for the source to settle",
                            {{"job", job.name}, {"wait_ms", ms.count()}, {"reason", why}});
        connectors::sleep_unless_stopped(ms, c.stop);
    };
    source_ = connectors::open_source(job.source, since, settle);
    mapper_.emplace(mapping::Mapper::compile(job, source_->columns()));
    if (record_rejects_)
        base::logger().info(
            "Reading", {{"source", source_->describe()}, {"job", job.name}, {"past_watermark", since.has_value()}});
}

bool Intake::next(std::vector<IntakeRow>& out) {
    out.clear();
    if (ended_ || failed_ || !source_error_.empty() || (context_.stop && context_.stop->load())) return false;
    try {
        if (!source_->next_batch(rows_, batch_rows_)) {
            ended_ = true;
            end_warning_ = source_->end_warning();
            if (!end_warning_.empty()) base::logger().warn(end_warning_);
            return false;
        }
    } catch (const connectors::SourceError& e) {
        source_error_ = e.what();
        source_changed_ = dynamic_cast<const connectors::SourceChangedError*>(&e) != nullptr;
        return false;
    }
    out.reserve(rows_.size());
    for (const auto& row : rows_) {
        ++read;
        progress_.read = read;
        heartbeat_.beat();
        IntakeRow r;
        r.row = &row;
        if (row.rejected()) {
            ++rejected;
            // Refused for one of its values (the source read them all): its identity may
            // still be readable, and then only that profile is in doubt.
            if (auto id = row.values.empty() ? std::nullopt : mapper_->identity_of(row);
                id && rejected_ids_.size() < kMostRejectedIds)
                rejected_ids_.insert(identity_hash(id->key()));
            else
                ++unidentified_;
            if (record_rejects_) rejects_.write(row.origin, row.error, row.raw);
            out.push_back(std::move(r));
            continue;
        }
        auto result = mapper_->map(row);
        if (auto* err = std::get_if<mapping::RowError>(&result)) {
            ++rejected;
            if (err->identity) r.unmarked_rejected = err->identity->key();
            if (err->identity && rejected_ids_.size() < kMostRejectedIds)
                rejected_ids_.insert(identity_hash(err->identity->key()));
            else
                ++unidentified_;
            if (record_rejects_) rejects_.write(row.origin, err->key_path + ": " + err->message, row.raw);
            out.push_back(std::move(r));
            continue;
        }
        r.mapped = std::move(std::get<mapping::MappedRow>(result));
        if (r.mapped->deleted) ++deleted;
        try {
            r.duplicate = !seen_.insert(identity_hash(r.mapped->identity.key()));
        } catch (...) {
            failed_ = true;
            throw;
        }
        if (r.duplicate) ++duplicates;
        out.push_back(std::move(r));
    }
    return true;
}

void Intake::note_duplicate(const IntakeRow& r) {
    if (!record_rejects_) return;
    rejects_.write(r.row->origin,
                   "duplicate identity " + r.mapped->identity.key() +
                       ": an earlier row has it too; this later row is the one sent (the last occurrence wins)",
                   r.row->raw);
}

void Intake::finish() {
    if (!record_rejects_) return;
    rejects_.flush();
    if (rejected > 0) base::logger().warn("Rows rejected", {{"rejected", rejected}, {"reject_file", rejects_.path()}});
    if (duplicates > 0)
        base::logger().warn("Duplicate ids (the last occurrence wins)",
                            {{"duplicates", duplicates}, {"reject_file", rejects_.path()}});
}

std::string Intake::missing_unknowable() const {
    if (unidentified_ == 0) return "";
    return std::to_string(unidentified_) +
           " rejected row(s) have no readable identity and could be any of them (fix them in the reject file " +
           rejects_.path() + ")";
}

bool Intake::seen(const std::string& identity) const {
    auto hash = identity_hash(identity);
    return seen_.contains(hash) || rejected_ids_.contains(hash);
}

bool Intake::still_in_source(const journal::KnownIdentity& known) const {
    if (seen(known.identity)) return true;
    if (identity_.normalize.empty() || known.alt_type != identity_.alternate_id_type) return false;
    mapping::Identity now{known.alt_type, mapping::alternate_id_of(identity_, known.alt_id), std::nullopt};
    return now.alternate_id != known.alt_id && seen(now.key());
}

LeftTheSource left_the_source(journal::Journal& journal, const Intake& intake, const std::string& job) {
    LeftTheSource out;
    journal.synced.for_each_present(job, [&](const journal::KnownIdentity& k) {
        ++out.known;
        if (!intake.still_in_source(k)) out.identities.push_back(k);
    });
    journal.updates.for_each_unsettled(job, [&](const journal::KnownIdentity& k, bool may_exist) {
        // A profile that may exist is known whether or not its row is still in the source:
        // counted only when it left, a killed first run's 30 writes with 10 rows gone were
        // "10 of 10 known profiles (100%)", over any max_missing.
        if (may_exist) ++out.known;
        if (intake.still_in_source(k)) return;
        if (may_exist) {
            out.identities.push_back(k);
        } else {
            out.unsent.push_back(k.identity);
        }
    });
    return out;
}

MissingVerdict judge_missing(const config::JobConfig& job, std::int64_t missing, std::int64_t known,
                             bool allow_mass_delete) {
    MissingVerdict v;
    if (missing == 0 || allow_mass_delete) return v;
    const auto& limit = job.max_missing;
    double most = limit.percent ? std::floor(static_cast<double>(known) * limit.value / 100.0) : limit.value;
    if (static_cast<double>(missing) <= most) return v;
    v.allowed = false;
    char share[32];
    std::snprintf(share, sizeof share, "%.1f%%",
                  known > 0 ? 100.0 * static_cast<double>(missing) / static_cast<double>(known) : 100.0);
    v.refusal = std::to_string(missing) + " of " + std::to_string(known) + " known profiles (" + share +
                ") are no longer in the source, more than jobs." + job.name + ".max_missing (" + limit.text +
                "): nothing was " + std::string(config::to_string(job.on_missing)) +
                "d. If the source really lost them, run again with --allow-mass-delete";
    return v;
}

journal::NewUpdate removal_update(const config::JobConfig& job, const std::string& identity,
                                  const std::string& alt_type, const std::string& alt_id,
                                  std::optional<std::int64_t> profile_id, const std::string& origin) {
    journal::NewUpdate u;
    u.identity = identity;
    u.alt_type = alt_type;
    u.alt_id = alt_id;
    u.profile_id = profile_id;
    u.origin = origin;
    switch (job.on_missing) {
        case config::OnMissing::Deactivate:
            u.op = "deactivate";
            u.body = R"([{"op":"add","path":"/IsActive","value":false}])";
            break;
        case config::OnMissing::Archive:
            u.op = "archive";
            u.body = R"({"GlobalDeactivate":true})";
            break;
        case config::OnMissing::Delete: u.op = "delete"; break;
        case config::OnMissing::Ignore: break;
    }
    u.hash = "missing:" + u.op;
    return u;
}

}  // namespace prefsync::push
