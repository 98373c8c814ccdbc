#pragma once
// Change detection: per job and identity, the hash of the last body the API accepted and
// the profile id it answered with. A row whose hash equals it is not sent again. It is also
// where a finished update's outcome lives (the update queue forgets finished updates): an
// answer of 202 is "accepted" until `verify` reads the profile back as complete.
//
// Answers are staged, then merged. record() appends to `synced_staged` (rowid order: each
// insert lands on the table's last page); merge() applies what is staged to `synced` in one
// statement, in (job, identity) order. An answer whose key comes after the last one written
// straight (a source in identity order) is written straight into `synced` instead, at the
// b-tree's right edge, unless an answer of its identity may still be staged.
// Why: recorded straight into `synced`, an answer is an insert at a random place in a
// b-tree keyed by identity as soon as identities do not come in key order (a source sorted
// by date, e-mail identities), and each commit then rewrites about one 4 KiB page per
// answer, twice with the unverified index there was then: a 1,000,000-row backfill in random identity
// order ran at 8,300 rows/s against about 31,000 in key order. Merged in key order, a page
// is written once per merge for all the answers it holds.
//
// What reads `synced` must see what is staged:
// - this store's own reads merge first whenever the identity may be staged (get,
//   last_body, mark_gone: staged_ holds a hash per staged identity, so a false hit only
//   merges early) or anything is staged (the whole-job reads below);
// - a merge runs when kMergeRows are staged or the oldest staged answer is kMergeAfter old
//   (merge_if_due(), after each recording commit and on the run's tick), at the end of
//   every push run and when the store closes (a run's journal closes before its job's
//   lock is released);
// - a look at the journal (`status`, `plan`, `explain`: read-only handles, which cannot
//   merge) reads what is staged as merged, through a view of its own made at its first
//   read (see_leftovers(): what was staged then); another writing connection (the
//   daemon's /metrics, `verify`) sees staged answers once merged, about kMergeAfter later.
//   Only one run of a job writes at a time (the job lock), so no other run stages answers
//   of its identities;
// - answers staged by a process that was killed are merged by the next push run of the
//   job before it reads anything (merge_leftovers()), and sooner, best effort, by any
//   push or pull run, or the daemon as it starts, that ends an unfinished run of its job
//   (cli::end_abandoned_runs). `verify` takes no job lock and does not merge: it verifies
//   the 202s among them once they are merged.
// A merge applies staged rows in the order they were staged, so one identity answered
// twice ends as record() called twice would have left it.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "daemon/journal/database.hpp"

namespace prefsync::journal {

struct SyncedState {
    std::string hash;
    std::optional<std::int64_t> profile_id;
    std::string gone;                    // "" present; "deactivated" or "archived" after its row left the source
    std::optional<std::int64_t> run_id;  // the backfill that recorded it, if one did
    Millis synced_at = 0;
    // "" answered 200/201; "accepted" a 202 not yet read back as complete; "verified".
    std::string verification;
    bool has_body = false;  // the last accepted body is kept (mirror mode's diff base)
};

// What the last answer for an identity said.
enum class Outcome { Done, Accepted };

// Identities by the outcome of their last write, for `status` and /metrics.
struct SyncedCounts {
    std::int64_t done = 0, accepted = 0, verified = 0;
};

// A profile the job has synced and that is still present (not deactivated, archived or
// deleted for having left the source).
struct KnownIdentity {
    std::string identity;
    std::string alt_type, alt_id;
    std::optional<std::int64_t> profile_id;
    Millis accepted_at = 0;  // unverified(): when its 202 was recorded
};

class SyncedStore {
public:
    // Answers staged before a merge is due, and the longest one waits.
    static constexpr std::size_t kMergeRows = 50'000;
    static constexpr Millis kMergeAfter = 2'000;

