// End to end: the real prefsync binary syncing SQL sources (PostgreSQL, SQLite) into an
// emulator on 127.0.0.1, incremental runs checked against the emulator's own counters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <thread>

#include "tests/support/in_process_emulator.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::quote;

const char* kMapping =
    "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
    "    mapping:\n"
    "      CustomerName.FirstName: first_name\n"
    "      CustomerName.LastName: last_name\n"
    "      Emails:\n        - { EmailAddress: email, EmailAddressType: { const: Personal } }\n";

struct SqlWorkspace {
    testing::TempDir dir;
    testing::InProcessEmulator emu;
    std::string config;

    void write_config(const std::string& source) {
        config = dir.write("prefsync.yaml", "api:\n  base_url: " + emu.base_url() +
                                                "\n  client_id: \"12345\"\n  token_env: PREFSYNC_TOKEN\n"
                                                "http: { connections: 8, request_timeout: 10s }\n"
                                                "rate_limit: { requests_per_second: 50000, burst: 5000 }\n"
                                                "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms }\n"
                                                "journal: { path: state/journal.db }\n"
                                                "jobs:\n  crm:\n    source:\n" +
                                                source + kMapping);
    }
    testing::RunResult prefsync(const std::string& args) {
        return testing::run("PREFSYNC_TOKEN=emulator-token " + quote(PREFSYNC_BINARY) + " -c " + quote(config) + " " +
                            args);
    }
    std::int64_t sent_by(const std::string& args, const std::string& expect_out) {
        auto before = emu.requests_counter();
        auto r = prefsync(args);
        EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr(expect_out)) << r.err;
        return emu.requests_counter() - before;
    }
};

const char* kCustomers =
    "CREATE TABLE customers(id bigint PRIMARY KEY, customer_id text NOT NULL, first_name text, last_name text, "
    "email text, updated_at timestamptz NOT NULL);"
    "CREATE INDEX ON customers(updated_at, id);";

std::string insert_customers(int from, int to, const std::string& updated_at) {
    return "INSERT INTO customers SELECT g, 'C' || g, 'First' || g, 'Last' || (g % 1000), 'c' || g || "
           "'@example.com', " +
           updated_at + " FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g;";
}

std::string postgres_source(const testing::TestDatabase& db, const std::string& extra = "") {
    return "      type: postgres\n      conninfo: \"" + db.conninfo() + extra +
           "\"\n"
           "      password_env: PREFSYNC_TEST_PG_PASSWORD\n      table: customers\n"
           "      incremental: { column: updated_at, key: id }\n";
}

