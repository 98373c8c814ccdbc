#include "daemon/push/target_guard.hpp"

#include "daemon/api/api_target.hpp"

namespace prefsync::push {

std::string target_of(const config::Config& config) {
    return api::api_target(config.api.base_url, config.api.client_id);
}

std::string shown_target(const config::Config& config) {
    return config.api.base_url + (config.api.client_id.empty() ? "" : " (client_id " + config.api.client_id + ")");
}

void guard_target(journal::Journal& journal, const config::Config& config, const config::JobConfig& job, TargetUse use,
                  journal::Millis now) {
    journal::JobTarget here{target_of(config), shown_target(config), now};
    auto recorded = journal.targets.get(job.name);
    bool same = recorded && recorded->target == here.target;
    if (use == TargetUse::Adopt) {
        if (same)
            throw TargetMoved("jobs." + job.name + ": --new-target forgets what the journal holds of another API, " +
                              "but the job's state is " + here.shown +
                              "'s already (the config's): nothing to forget. `prefsync backfill " + job.name +
                              " --resume` continues a backfill that was stopped, `prefsync backfill " + job.name +
                              "` sends every row");
        // One transaction: a crash between the two must not leave the old API recorded over
        // an emptied state (a later run against it would send every row as new).
        journal::Database::Transaction tx(journal.db);
        journal.forget_job_state(job.name);
        journal.targets.set(job.name, here);
        tx.commit();
        return;
    }
    if (!recorded || same) return;
    throw TargetMoved("jobs." + job.name +
                      ": the journal's state of this job (profile ids, what the API was sent) is " + recorded->shown +
                      "'s, but the config now names " + here.shown +
                      ". Used there it would skip the rows sent before and could update or remove other profiles "
                      "under those ids, so nothing was sent. If this is another server, `prefsync backfill " +
                      job.name + " --new-target` forgets the old state (its failures and pending updates too) and " +
                      "sends every row; if it is the same one under another address, put the old base_url back");
}

void record_target(journal::Journal& journal, const config::Config& config, const config::JobConfig& job,
                   journal::Millis now) {
    if (journal.targets.get(job.name)) return;
    journal.targets.set(job.name, {target_of(config), shown_target(config), now});
}

}  // namespace prefsync::push
