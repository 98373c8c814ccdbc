// The PostgreSQL source and sink against a real PostgreSQL 15 server (scripts/test.sh starts
// a private one; see tests/support/postgres.hpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "connectors/open_source.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/table_sink.hpp"
#include "tests/support/error_of.hpp"
#include "tests/support/postgres.hpp"

namespace prefsync::connectors {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

struct PostgresTest : ::testing::Test {
    std::optional<testing::TestDatabase> db;
    void SetUp() override {
        PREFSYNC_REQUIRE_POSTGRES();
        db.emplace();
    }
    PostgresConnectionConfig connection() {
        PostgresConnectionConfig pg;
        pg.conninfo = db->conninfo();
        pg.password.kind = config::TokenSpec::Kind::Env;
        pg.password.value = "PREFSYNC_TEST_PG_PASSWORD";
        pg.password.key = "jobs.crm.source.password_env";
        return pg;
    }
    PostgresSourceConfig source(const std::string& table = "customers") {
        PostgresSourceConfig c;
        c.table = table;
        c.connection = connection();
        return c;
    }
    // Through open_source, as a job opens it.
    static std::unique_ptr<Source> open_postgres(const PostgresSourceConfig& c,
                                                 const std::optional<Position>& since = {}) {
        return open_source(SourceConfig{{}, "jobs.crm.source", "", c}, since);
    }
    static std::vector<Row> read_all(Source& s, std::size_t batch = 1000) {
        std::vector<Row> all, rows;
        while (s.next_batch(rows, batch)) all.insert(all.end(), rows.begin(), rows.end());
        return all;
    }
    static std::vector<std::string> column(const std::vector<Row>& rows, std::size_t i) {
        std::vector<std::string> out;
        for (const auto& r : rows) out.push_back(r.values[i].value_or("NULL"));
        return out;
    }
};

TEST_F(PostgresTest, ReadsEveryTypeAsTextAndKeepsNullApartFromEmpty) {
    db->admin().exec(
        "CREATE TABLE customers(id bigint, name text, vip boolean, score numeric(6,2), ratio float8, "
        "born date, seen timestamptz, note varchar(10));"
        "INSERT INTO customers VALUES (1, 'Zoë', true, 12.5, 0.1, '1990-02-03', '2024-05-01 12:00:00+02', ''),"
        "(2, NULL, false, NULL, NULL, NULL, NULL, NULL);");
    auto s = open_postgres(source());
    EXPECT_THAT(s->columns(), ElementsAre("id", "name", "vip", "score", "ratio", "born", "seen", "note"));
    auto rows = read_all(*s);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_THAT(rows[0].values,
                ElementsAre("1", "Zoë", "t", "12.50", "0.1", "1990-02-03", "2024-05-01 10:00:00+00", ""))
        << "timestamps in UTC, ISO; the empty string stays a value";
    EXPECT_EQ(rows[1].values[1], std::nullopt);
    EXPECT_EQ(rows[1].values[7], std::nullopt);
    EXPECT_EQ(rows[1].origin, "customers row 2");
    EXPECT_THAT(s->describe(), HasSubstr("dbname=")) << s->describe();
}

TEST_F(PostgresTest, FloatsAreWrittenInFixedNotationAndBytesThatAreNotUtf8RejectTheirRow) {
    // PostgreSQL prints a float8 of 1000000 as "1e+06": a phone number or ZIP code stored as
    // a float must reach the profile as digits.
    db->admin().exec(
        "CREATE TABLE customers(id int, phone float8, zip float4, odd float8);"
        "INSERT INTO customers VALUES (1, 8000000000, 100000, 'NaN'), (2, 5551234567, 97201, 0.1)");
    auto rows = read_all(*open_postgres(source()));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_THAT(rows[0].values, ElementsAre("1", "8000000000", "100000", "NaN"));
    EXPECT_THAT(rows[1].values, ElementsAre("2", "5551234567", "97201", "0.1"));

    // A SQL_ASCII database stores any bytes; with client_encoding=UTF8 the server refuses to
    // hand over those that are not UTF-8, so they are never sent: the read stops, naming them.
    db.emplace("ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'");
    db->admin().exec("CREATE TABLE customers(id int, name text); INSERT INTO customers VALUES (1, E'B\\xe9b')");
    auto s = open_postgres(source());
    std::vector<Row> batch;
    EXPECT_THAT(testing::error_of<SourceError>([&] { s->next_batch(batch, 10); }),
                AllOf(HasSubstr("customers"), HasSubstr("invalid byte sequence for encoding \"UTF8\"")));
}

TEST_F(PostgresTest, ARunReadsOneSnapshotInSmallFetches) {
    db->admin().exec("CREATE TABLE customers AS SELECT g AS id FROM generate_series(1, 2500) g");
    auto c = source();
    c.fetch_rows = 100;
    auto s = open_postgres(c);
    std::vector<Row> rows;
    ASSERT_TRUE(s->next_batch(rows, 300));
    EXPECT_EQ(rows.size(), 300u) << "a batch spans several FETCHes";
    // Committed while the run reads: not part of this run's snapshot.
    db->admin().exec(
        "INSERT INTO customers SELECT g FROM generate_series(2501, 2600) g; DELETE FROM customers WHERE id <= 1000");
    std::size_t total = rows.size();
    while (s->next_batch(rows, 300)) total += rows.size();
    EXPECT_EQ(total, 2500u);
    EXPECT_EQ(read_all(*open_postgres(c)).size(), 1600u) << "the next run sees the new state";
}

TEST_F(PostgresTest, IncrementalReadsPastTheWatermarkWithEqualTimestampsAndOverlap) {
    db->admin().exec(
        "CREATE TABLE customers(id int PRIMARY KEY, updated_at timestamptz);"
        "INSERT INTO customers VALUES (1, '2024-01-01 10:00:00+00'), (2, '2024-01-01 11:00:00+00'),"
        "(3, '2024-01-01 11:00:00+00'), (4, NULL), (5, '2024-01-01 09:00:00+00');");
    auto c = source();
    c.incremental = IncrementalConfig{"updated_at", "id", 0ms, {}, "jobs.crm.source.incremental"};
    auto s = open_postgres(c);
    auto rows = read_all(*s);
    EXPECT_THAT(column(rows, 0), ElementsAre("5", "1", "2", "3", "4")) << "PostgreSQL sorts NULL last";
    EXPECT_EQ(rows[1].origin, "customers id=1");
    ASSERT_TRUE(s->position());
    EXPECT_EQ(s->position()->value, "2024-01-01 11:00:00+00");
    EXPECT_EQ(s->position()->key, "3");
    auto mark = *s->position();

    // id 1 updated with exactly the watermark's timestamp; id 6 is new; id 5 commits "late"
    // with a timestamp 20 minutes behind the watermark.
    db->admin().exec(
        "UPDATE customers SET updated_at = '2024-01-01 11:00:00+00' WHERE id = 1;"
        "INSERT INTO customers VALUES (6, '2024-01-01 12:00:00+00');"
        "UPDATE customers SET updated_at = '2024-01-01 10:40:00+00' WHERE id = 5;");
    EXPECT_THAT(column(read_all(*open_postgres(c, mark)), 0), ElementsAre("1", "2", "3", "6", "4"));
    c.incremental->overlap = 30min;
    EXPECT_THAT(column(read_all(*open_postgres(c, mark)), 0), ElementsAre("5", "1", "2", "3", "6", "4"));
}

TEST_F(PostgresTest, IncrementalOnNumbersAndRefusesAnOverlapOnText) {
    db->admin().exec(
        "CREATE TABLE customers(id int, version bigint, tag text);"
        "INSERT INTO customers VALUES (1, 9, 'a'), (2, 10, 'b'), (3, 100, 'c');");
    auto c = source();
    c.incremental = IncrementalConfig{"version", "id", 0ms, {}, "jobs.crm.source.incremental"};
    EXPECT_THAT(column(read_all(*open_postgres(c, Position{"10", "2"})), 0), ElementsAre("2", "3"))
        << "compared as numbers: 100 >= 10";
    c.incremental = IncrementalConfig{"tag", "id", 5s, {}, "jobs.crm.source.incremental"};
    {
        auto message = testing::error_of<SourceError>([&] { open_postgres(c, Position{"b", "2"}); });
        EXPECT_THAT(message, HasSubstr("jobs.crm.source.incremental.overlap: column \"tag\" is neither"));
    }
    c.incremental->overlap = 0ms;
    EXPECT_THAT(column(read_all(*open_postgres(c, Position{"b", "2"})), 0), ElementsAre("2", "3"));
}

TEST_F(PostgresTest, ErrorsNameTheSourceAndNeverThePassword) {
    db->admin().exec("CREATE TABLE customers(id int, updated_at timestamptz)");
    auto expect_error = [&](const PostgresSourceConfig& c, const std::string& what) {
        auto message = testing::error_of<SourceError>([&] { open_postgres(c); });
        EXPECT_THAT(message, HasSubstr(what));
        EXPECT_THAT(message, Not(HasSubstr(testing::TestDatabase::password())));
    };
    expect_error(source("customer"), "relation \"customer\" does not exist");
    auto c = source();
    c.incremental = IncrementalConfig{"updated", "id", 0ms, {}, "jobs.crm.source.incremental"};
    expect_error(c, "has no column \"updated\"");

    // A wrong password: the message says so, without either password.
    setenv("PREFSYNC_TEST_WRONG_PASSWORD", "not-the-password", 1);
    c = source();
    c.connection.password.value = "PREFSYNC_TEST_WRONG_PASSWORD";
    expect_error(c, "password authentication failed");
    // A password in the conninfo is not repeated in messages either.
    c = source();
    c.connection.conninfo += " password=hunter2-in-conninfo";
    c.connection.password = {};
    EXPECT_THAT(testing::error_of<SourceError>([&] { open_postgres(c); }),
                AllOf(HasSubstr("password authentication failed"), Not(HasSubstr("hunter2"))));
    // Nothing listens on port 1.
    c = source();
    c.connection.conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=2";
    expect_error(c, "Connection refused");
}

TEST_F(PostgresTest, AConnectionLostMidReadIsASourceErrorAfterTheRowsAlreadyReturned) {
    db->admin().exec("CREATE TABLE customers AS SELECT g AS id FROM generate_series(1, 1000) g");
    auto c = source();
    c.fetch_rows = 100;
    auto s = open_postgres(c);
    std::vector<Row> rows;
    ASSERT_TRUE(s->next_batch(rows, 100));
    // Only this test's database: the server is shared with tests running at the same time.
    db->admin().exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'prefsync' AND datname = current_database()");
    EXPECT_THAT(testing::error_of<SourceError>([&] {
                    while (s->next_batch(rows, 100)) {}
                }),
                HasSubstr("reading after row 100"));
}

TEST_F(PostgresTest, TheSinkCreatesTheTableUpsertsByKeyAndDropsWhatWasNotCommitted) {
    PostgresSinkConfig postgres;
    postgres.table = "mp.profiles";
    postgres.connection = connection();
    SinkConfig c{{}, "jobs.pull.sink", postgres};
    db->admin().exec("CREATE SCHEMA mp");
    TableLayout layout{{{"profile_id", ColumnType::Integer},
                        {"email", ColumnType::Text},
                        {"opted_in", ColumnType::Boolean},
                        {"score", ColumnType::Real}},
                       0};
    {
        auto sink = open_table_sink(c, layout);
        sink->upsert({"1", "a@example.com", "true", "1.5"});
        sink->upsert({"2", std::nullopt, "false", std::nullopt});
        sink->commit();
        sink->upsert({"1", "changed@example.com", "false", "2"});
        sink->commit();
        sink->upsert({"3", "lost@example.com", "true", "0"});
    }
    EXPECT_EQ(db->admin().scalar("SELECT count(*) FROM mp.profiles"), "2");
    EXPECT_EQ(
        db->admin().scalar("SELECT email || ',' || opted_in || ',' || score FROM mp.profiles WHERE profile_id = 1"),
        "changed@example.com,false,2");
    EXPECT_EQ(db->admin().scalar("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = "
                                 "'mp.profiles'::regclass AND attname = 'opted_in'"),
              "boolean");

    layout.columns.push_back({"phone", ColumnType::Text});
    {
        auto message = testing::error_of<SinkError>([&] { open_table_sink(c, layout); });
        EXPECT_THAT(message, HasSubstr("the table exists without column(s) \"phone\""));
    }
    // A value the column type cannot take stops the batch with the server's reason.
    layout.columns.pop_back();
    auto sink = open_table_sink(c, layout);
    {
        auto message = testing::error_of<SinkError>([&] { sink->upsert({"4", "x@example.com", "maybe", "1"}); });
        EXPECT_THAT(message, HasSubstr("invalid input syntax for type boolean"));
    }
}

// Values go as C strings: a NUL would cut the text short, and PostgreSQL text cannot hold
// one at all. That row is refused as a value, nothing of it written; the sink goes on.
TEST_F(PostgresTest, TheSinkRefusesTextWithANulAndDeclaresItsKeyNotNull) {
    PostgresSinkConfig postgres;
    postgres.table = "notes";
    postgres.connection = connection();
    SinkConfig c{{}, "jobs.pull.sink", postgres};
    TableLayout layout{{{"note", ColumnType::Text}, {"crmid", ColumnType::Text}}, 1};
    auto sink = open_table_sink(c, layout);
    EXPECT_EQ(sink->upsert({std::string("cut\0here", 8), "C1"}),
              "column \"note\": PostgreSQL text cannot hold a NUL character (\\u0000)");
    EXPECT_EQ(sink->upsert({"whole", "C2"}), "");
    sink->commit();
    EXPECT_EQ(db->admin().scalar("SELECT string_agg(crmid || ':' || note, ' ') FROM notes"), "C2:whole");
    EXPECT_EQ(db->admin().scalar(
                  "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'notes'::regclass AND attname = 'crmid'"),
              "t");
}

}  // namespace
}  // namespace prefsync::connectors
