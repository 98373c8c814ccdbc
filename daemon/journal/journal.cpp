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

}  // namespace prefsync::journal