TEST(SqlSync, PostgresIncrementalSyncSendsExactlyTheChangedAndNewRows) {
    PREFSYNC_REQUIRE_POSTGRES();
    // Under the sanitizers a fifth: the same batches and cursor fetches, in a fifth of the
    // 200 s this took instrumented.
    constexpr int rows = PREFSYNC_SANITIZED ? 20000 : 100000;
    const auto n = std::to_string(rows);
    testing::TestDatabase db;
    db.admin().exec(std::string(kCustomers) +
                    insert_customers(1, rows, "'2024-01-01'::timestamptz + g * interval '1 second'"));
    SqlWorkspace w;
    w.write_config(postgres_source(db));

    EXPECT_EQ(w.sent_by("sync crm", "read " + n + ", queued " + n), rows);
    EXPECT_EQ(w.emu.store.size(), static_cast<std::size_t>(rows));
    EXPECT_EQ(w.sent_by("sync crm", "queued 0"), 0) << "nothing changed, nothing sent";

    // rows/200 change with the watermark's own timestamp, as many with a later one; 100 are new.
    db.admin().exec(
        "UPDATE customers SET first_name = 'Same' || id, updated_at = (SELECT max(updated_at) FROM customers) "
        "WHERE id % 200 = 1;"
        "UPDATE customers SET first_name = 'Later' || id, updated_at = now() WHERE id % 200 = 2;" +
        insert_customers(rows + 1, rows + 100, "now()"));
    const int changed = rows / 100 + 100;
    EXPECT_EQ(w.sent_by("sync crm", "queued " + std::to_string(changed) + ","), changed);
    EXPECT_EQ(w.emu.store.size(), static_cast<std::size_t>(rows + 100));
    EXPECT_EQ(w.sent_by("sync crm", "queued 0"), 0);

    // A row changed while a run is in progress is picked up by the next run. The run is
    // slowed down by emulator latency; the change commits once the emulator has answered a
    // request (the run has read its snapshot by then) and before the run ends.
    db.admin().exec("UPDATE customers SET first_name = 'Batch' || id, updated_at = now() WHERE id <= 300");
    w.emu.set_faults(R"({"latency_ms": 20})");
    setenv("PREFSYNC_TOKEN", "emulator-token", 1);
    auto before = w.emu.requests_counter();
    testing::ChildProcess run({PREFSYNC_BINARY, "-c", w.config, "sync", "crm"});
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (w.emu.requests_counter() == before && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
    db.admin().exec("UPDATE customers SET first_name = 'During', updated_at = clock_timestamp() WHERE id = " +
                    std::to_string(rows / 2));
    bool updated_before_end = run.running();
    EXPECT_EQ(run.wait(), 0);
    ASSERT_TRUE(updated_before_end) << "the run ended before the change committed; the test proves nothing";
    w.emu.set_faults(R"({"latency_ms": 0})");
    EXPECT_EQ(w.sent_by("sync crm", "queued 1,"), 1) << "the row changed during the previous run";
}

TEST(SqlSync, APostgresSourceFailingMidRunStopsResumablyAndTheNextRunContinues) {
    PREFSYNC_REQUIRE_POSTGRES();
    testing::TestDatabase db;
    // guard() fails for ids listed in `poison`: a source that breaks after some rows were read.
    // STABLE lets the planner flatten the view, so the (updated_at, id) index streams rows and
    // the failure comes mid-read rather than in a sort before the first row.
    db.admin().exec(std::string(kCustomers) +
                    insert_customers(1, 20000, "'2024-01-01'::timestamptz + g * interval '1 second'") +
                    "CREATE TABLE poison(id bigint);"
                    "CREATE FUNCTION guard(bigint) RETURNS bigint LANGUAGE plpgsql STABLE AS $$ BEGIN "
                    "IF EXISTS (SELECT 1 FROM poison WHERE id = $1) THEN RAISE EXCEPTION 'source broke at %', $1; "
                    "END IF; RETURN $1; END $$;"
                    "CREATE VIEW guarded AS SELECT id, customer_id, first_name, last_name, email, updated_at, "
                    "guard(id) AS checked FROM customers;"
                    "INSERT INTO poison VALUES (10500);");
    SqlWorkspace w;
    auto source = postgres_source(db, " options='-c enable_sort=off'") + "      fetch_rows: 500\n";
    source.replace(source.find("table: customers"), 16, "table: guarded");
    w.write_config(source);

    auto before = w.emu.requests_counter();
    auto r = w.prefsync("sync crm");
    EXPECT_EQ(r.exit_code, 3) << r.err << r.out;
    EXPECT_THAT(r.err, HasSubstr("source broke at 10500"));
    EXPECT_THAT(r.err, HasSubstr("Reading stopped; the rows read are journaled, and the next run continues from "
                                 "there. read=10000"));
    EXPECT_EQ(w.emu.requests_counter() - before, 10000) << "what was read before the failure is delivered";

    db.admin().exec("DELETE FROM poison");
    EXPECT_EQ(w.sent_by("sync crm", "read 10001, queued 10000, unchanged 1"), 10000)
        << "the next run starts at the watermark of the last journaled row";
    EXPECT_EQ(w.emu.store.size(), 20000u);
}

// A profile PostgreSQL cannot take (no value for the key: NOT NULL; text with a NUL, which
// its text cannot hold) fails its item, and the rest of the pull goes on: it used to stop the
// pull with exit 3, and every resume again, so one such profile blocked the job for good.
TEST(SqlSync, APulledProfileWithoutItsKeyOrWithANulFailsItsItemNotThePull) {
    PREFSYNC_REQUIRE_POSTGRES();
    testing::TestDatabase db;
    SqlWorkspace w;
    auto id = [&](const emulator::AltId& alt, const std::string& first) {
        boost::json::object body{{"CustomerName", boost::json::object{{"FirstName", first}}}};
        return std::to_string(w.emu.store.upsert(alt, body).body.at("ProfileId").to_number<std::int64_t>());
    };
    w.dir.write("pids.csv", "pid\n" + id({"CRMID", "C1"}, "Ann") + "\n" + id({"LOYALTY", "L1"}, "Lou") + "\n" +
                                id({"CRMID", "C3"}, std::string("Nu\0l", 4)) + "\n");
    w.config = w.dir.write(
        "prefsync.yaml",
        "api:\n  base_url: " + w.emu.base_url() +
            "\n  client_id: \"12345\"\n  token_env: PREFSYNC_TOKEN\n"
            "journal: { path: state/journal.db }\n"
            "jobs:\n  back:\n    source: { type: csv, path: pids.csv }\n    identity: { profile_id_column: pid }\n"
            "    pull: {}\n    sink:\n      type: postgres\n      conninfo: \"" +
            db.conninfo() +
            "\"\n      password_env: PREFSYNC_TEST_PG_PASSWORD\n      table: pulled\n      key: crmid\n"
            "      columns: { crmid: \"AlternateIds[AlternateIdType=CRMID].AlternateId\", first: "
            "CustomerName.FirstName }\n");
    for (int run = 0; run < 2; ++run) {
        auto r = w.prefsync("pull back");
        EXPECT_EQ(r.exit_code, 2) << "run " << run << "\n" << r.err << r.out;
        EXPECT_THAT(r.out, HasSubstr("3 item(s): done 1, missing 0, failed 2"));
        EXPECT_THAT(r.err, HasSubstr("key column \\\"crmid\\\" (AlternateIds[AlternateIdType=CRMID].AlternateId) has "
                                     "no value in this answer"));
        EXPECT_THAT(r.err, HasSubstr("column \\\"first\\\": PostgreSQL text cannot hold a NUL character"));
        EXPECT_EQ(db.admin().scalar("SELECT string_agg(crmid || ':' || first, ' ') FROM pulled"), "C1:Ann");
    }
    EXPECT_EQ(db.admin().scalar("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'pulled'::regclass AND "
                                "attname = 'crmid'"),
              "t");
}

TEST(SqlSync, ProfilesPushedFromPostgresArePulledBackIntoAPostgresTable) {
    PREFSYNC_REQUIRE_POSTGRES();
    testing::TestDatabase db;
    db.admin().exec(std::string(kCustomers) + insert_customers(1, 500, "now()"));
    SqlWorkspace w;
    w.write_config(postgres_source(db));
    std::string text = testing::read_file(w.config);
    text +=
        "  back:\n    pull: { reconcile: crm }\n"
        "    sink:\n      type: postgres\n      conninfo: \"" +
        db.conninfo() +
        "\"\n"
        "      password_env: PREFSYNC_TEST_PG_PASSWORD\n      table: pulled\n"
        "      columns: { profile_id: ProfileId, customer_id: \"AlternateIds[AlternateIdType=CRMID].AlternateId\","
        " email: \"Emails[0].EmailAddress\" }\n";
    w.dir.write("prefsync.yaml", text);
    EXPECT_EQ(w.sent_by("sync crm", "queued 500"), 500);
    auto r = w.prefsync("pull back");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_THAT(r.out, HasSubstr("identical 500, differing 0, missing 0"));
    EXPECT_EQ(db.admin().scalar("SELECT count(*) FROM pulled"), "500");
    EXPECT_EQ(db.admin().scalar("SELECT email FROM pulled WHERE customer_id = 'C42'"), "c42@example.com");
    // Pulled again: upserted by profile id, not duplicated.
    r = w.prefsync("pull back");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(db.admin().scalar("SELECT count(*) FROM pulled"), "500");
}

TEST(SqlSync, SqliteIncrementalSyncAndCheckConfigNameMissingColumns) {
    SqlWorkspace w;
    auto db = w.dir.file("crm.db");
    auto setup = testing::run(
        "sqlite3 " + quote(db) +
        " \"CREATE TABLE customers(id INTEGER PRIMARY KEY, customer_id TEXT, first_name TEXT, "
        "last_name TEXT, email TEXT, updated_at TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 2000) INSERT INTO customers SELECT i, 'C' || i, 'F' || i, 'L' || i, 'c' || i || '@example.com', "
        "'2024-01-01 00:00:00' FROM n;\"");
    ASSERT_EQ(setup.exit_code, 0) << setup.err;
    w.write_config(
        "      type: sqlite\n      path: crm.db\n      table: customers\n"
        "      incremental: { column: updated_at, key: id }\n");
    auto check = w.prefsync("check-config");
    EXPECT_EQ(check.exit_code, 0) << check.err;

    EXPECT_EQ(w.sent_by("sync crm", "queued 2000"), 2000);
    ASSERT_EQ(
        testing::run("sqlite3 " + quote(db) +
                     " \"UPDATE customers SET first_name = 'X', updated_at = '2024-01-01 00:00:00' WHERE id <= 10;"
                     " UPDATE customers SET email = 'new' || id || '@example.com', updated_at = "
                     "'2024-01-02 00:00:00' WHERE id > 1990\"")
            .exit_code,
        0);
    EXPECT_EQ(w.sent_by("sync crm", "queued 20, unchanged 1980"), 20)
        << "every row shares the watermark's timestamp, so all are read; only changes are sent";
    EXPECT_EQ(w.sent_by("sync crm", "read 10, queued 0"), 0) << "the watermark moved to the newest rows";

    // A mapping naming a column the table lacks: check-config says which.
    std::string text = testing::read_file(w.config);
    text.replace(text.find("first_name\n"), 11, "firstname\n");
    w.dir.write("prefsync.yaml", text);
    check = w.prefsync("check-config");
    EXPECT_NE(check.exit_code, 0);
    EXPECT_THAT(check.err, HasSubstr("firstname"));
    EXPECT_THAT(check.err, HasSubstr("first_name"));
}

// An incremental SQLite source with a soft-delete column, C1..C10 synced (set_up()).
struct SoftDeleteSource {
    SqlWorkspace w;
    std::string db = w.dir.file("crm.db");

    void sql(const std::string& statements) {
        auto r = testing::run("sqlite3 " + quote(db) + " \"" + statements + "\"");
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    static std::string insert(int from, int to, const char* at) {
        return "WITH RECURSIVE n(i) AS (SELECT " + std::to_string(from) + " UNION ALL SELECT i + 1 FROM n WHERE i < " +
               std::to_string(to) + ") INSERT INTO customers SELECT i, 'C' || i, 'F' || i, 'L' || i, 'c' || i || " +
               "'@example.com', '" + at + "', NULL FROM n;";
    }
    void set_up() {
        sql("CREATE TABLE customers(id INTEGER PRIMARY KEY, customer_id TEXT, first_name TEXT, last_name TEXT, "
            "email TEXT, updated_at TEXT, gone TEXT);" +
            insert(1, 10, "2024-01-01 00:00:00"));
        w.write_config(
            "      type: sqlite\n      path: crm.db\n      table: customers\n"
            "      incremental: { column: updated_at, key: id }\n");
        w.config = w.dir.write("prefsync.yaml", testing::read_file(w.config) +
                                                    "    on_missing: deactivate\n    deleted_column: gone\n"
                                                    "    max_missing: 100%\n");
        EXPECT_EQ(w.sent_by("sync crm", "queued 10"), 10);
    }
    // The identities the journal holds records of marked removals for, a line each.
    std::string records() {
        return testing::run("sqlite3 " + quote(w.dir.file("state/journal.db")) +
                            " 'SELECT identity FROM marked_removals'")
            .out;
    }
    void set_max_missing(const std::string& value) {
        auto text = testing::read_file(w.config);
        auto at = text.find("max_missing: ");
        ASSERT_NE(at, std::string::npos);
        auto end = text.find('\n', at);
        w.config = w.dir.write("prefsync.yaml", text.replace(at, end - at, "max_missing: " + value));
    }
    // A sync killed (kill -9) once its first request reached the server, which holds it.
    void kill_a_sync() {
        w.emu.set_faults(R"({"slow_ms": 30000})");
        setenv("PREFSYNC_TOKEN", "emulator-token", 1);
        auto before = w.emu.requests_counter();
        testing::ChildProcess run({PREFSYNC_BINARY, "-c", w.config, "sync", "crm"});
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (w.emu.requests_counter() == before && run.running() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
        ASSERT_TRUE(run.running());
        ASSERT_GT(w.emu.requests_counter(), before) << "killed before any request reached the server";
        run.signal(SIGKILL);
        ASSERT_EQ(run.wait(), 128 + SIGKILL);
        w.emu.set_faults(R"({"slow_ms": 0})");
    }
};

// Rows of an incremental source, killed in flight, then marked deleted: the next run holds
// the writes the killed one left until its read ends, so they are not sent before the rows
// that delete them are read (an outside-in test saw 20 upserts of deleted rows, then their
// deactivations); the profiles their writes may have made are deactivated.
TEST(SqlSync, RowsAnIncrementalSourceMarksDeletedAreNotUpsertedFirstAfterAKill) {
    SoftDeleteSource k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    k.sql(SoftDeleteSource::insert(11, 30, "2024-01-02 00:00:00"));
    ASSERT_NO_FATAL_FAILURE(k.kill_a_sync());

    k.sql("UPDATE customers SET gone = 'yes', updated_at = '2024-01-03 00:00:00' WHERE id > 10;");
    auto requests = [&](const char* endpoint) { return w.emu.endpoint_requests(endpoint); };
    auto upserts = requests("W4 upsert"), deactivations = requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(requests("W4 upsert") - upserts, 0) << "nothing of the deleted rows is upserted";
    EXPECT_EQ(requests("W5 patch-by-alternate-id") - deactivations, 20) << "each may have landed";
    for (auto& p : w.emu.store.dump()) {
        auto id = std::string(p.at("AlternateIds").at(0).at("AlternateId").as_string());
        auto* active = p.as_object().if_contains("IsActive");
        EXPECT_EQ(!active || active->as_bool(), id.size() == 2 || id == "C10") << id;
    }
}

// SoftDeleteSource, then C5 marked deleted and read first, 3,000 new rows after it (far more
// than a batch), and the run that reads them killed: its read has not ended, and its
// watermark is past C5.
struct KilledAfterAMarkedRow : SoftDeleteSource {
    void set_up() {
        SoftDeleteSource::set_up();
        sql("UPDATE customers SET gone = 'yes', updated_at = '2024-01-02 00:00:00' WHERE id = 5;" +
            insert(11, 3010, "2024-01-02 00:00:01"));
        kill_a_sync();
    }
    // Every profile active but `inactive`; 3,010 of them.
    void expect_active_but(const std::string& inactive) {
        EXPECT_EQ(w.emu.store.size(), 3010u);
        for (auto& p : w.emu.store.dump()) {
            auto id = std::string(p.at("AlternateIds").at(0).at("AlternateId").as_string());
            auto* active = p.as_object().if_contains("IsActive");
            EXPECT_EQ(!active || active->as_bool(), id != inactive) << id;
        }
    }
};

// The next read starts past the marked row, so a removal kept only in memory for the read's
// end was lost, and the profile stayed active. Recorded with the row's batch, it is the next
// run's: `plan` shows it, the sync deactivates the profile, and a further run sends nothing.
TEST(SqlSync, ARowMarkedDeletedInAReadKilledBeforeItsEndIsRemovedByTheNextRun) {
    KilledAfterAMarkedRow k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, HasSubstr("1 deactivate")) << plan.err;
    EXPECT_THAT(plan.out, HasSubstr("deactivate CRMID:C5 ")) << plan.err;
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 1);
    k.expect_active_but("C5");
    EXPECT_EQ(w.sent_by("sync crm", "queued 0"), 0) << "settled: nothing left to send";
}

// The row back, unmarked, before the next run: the last row decides, across runs too. The
// killed read's removal is taken back, in `plan` and in the sync, and the profile stays.
TEST(SqlSync, ARemovalAKilledReadLeftIsTakenBackByTheRowUnmarkedInTheNextRead) {
    KilledAfterAMarkedRow k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    k.sql("UPDATE customers SET gone = NULL, updated_at = '2024-01-03 00:00:00' WHERE id = 5;");
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, Not(HasSubstr("deactivate"))) << plan.err;
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("sync crm");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 0);
    k.expect_active_but("none");
    EXPECT_EQ(w.sent_by("sync crm", "queued 0"), 0) << "settled: nothing left to send";
}

