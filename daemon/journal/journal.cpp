#include "daemon/journal/journal.hpp"

namespace prefsync::journal {

RetentionReport Journal::apply_retention(Millis now, int retain_days) {
    RetentionReport report;
    if (retain_days > 0) {
        Millis before = now - static_cast<Millis>(retain_days) * 86'400'000;
        report.runs = runs.prune(before);
        rate.prune(now - 2 * 86'400'000);
    }
    // Whatever the retention: deleted bodies must not outlive the run in freed pages.
    report.reclaimed = db.reclaim_space();
    return report;
}

void Journal::forget_job_state(const std::string& job) {
    Database::Transaction tx(db);
    auto run = [&](const char* sql) { db.prepare(sql).bind(1, job).run(); };
    run("DELETE FROM inflight_batch_rows WHERE id IN (SELECT id FROM inflight_batches WHERE job = ?1)");
    run("DELETE FROM inflight_batches WHERE job = ?1");
    run("DELETE FROM updates WHERE job = ?1");
    run("DELETE FROM synced_staged WHERE job = ?1");
    run("DELETE FROM synced WHERE job = ?1");
    run("DELETE FROM duplicates WHERE job = ?1");
    run("DELETE FROM watermarks WHERE job = ?1");
    run("DELETE FROM marked_removals WHERE job = ?1");
    tx.commit();
}

}  // namespace prefsync::journal
