#pragma once
// The read side of a push run, shared by `sync`/`backfill` (which journal what it yields)
// and `plan` (which only shows it): the source read past its watermark, every row mapped,
// rejects written to the reject file, identities seen remembered, so that
//
// - duplicate identities are reported (the last occurrence wins: the journal coalesces),
// - the profiles whose rows left a full-snapshot source can be found at the end, and
// - a soft-deleted row (the job's deleted_column) stands for its identity's removal.
//
// Design constraints:
// - Memory stays flat in the source's size: the identities seen are 64-bit hashes in a
//   SeenSet, which spills to a file beside the journal beyond about 860,000 of them.
// - Missing identities are only computed after the whole source was read: a run that
//   stopped early (a signal, a source error) must never take unread rows for removed ones.
// - The observer is ticked while reading (the daemon's watchdog), and a stop request is
//   honoured between batches.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "connectors/reject_file.hpp"
#include "connectors/source.hpp"
#include "daemon/dispatch/dispatcher.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/push/seen_set.hpp"

namespace prefsync::push {

struct IntakeRow {
    const connectors::Row* row = nullptr;
    std::optional<mapping::MappedRow> mapped;  // empty: rejected (already in the reject file)
    bool duplicate = false;                    // an earlier row of this run had the identity
    // Rejected for its body alone (not marked deleted: a marked row has no body to reject):
    // its identity's key, the source still listing it. Empty otherwise.
    std::string unmarked_rejected;
};

class Intake {
public:
    // `from_watermark`: read only what is past the job's watermark (sync of an incremental
    // source). `record_rejects`: write rejected rows to the reject file (a run) or only count
    // them (plan, explain: they change nothing).
    Intake(const dispatch::RunContext& context, const config::JobConfig& job, bool from_watermark,
           bool record_rejects = true);

    // The next batch (up to the rows batch_rows() set, 1000 unless set); false at the end,
    // at a stop, or after a source error.
    bool next(std::vector<IntakeRow>& out);
    void batch_rows(std::size_t n) { batch_rows_ = std::max<std::size_t>(1, n); }
    // Where an incremental source stands after the batch just returned.
    std::optional<connectors::Position> position() const { return source_->position(); }
    const std::string& source_identity() const { return source_identity_; }
    // Notes a duplicate's row in the reject file (the report of this run's duplicates).
    void note_duplicate(const IntakeRow& r);
    void flush_rejects() { rejects_.flush(); }
    // For work on a batch that is not reading (journaling it): the watchdog and the status
    // line go on as while reading.
    void beat() { heartbeat_.beat(); }
    void finish();

    // The source was read to its end (no stop, no error) and is a full snapshot (not read
    // incrementally): then what it lacks is what left it.
    bool complete_snapshot() const { return ended_ && !failed_ && !incremental_; }
    // This read is of the whole source (not only past a watermark): read to its end, it
    // tells which rows left.
    bool snapshot() const { return !incremental_; }
    // The source was read to its end (no stop, no error), snapshot or incremental.
    bool read_to_end() const { return ended_ && !failed_; }
    const std::string& source_error() const { return source_error_; }
    // The source error is a change while it was read: read again later, it may be whole.
    bool source_changed() const { return source_changed_; }
    // Read to its end: what the source warned of about the read as a whole (logged already;
    // "" for nothing), e.g. a last record without a line end.
    const std::string& end_warning() const { return end_warning_; }
    // The identity had a row in this read: sent, unchanged, or rejected for its body.
    bool seen(const std::string& identity) const;
    // A known identity still in the source: seen, or seen under the id identity.normalize now
    // makes of its own (a job that took up normalize: the same person, not one who left).
    bool still_in_source(const journal::KnownIdentity& known) const;
    // Why no profile can be taken for one that left the source this read ("" when one can):
    // a row rejected before its identity could be read (an unreadable record, an empty or
    // invalid id) may be any profile's.
    std::string missing_unknowable() const;

    std::int64_t read = 0, rejected = 0, duplicates = 0, deleted = 0;

private:
    const dispatch::RunContext& context_;
    const config::IdentitySpec& identity_;
    std::string source_identity_;
    std::unique_ptr<connectors::Source> source_;
    std::optional<mapping::Mapper> mapper_;
    connectors::RejectFile rejects_;
    std::vector<connectors::Row> rows_;
    std::size_t batch_rows_ = 1000;
    SeenSet seen_;
    // Identities of rows rejected for their body (rare: held in memory, up to a bound past
    // which further ones count as unidentified).
    std::unordered_set<std::uint64_t> rejected_ids_;
    static constexpr std::size_t kMostRejectedIds = 100'000;  // past it, a rejected row counts as unidentified
    std::int64_t unidentified_ = 0;
    dispatch::RunProgress progress_;
    dispatch::Heartbeat heartbeat_;
    std::string source_error_;
    std::string end_warning_;
    bool source_changed_ = false;
    // failed_: a batch threw part-way (the seen set could not spill); nothing after it is
    // read, so no unread row is ever taken for a removed one.
    bool incremental_ = false, ended_ = false, failed_ = false, record_rejects_ = true;
};

// The identities of `job` whose rows are not in a complete read of its source: those whose
// profile exists or may (every present one of `synced`, and one known only by a write that
// may have landed: UpdateQueue::for_each_unsettled), to be removed per on_missing; and those
// known only by writes that never reached the API, pending or failed, to be dropped (sent,
// or retried, they would make the profile of a row that left). `known`: the profiles that
// exist or may, for max_missing.
// The origin a removal of an identity that left the source is journaled with.
inline constexpr std::string_view kLeftTheSource = "no longer in the source";

struct LeftTheSource {
    std::vector<journal::KnownIdentity> identities;
    std::vector<std::string> unsent;
    std::int64_t known = 0;
};
LeftTheSource left_the_source(journal::Journal& journal, const Intake& intake, const std::string& job);

// The most rows a run may remove (`max_missing`) and what to say when `missing` is more.
struct MissingVerdict {
    bool allowed = true;
    std::string refusal;  // why not, naming the limit and how to proceed
};
MissingVerdict judge_missing(const config::JobConfig& job, std::int64_t missing, std::int64_t known,
                             bool allow_mass_delete);

// The journal row that removes (deactivates, archives, deletes) a profile that left the source.
journal::NewUpdate removal_update(const config::JobConfig& job, const std::string& identity,
                                  const std::string& alt_type, const std::string& alt_id,
                                  std::optional<std::int64_t> profile_id, const std::string& origin);

}  // namespace prefsync::push