// max_missing refuses the removal a killed read left: it stays for the next read to judge
// again (an incremental source's next read does not see the row), and is journaled by the
// run that allows it. Before, the refusal let go of it for good.
TEST(SqlSync, ARemovalAKilledReadLeftThatMaxMissingRefusesWaitsForARunThatAllowsIt) {
    KilledAfterAMarkedRow k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    ASSERT_NO_FATAL_FAILURE(k.set_max_missing("0"));
    auto records = [&] { return k.records(); };
    EXPECT_EQ(records(), "CRMID:C5\n") << "the killed read left its removal";
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    for (int run = 0; run < 2; ++run) {
        auto r = w.prefsync("sync crm");
        EXPECT_EQ(r.exit_code, 2) << "run " << run << "\n" << r.err << r.out;
        EXPECT_THAT(r.out + r.err, HasSubstr("nothing was deactivated")) << "run " << run;
        EXPECT_EQ(records(), "CRMID:C5\n") << "run " << run;
    }
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 0);
    k.expect_active_but("none");
    auto plan = w.prefsync("plan crm --allow-mass-delete");
    EXPECT_THAT(plan.out, HasSubstr("deactivate CRMID:C5 ")) << plan.err;
    auto r = w.prefsync("sync crm --allow-mass-delete");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 1);
    k.expect_active_but("C5");
    EXPECT_EQ(records(), "") << "journaled: the record ends with it";
    EXPECT_EQ(w.sent_by("sync crm", "queued 0"), 0) << "nothing left to refuse or send";
}

