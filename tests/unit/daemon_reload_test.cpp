// What a SIGHUP reload keeps from the running config: the settings the daemon reads only at
// start, each named, while the rest of the new config applies.
#include "daemon/cli/daemon_reload.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace prefsync::cli {
namespace {

using ::testing::IsEmpty;

// A daemon config; `journal`, `daemon` and `log` replace their sections, `schedule` the job's.
config::Config parse(const std::string& journal = "{ path: /var/lib/prefsync/journal.db }",
                     const std::string& daemon = "{ metrics_listen: \"127.0.0.1:9464\", shutdown_timeout: 30s }",
                     const std::string& log = "{ level: info }", const std::string& schedule = "every 1m") {
    return config::parse_config(
        "api: { base_url: https://example.com/Profiles/v2, client_id: \"1\", token_env: T }\n"
        "journal: " +
            journal + "\ndaemon: " + daemon + "\nlog: " + log +
            "\n"
            "jobs:\n"
            "  crm:\n"
            "    schedule: " +
            schedule +
            "\n"
            "    source: { type: csv, path: crm.csv }\n"
            "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
            "    mapping: { CustomerName.FirstName: first_name }\n"
            "  erp:\n"
            "    source: { type: csv, path: erp.csv, reject_file: /srv/erp.rejects }\n"
            "    identity: { alternate_id_type: ERPID, column: id }\n"
            "    mapping: { CustomerName.FirstName: first_name }\n",
        "/etc/prefsync/prefsync.yaml", [](const std::string&) { return std::nullopt; });
}

std::vector<std::string> keys(const std::vector<KeptSetting>& kept) {
    std::vector<std::string> out;
    for (const auto& k : kept) out.push_back(k.key);
    return out;
}

TEST(DaemonReload, AnUnchangedConfigKeepsNothing) {
    auto running = parse();
    auto fresh = parse();
    EXPECT_THAT(keep_start_only_settings(running, fresh), IsEmpty());
    EXPECT_EQ(fresh.journal.path, running.journal.path);
}

TEST(DaemonReload, AChangedJournalKeepsTheRunningOneWithItsRejectFilesAndTheRestApplies) {
    auto running = parse();
    auto fresh = parse("{ path: /srv/new/journal.db, retain_days: 7 }", "{ metrics_listen: \"127.0.0.1:9464\" }",
                       "{ level: info }", "every 5m");
    ASSERT_EQ(fresh.jobs[0].source.reject_file, "/srv/new/rejects/crm.rejects.txt");
    auto kept = keep_start_only_settings(running, fresh);
    ASSERT_EQ(kept.size(), 1u) << "shutdown_timeout left out: its default, as running";
    EXPECT_EQ(kept[0].key, "journal.path");
    EXPECT_EQ(kept[0].running, "/var/lib/prefsync/journal.db");
    EXPECT_EQ(kept[0].configured, "/srv/new/journal.db");
    EXPECT_EQ(fresh.journal.path, "/var/lib/prefsync/journal.db") << "runs, the loop and /metrics: one journal";
    EXPECT_EQ(fresh.jobs[0].source.reject_file, "/var/lib/prefsync/rejects/crm.rejects.txt")
        << "a default reject file stays beside the journal in use";
    EXPECT_EQ(fresh.jobs[1].source.reject_file, "/srv/erp.rejects") << "a configured one is the operator's";
    EXPECT_EQ(fresh.journal.retain_days, 7) << "read at every run: applies";
    EXPECT_EQ(fresh.jobs[0].schedule, "every 5m") << "the rest of the new config applies";
}

TEST(DaemonReload, EveryStartOnlySettingIsNamedWithBothValues) {
    auto running = parse();
    auto fresh = parse("{ path: /var/lib/prefsync/journal.db }",
                       "{ metrics_listen: \"127.0.0.1:9999\", shutdown_timeout: 1500ms, timezone: Europe/Berlin }",
                       "{ level: debug, format: json }");
    auto kept = keep_start_only_settings(running, fresh);
    EXPECT_THAT(keys(kept),
                ::testing::ElementsAre("daemon.metrics_listen", "daemon.shutdown_timeout", "daemon.timezone", "log"));
    EXPECT_EQ(kept[0].running, "127.0.0.1:9464");
    EXPECT_EQ(kept[0].configured, "127.0.0.1:9999");
    EXPECT_EQ(kept[1].running, "30s");
    EXPECT_EQ(kept[1].configured, "1500ms");
    EXPECT_EQ(kept[2].running, "UTC");
    EXPECT_EQ(kept[2].configured, "Europe/Berlin");
    EXPECT_EQ(kept[3].running, "level info, format text, bodies false");
    EXPECT_EQ(kept[3].configured, "level debug, format json, bodies false");
    EXPECT_EQ(fresh.daemon.metrics_listen, running.daemon.metrics_listen);
    EXPECT_EQ(fresh.daemon.shutdown_timeout, running.daemon.shutdown_timeout);
    EXPECT_EQ(fresh.daemon.timezone, running.daemon.timezone);
    EXPECT_EQ(fresh.log, running.log);
}

}  // namespace
}  // namespace prefsync::cli
