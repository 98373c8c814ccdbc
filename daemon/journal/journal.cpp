#include "daemon/journal/journal.hpp"

namespace prefsync::journal {

RetentionReport Journal::apply_retention(Millis now, int retain_days) {
    RetentionReport report;
    if (retain_days <= 0) return report;
    Millis before = now - static_cast<Millis>(retain_days) * 86'400'000;
    // Steps of 10,000 rows: each a short transaction, so a run sharing the journal waits little.
    for (std::int64_t n = 0; (n = updates.prune(before, 10'000)) > 0;) report.updates += n;
    report.runs = runs.prune(before);
    rate.prune(now - 2 * 86'400'000);
    db.reclaim_space();
    return report;
}

}  // namespace prefsync::journal