// The row back unmarked but its body rejected (a required value empty): the source lists
// it, so it takes the killed read's removal back as any unmarked row does (and as the
// removals of rows that left count a rejected row's identity present). The profile stays.
TEST(SqlSync, ARemovalAKilledReadLeftIsTakenBackByTheRowUnmarkedEvenWithItsBodyRejected) {
    KilledAfterAMarkedRow k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    auto text = testing::read_file(w.config);
    auto at = text.find("CustomerName.FirstName: first_name");
    ASSERT_NE(at, std::string::npos);
    w.config = w.dir.write("prefsync.yaml", text.replace(at, 34,
                                                         "CustomerName.FirstName: { column: first_name, required: "
                                                         "true }"));
    k.sql(
        "UPDATE customers SET gone = NULL, first_name = '', updated_at = '2024-01-03 00:00:00' WHERE id = 5;"
        "UPDATE customers SET updated_at = '2024-01-04 00:00:00' WHERE id = 6;");
    auto plan = w.prefsync("plan crm");
    EXPECT_THAT(plan.out, Not(HasSubstr("deactivate"))) << plan.err;
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("sync crm");
    EXPECT_THAT(r.out, HasSubstr("rejected 1")) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 0);
    EXPECT_EQ(k.records(), "");
    k.expect_active_but("none");
}