    explicit SyncedStore(Database& db) : db_(db) {}
    // Merges what it staged, if it can (a journal that fails leaves them to the next push run).
    ~SyncedStore();
    SyncedStore(const SyncedStore&) = delete;
    SyncedStore& operator=(const SyncedStore&) = delete;
    std::optional<SyncedState> get(const std::string& job, const std::string& identity);
    // Records an accepted body's hash (and the profile id, kept when `profile_id` is empty);
    // `body`, when given, is the last accepted body (mirror mode diffs against it). The
    // identity is present again.
    // `outcome` Accepted: a 202, to be verified. `run_id`: the backfill that sent it.
    void record(const std::string& job, const std::string& identity, const std::string& hash,
                std::optional<std::int64_t> profile_id, Millis now,
                const std::optional<std::string>& body = std::nullopt, Outcome outcome = Outcome::Done,
                std::optional<std::int64_t> run_id = std::nullopt);
    // The last accepted body (mirror), if one is kept and still describes the profile.
    std::optional<std::string> last_body(const std::string& job, const std::string& identity);
    // Keeps `body` as the last accepted body of an identity whose synced row has none (its
    // hash says the API accepted exactly this body: a job switched to mirror mode learns
    // its diff base from an unchanged row).
    void keep_body(const std::string& job, const std::string& identity, const std::string& body);
    // The profile left the source and was deactivated or archived ("deactivated",
    // "archived"); or deleted (`gone` empty): forgotten.
    // A removal's success: the identity's row marked `gone` (deleted: no row). An identity
    // without a row (known only by a write that may have landed: UpdateQueue::
    // for_each_unsettled) gets one, with `profile_id` and an empty hash, so a row of it that
    // comes back is a reactivation, and one with its profile id.
    void mark_gone(const std::string& job, const std::string& identity, const std::string& gone,
                   std::optional<std::int64_t> profile_id, Millis now);
    // Every present identity of `job`, in identity order.
    void for_each_present(const std::string& job, const std::function<void(const KnownIdentity&)>& fn);
    std::int64_t count_present(const std::string& job);
    SyncedCounts counts(const std::string& job);

    // Identities whose last write was accepted (202) and not yet verified, oldest first.
    // Both scan the job's rows: no index keeps them apart, which every pushed row paid for
    // (database.cpp), where their callers read each one back through the API or look only
    // once a run of the job started or ended (the daemon's loop).
    std::vector<KnownIdentity> unverified(const std::string& job, int limit);
    bool any_unverified(const std::string& job);
    // Whether the API ever accepted a write of `job` (an identity is known, gone or not).
    bool any_known(const std::string& job);
    // Marks them verified, each only if its last write is still the 202 unverified() returned
    // (a newer write of the identity is verified on its own); returns, per identity marked,
    // how long it waited since its 202 (ms).
    std::vector<Millis> mark_verified(const std::string& job, const std::vector<KnownIdentity>& read_back, Millis now);

    // Identities the source had more than once (the last row of each wins). A run records
    // each as it meets it; after a complete read it forgets those of earlier runs.
    void note_duplicate(const std::string& job, const std::string& identity, std::int64_t run_id);
    bool was_duplicate(const std::string& job, const std::string& identity);
    bool any_duplicates(const std::string& job);
    void forget_duplicates_before(const std::string& job, std::int64_t run_id);

    // Applies every staged answer to `synced`. Inside a transaction it is part of it (and,
    // rolled back, still staged); otherwise its own.
    void merge();
    // merge() if kMergeRows are staged or the oldest has waited kMergeAfter; a merge that
    // fails leaves them staged for the next. Outside a transaction: after the commit that
    // recorded the answers, and on the run's tick.
    void merge_if_due(Millis now);
    // Merges answers another connection staged and did not merge (a process killed, or one
    // whose journal failed, mid-run). A push run calls it once it holds its job's lock,
    // before it reads anything: from then on no other connection stages answers of that
    // job. It may merge another job's answers, still being staged, too: merges are
    // serialised as every write is, and apply each identity's answers in order.
    void merge_leftovers();

private:
    // On a read-only handle, once, at its first read: if a stopped process left answers
    // staged, the reads see them as merged (kSeeLeftovers, synced_store.cpp).
    void see_leftovers();
    static std::uint64_t key(const std::string& job, const std::string& identity);
    bool maybe_staged(const std::string& job, const std::string& identity) const {
        return !staged_.empty() && staged_.contains(key(job, identity));
    }

    Database& db_;
    // What this store staged and has not merged (an over-approximation: entries of a merge
    // another connection made, or of a transaction rolled back, stay until the next merge).
    std::unordered_set<std::uint64_t> staged_;
    std::size_t staged_rows_ = 0;
    Millis first_staged_at_ = 0;
    // The greatest key written straight by record() (only a guess at where the b-tree's
    // right edge is: the order of answers, not correctness, depends on it).
    std::string straight_job_, straight_identity_;
    bool looked_ = false;     // see_leftovers() ran
    bool leftovers_ = false;  // and found some: reads go through its view
};

}  // namespace prefsync::journal
