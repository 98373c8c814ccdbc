#pragma once
// The journal: what prefsync has to send and has sent, per job, in one database file per
// deployment, so a crash, a kill -9, an outage or a 429 storm loses nothing and a restart
// resumes where it stopped. One Database handle, one store per concern:
//
//   updates     the push queue (record before send, leases, coalescing)  update_queue.hpp
//   synced      change detection (hash of the last accepted body)        synced_store.hpp
//   rate        the host-wide request bucket and daily quota             small_stores.hpp
//   runs        one record per run, for `status`, reports and resumes    small_stores.hpp
//   targets     the API (base_url, client_id) each job's state belongs to small_stores.hpp
//   watermarks  how far an incremental source has been read              small_stores.hpp
//   marked      removals of rows a read in progress marked deleted        small_stores.hpp
//   pulls       pull items and the durable size of the pull's output     small_stores.hpp
//   schedule    the daemon's last fires and parked jobs                  small_stores.hpp
//
// What must be durable before a request leaves, and what that costs per row:
// - The update, with its body, before it is claimed; the claim (inflight, with a lease and
//   this process's token) before the request leaves. This is what makes a crash safe for
//   every write: an update left in flight is resolved first when it is taken again (a create
//   is looked up, never sent twice; a mirror patch is re-planned against the profile).
//   Upserts, replaces and merges would survive without their bodies while the source
//   still has the row, but creates, patches and removals would not, and a delta file
//   replaced before the next run would lose them. Tried and measured (50,000 upserts):
//   journaling in-flight upserts without their bodies cut the journal's disk writes from
//   4.1 to 1.4 KB per row but not its CPU (the cost is B-tree and statement work, not
//   bytes), so bodies stay and one queue for all keeps one set of rules. Cost: rows read
//   and sent at once are one in-flight batch record per transaction (every row and body in
//   one blob, standing for that many inflight rows: update_queue.hpp), not an insert per
//   row; others are one insert per row, claimed hundreds per transaction.
// - The outcome, when the answer comes: the update leaves the queue and its hash becomes
//   the identity's synced row. Cost: for a source in identity order one upsert per row at
//   the b-tree's right edge; otherwise one append per row to the staged answers, merged
//   into `synced` in identity order tens of thousands at a time (synced_store.hpp). A
//   batch row's bit is set, its batch deleted with its last row; a queued row is deleted;
//   batched per loop tick.
//   Nothing of a finished update is kept beyond that row (16-byte hash, profile id,
//   times, the 202-to-verify mark): about 80 bytes per identity after a run. Committed
//   without an fsync (Sync::deferred): after a power loss the journal is a prefix of its
//   commits, i.e. as a kill -9 at that point would have left it. What makes every such
//   prefix safe is that a request leaves only once its own claim is durable: a prefix
//   that drops an outcome still holds that update in flight, and it is resolved as after
//   a kill (a create looked up, an upsert sent again); nothing is sent for an update or
//   identity after its outcome without a new durable claim (retries, promoted waiting rows
//   and new updates are claimed again). Decisions read from the outcomes (change detection,
//   mirror removals, a run's end) are durable before anything acts on them, which covers
//   every outcome before them. Measured: 100,000 upserts, 467 fdatasync calls before, 126
//   after.
// - A batch of rows read from the source and journaled already claimed is committed without
//   an fsync too, and its requests wait for a sync of the write-ahead log begun after the
//   commit (Database::begin_sync), which runs on a thread of its own while the batch before
//   is sent: the claim is durable before its request leaves, as before, but the loop no
//   longer stops for the disk. A power loss before the sync undoes the batch whole (its
//   watermark too): nothing of it was sent, and the source is read again. Measured on a
//   disk whose fsyncs took 4-13 ms under load: the push's main thread went from 126 to 27
//   fdatasync calls per 100,000 rows (650 to 116 ms).
// - Failures keep their body (dead letters for `retry`); retries keep theirs until sent.
// - What a deletion frees whole is not zeroed (secure_delete=FAST, database.cpp): an answered
//   batch's bodies were otherwise written twice. The run's end fills or cuts off the free
//   pages and empties the log (apply_retention), so finished updates' bodies do not outlive
//   it in the files, unless another connection kept that from finishing (it says so; the
//   next run's end tries again): docs/ARCHITECTURE.md, section 5.1.
// - A pull's items (the ids it is to fetch) and outcomes, and the shared bucket's tokens,
//   are committed without an fsync (Sync::deferred, database.hpp): a power loss can only
//   undo the newest of them (at most about a second's), which the resumed pull reads or
//   fetches again (its output cut back to the size the journal kept) or the quota does not
//   count. A pull's outcomes are recorded only once the output bytes they cover are fsynced.
// Every other commit (enqueues and claims outside a feed's batch, a run's end) is
// synchronous=FULL (database.hpp): the batches are what pay for it.
//
// Job locks are files beside the journal (job_lock.hpp). Invariants, per store, are in the
// store's header; what the journal promises as a whole is in docs/ARCHITECTURE.md.
#include <string>

#include "daemon/journal/database.hpp"
#include "daemon/journal/small_stores.hpp"
#include "daemon/journal/synced_store.hpp"
#include "daemon/journal/update_queue.hpp"

namespace prefsync::journal {

struct RetentionReport {
    std::int64_t runs = 0;
    bool reclaimed = false;  // Database::reclaim_space() finished
};

class Journal {
public:
    // Opens (creating 0600 if needed) and migrates. Throws JournalError. Access::read_only:
    // for looking only, without write access (database.hpp); every write then fails.
    explicit Journal(const std::string& path, Access access = Access::read_write)
        : db(path, access),
          synced(db),
          updates(db, synced),
          rate(db),
          runs(db),
          targets(db),
          watermarks(db),
          marked(db),
          pulls(db),
          schedule(db) {}

    Database db;
    SyncedStore synced;
    UpdateQueue updates;
    RateStore rate;
    RunLog runs;
    TargetStore targets;
    WatermarkStore watermarks;
    MarkedRemovalStore marked;
    PullStore pulls;
    ScheduleStore schedule;

    // journal.retain_days: deletes ended runs older than that and returns the freed pages to
    // the file system. Finished updates are not kept at all (their outcome is in `synced`);
    // pending and failed updates, change-detection hashes and watermarks are never pruned.
    RetentionReport apply_retention(Millis now, int retain_days);

    // Forgets what the journal holds of push job `job`'s writes: its pending and failed
    // updates (in-flight batches too), change detection (`synced`, staged answers), duplicate
    // ids, watermark and the removals a read left (marked); its runs stay. For a job moved to
    // another API, whose state is the old one's (TargetStore). Only for a holder of the job's
    // lock, before its run reads or sends anything.
    void forget_job_state(const std::string& job);
};

}  // namespace prefsync::journal
