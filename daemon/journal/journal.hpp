#pragma once
// The journal: what prefsync has to send and has sent, per job, in one database file per
// deployment, so a crash, a kill -9, an outage or a 429 storm loses nothing and a restart
// resumes where it stopped. One Database handle, one store per concern:
//
//   updates     the push queue (record before send, leases, coalescing)  update_queue.hpp
//   synced      change detection (hash of the last accepted body)        synced_store.hpp
//   rate        the host-wide request bucket and daily quota             small_stores.hpp
//   runs        one record per run, for `status`, reports and resumes    small_stores.hpp
//   watermarks  how far an incremental source has been read              small_stores.hpp
//   pulls       pull items and the durable size of the pull's output     small_stores.hpp
//   schedule    the daemon's last fires and parked jobs                  small_stores.hpp
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
    std::int64_t updates = 0, runs = 0;
};

class Journal {
public:
    // Opens (creating 0600 if needed) and migrates. Throws JournalError.
    explicit Journal(const std::string& path)
        : db(path), synced(db), updates(db, synced), rate(db), runs(db), watermarks(db), pulls(db), schedule(db) {}

    Database db;
    SyncedStore synced;
    UpdateQueue updates;
    RateStore rate;
    RunLog runs;
    WatermarkStore watermarks;
    PullStore pulls;
    ScheduleStore schedule;

    // journal.retain_days: deletes finished updates (done, verified, superseded, failed)
    // and ended runs older than that, in bounded steps, and returns the freed pages to the
    // file system. Pending updates, change-detection hashes and watermarks are never pruned.
    RetentionReport apply_retention(Millis now, int retain_days);
};

}  // namespace prefsync::journal