// A backfill reads the whole source: a row it reads unmarked ends the record a killed
// incremental read left, even when the backfill's own removals are refused (here a row gone
// from the table, over max_missing 0). Left in place, the next sync took the record up and,
// allowed, deactivated a profile the source lists.
TEST(SqlSync, ARemovalAKilledReadLeftEndsWhenABackfillReadsTheRowUnmarked) {
    KilledAfterAMarkedRow k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    // C6 changed last: the backfill leaves the watermark past C5, so the sync does not read C5.
    k.sql(
        "UPDATE customers SET gone = NULL, updated_at = '2024-01-03 00:00:00' WHERE id = 5;"
        "UPDATE customers SET updated_at = '2024-01-04 00:00:00' WHERE id = 6;"
        "DELETE FROM customers WHERE id = 7;");
    ASSERT_NO_FATAL_FAILURE(k.set_max_missing("0"));
    EXPECT_EQ(k.records(), "CRMID:C5\n");
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("backfill crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out + r.err, HasSubstr("nothing was deactivated")) << "C7 left: refused";
    EXPECT_EQ(k.records(), "") << "C5's unmarked row ended its record";
    r = w.prefsync("sync crm --allow-mass-delete");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 0);
    k.expect_active_but("none");
}

// A backfill reads the whole source, and moves an incremental source's watermark as a sync
// does: the removal of a row it reads marked deleted, refused by max_missing, waits in a
// record for the next sync, which does not read that row again. Before, it was lost: the
// next sync neither removed the profile nor kept the row's writes from going out.
TEST(SqlSync, ARemovalABackfillOfAnIncrementalSourceFindsAndMaxMissingRefusesWaitsForASync) {
    SoftDeleteSource k;
    ASSERT_NO_FATAL_FAILURE(k.set_up());
    auto& w = k.w;
    // C8 marked without moving its updated_at; C9 changed last: the watermark ends past C8.
    k.sql(
        "UPDATE customers SET gone = 'yes' WHERE id = 8;"
        "UPDATE customers SET updated_at = '2024-01-05 00:00:00' WHERE id = 9;");
    ASSERT_NO_FATAL_FAILURE(k.set_max_missing("0"));
    auto deactivations = w.emu.endpoint_requests("W5 patch-by-alternate-id");
    auto r = w.prefsync("backfill crm");
    EXPECT_EQ(r.exit_code, 2) << r.err << r.out;
    EXPECT_THAT(r.out + r.err, HasSubstr("nothing was deactivated"));
    EXPECT_EQ(k.records(), "CRMID:C8\n");
    r = w.prefsync("sync crm --allow-mass-delete");
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    EXPECT_EQ(w.emu.endpoint_requests("W5 patch-by-alternate-id") - deactivations, 1);
    for (auto& p : w.emu.store.dump()) {
        auto id = std::string(p.at("AlternateIds").at(0).at("AlternateId").as_string());
        auto* active = p.as_object().if_contains("IsActive");
        EXPECT_EQ(!active || active->as_bool(), id != "C8") << id;
    }
    EXPECT_EQ(k.records(), "");
}

}  // namespace
}  // namespace prefsync
