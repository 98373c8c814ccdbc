// SQL text building and the SQLite source and sink, against real SQLite files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "connectors/open_source.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/sqlite/sqlite_config.hpp"
#include "connectors/sql/sink_sql.hpp"
#include "connectors/sql/sql_text.hpp"
#include "connectors/table_sink.hpp"
#include "tests/support/config_section.hpp"
#include "tests/support/error_of.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync::connectors {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::parse_section;
using namespace std::chrono_literals;

IncrementalConfig incremental(std::string column, std::string key) {
    return {std::move(column), std::move(key), 0ms, {}, "jobs.crm.source.incremental"};
}

TEST(SqlText, IdentifiersAreQuotedAndQueriesBecomeSubqueries) {
    EXPECT_EQ(sql::quote_table("crm.customers"), "\"crm\".\"customers\"");
    EXPECT_EQ(sql::quote_identifier("we\"ird"), "\"we\"\"ird\"");
    SqlReadConfig c;
    c.query = "SELECT id FROM t;  \n";
    EXPECT_EQ(sql::select_rows(c), "SELECT * FROM (SELECT id FROM t\n) AS prefsync_source");
    c.incremental = incremental("updated_at", "id");
    EXPECT_EQ(
        sql::select_rows(c, "?1"),
        "SELECT * FROM (SELECT id FROM t\n) AS prefsync_source WHERE \"updated_at\" IS NULL OR \"updated_at\" >= ?1 "
        "ORDER BY \"updated_at\", \"id\"");
}

TEST(SqlText, OverlapIsSubtractedKeepingTheTimestampLayout) {
    EXPECT_EQ(sql::minus_overlap("2024-03-01 00:00:10", 30s), "2024-02-29 23:59:40");
    EXPECT_EQ(sql::minus_overlap("2024-03-01T00:00:10.123Z", 5min), "2024-02-29T23:55:10.123Z");
    EXPECT_EQ(sql::minus_overlap("2024-03-01T10:00+02:00", 1h), "2024-03-01T09:00+02:00");
    EXPECT_EQ(sql::minus_overlap("2024-03-01", 1h), "2024-02-29");
    EXPECT_EQ(sql::minus_overlap("1700000000", 60s), "1699999940");
    EXPECT_EQ(sql::minus_overlap("anything", 0s), "anything");
    EXPECT_EQ(sql::minus_overlap("abc", 1s), std::nullopt);
    EXPECT_EQ(sql::minus_overlap("2024-02-30 00:00:00", 1s), std::nullopt);
}

TEST(SqlText, UpsertUpdatesEveryColumnButTheKey) {
    TableLayout layout{{{"profile_id", ColumnType::Integer}, {"email", ColumnType::Text}}, 0};
    EXPECT_EQ(sql::upsert("p", layout, sql::Dialect::Postgres),
              "INSERT INTO \"p\" (\"profile_id\", \"email\") VALUES ($1::BIGINT, $2::TEXT) ON CONFLICT "
              "(\"profile_id\") DO UPDATE SET \"email\" = excluded.\"email\"");
    EXPECT_EQ(sql::create_table("s.p", layout, sql::Dialect::Sqlite),
              "CREATE TABLE IF NOT EXISTS \"s\".\"p\" (\"profile_id\" INTEGER NOT NULL PRIMARY KEY, \"email\" TEXT)")
        << "a NULL key would never conflict: every run would add its row again";
    EXPECT_EQ(sql::missing_columns(layout, {"email"}), "\"profile_id\"");
}

class SqliteFile {
public:
    explicit SqliteFile(const std::string& path) { EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK); }
    ~SqliteFile() { sqlite3_close(db_); }
    void exec(const std::string& sql) {
        char* err = nullptr;
        ASSERT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "") << "\n" << sql;
    }
    std::string scalar(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
        std::string out;
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        return out;
    }

private:
    sqlite3* db_ = nullptr;
};

struct SqliteSourceTest : ::testing::Test {
    testing::TempDir dir;
    std::string path = dir.file("crm.db");
    SqliteFile db{path};
    SqliteSourceConfig source() {
        SqliteSourceConfig c;
        c.path = path;
        c.table = "customers";
        return c;
    }
    // Through open_source, as a job opens it.
    static std::unique_ptr<Source> open_sqlite(const SqliteSourceConfig& c, const std::optional<Position>& since = {}) {
        return open_source(SourceConfig{{}, "jobs.crm.source", "", c}, since);
    }
    std::vector<Row> read_all(Source& s, std::size_t batch = 2) {
        std::vector<Row> all, rows;
        while (s.next_batch(rows, batch)) all.insert(all.end(), rows.begin(), rows.end());
        return all;
    }
};

TEST_F(SqliteSourceTest, ARealIsWrittenInFixedNotationAsShortAsReadsBackTheSame) {
    // pandas stores an integer column with NULLs as REAL: phone numbers, ZIP codes, ids.
    db.exec(
        "CREATE TABLE t(id INTEGER, v REAL);"
        "INSERT INTO t VALUES(1, 1000000.0), (2, 8000000000.0), (3, 100000.0), (4, 1000001.0), (5, 0.00001),"
        " (6, -2.5), (7, 5551234567.0), (8, 0.1);");
    SqliteSourceConfig c = source();
    c.table.clear();
    c.query = "SELECT id, v FROM t ORDER BY id";
    auto s = open_sqlite(c);
    auto rows = read_all(*s, 10);
    ASSERT_EQ(rows.size(), 8u);
    std::vector<std::string> got;
    for (auto& r : rows) got.push_back(*r.values[1]);
    EXPECT_THAT(got, ElementsAre("1000000", "8000000000", "100000", "1000001", "0.00001", "-2.5", "5551234567", "0.1"));
}

TEST_F(SqliteSourceTest, ConvertsStorageClassesToTextAndKeepsNullApartFromEmpty) {
    db.exec(
        "CREATE TABLE customers(id INTEGER, name TEXT, score REAL, note TEXT, data BLOB);"
        "INSERT INTO customers VALUES(1, 'Ann', 1.5, '', x'6869');"
        "INSERT INTO customers VALUES(2, NULL, 0.1, NULL, NULL);");
    auto s = open_sqlite(source());
    EXPECT_THAT(s->columns(), ElementsAre("id", "name", "score", "note", "data"));
    auto rows = read_all(*s);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].values[0], "1");
    EXPECT_EQ(rows[0].values[2], "1.5");
    EXPECT_EQ(rows[0].values[3], "") << "empty string stays a value";
    EXPECT_EQ(rows[0].values[4], "hi") << "a UTF-8 blob reads as text";
    EXPECT_EQ(rows[1].values[1], std::nullopt) << "NULL stays NULL";
    EXPECT_EQ(rows[1].values[2], "0.1") << "shortest round-trip form";
    EXPECT_EQ(rows[1].origin, "customers row 2");
}

TEST_F(SqliteSourceTest, RejectsRowsWithBytesThatAreNotUtf8NamingTheColumn) {
    db.exec(
        "CREATE TABLE customers(id INTEGER, name TEXT, data BLOB);"
        "INSERT INTO customers VALUES(1, 'ok', x'ff00');"
        "INSERT INTO customers VALUES(2, CAST(x'c328' AS TEXT), NULL);"
        "INSERT INTO customers VALUES(3, 'fine', NULL);"
        "INSERT INTO customers VALUES(4, CAST(x'416e00616e' AS TEXT), NULL);"
        "INSERT INTO customers VALUES(5, 'ok', x'6869006869');");
    auto rows = read_all(*open_sqlite(source()));
    ASSERT_EQ(rows.size(), 5u) << "rejected rows still come out, in order";
    EXPECT_THAT(rows[0].error, HasSubstr("column \"data\": a BLOB that is not UTF-8 text"));
    EXPECT_THAT(rows[1].error, HasSubstr("column \"name\": text that is not valid UTF-8"));
    EXPECT_FALSE(rows[2].rejected());
    EXPECT_THAT(rows[3].error, HasSubstr("column \"name\": a NUL byte in its text"));
    EXPECT_EQ(rows[3].values[1], std::string("An\0an", 5)) << "the values stay, for the identity";
    EXPECT_THAT(rows[4].error, HasSubstr("column \"data\": a NUL byte in its BLOB"));
}

TEST_F(SqliteSourceTest, StreamsAQueryWithoutLoadingItAndNamesMissingThingsClearly) {
    db.exec(
        "CREATE TABLE customers(id INTEGER PRIMARY KEY, updated_at TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO customers SELECT i, '2024-01-01' FROM n;");
    auto c = source();
    c.table.clear();
    c.query = "SELECT id, id * 2 AS twice FROM customers WHERE id % 2 = 0;";
    auto s = open_sqlite(c);
    std::vector<Row> rows;
    std::size_t total = 0;
    while (s->next_batch(rows, 100)) {
        EXPECT_LE(rows.size(), 100u);
        total += rows.size();
    }
    EXPECT_EQ(total, 2500u);

    c = source();
    c.table = "customer";
    {
        auto message = testing::error_of<SourceError>([&] { open_sqlite(c); });
        EXPECT_THAT(message, HasSubstr("no such table: customer"));
    }
    c = source();
    c.incremental = incremental("updatd_at", "id");
    {
        auto message = testing::error_of<SourceError>([&] { open_sqlite(c); });
        EXPECT_THAT(message, HasSubstr("jobs.crm.source.incremental.column"));
        EXPECT_THAT(message, HasSubstr("has no column \"updatd_at\" (did you mean \"updated_at\"?)"));
    }
    c.incremental = incremental("updated_at", "customer_key");
    {
        auto message = testing::error_of<SourceError>([&] { open_sqlite(c); });
        EXPECT_THAT(message, HasSubstr("incremental.key: "));
        EXPECT_THAT(message, HasSubstr("has no column \"customer_key\" (its columns: id, updated_at)"));
    }
    c = source();
    c.path = dir.file("missing.db");
    EXPECT_THROW(open_sqlite(c), SourceError);
    EXPECT_FALSE(std::filesystem::exists(c.path)) << "a typo'd path is not created";
}

TEST_F(SqliteSourceTest, IncrementalReadsFromTheWatermarkIncludingEqualValuesAndNulls) {
    db.exec(
        "CREATE TABLE customers(id INTEGER, updated_at TEXT);"
        "INSERT INTO customers VALUES(3, '2024-01-01 10:00:00'), (1, '2024-01-01 11:00:00'),"
        "(2, '2024-01-01 11:00:00'), (4, NULL), (5, '2024-01-01 09:00:00');");
    auto c = source();
    c.incremental = incremental("updated_at", "id");
    auto s = open_sqlite(c);
    auto rows = read_all(*s);
    std::vector<std::string> ids;
    for (auto& r : rows) ids.push_back(*r.values[0]);
    EXPECT_THAT(ids, ElementsAre("4", "5", "3", "1", "2")) << "(column, key) order; SQLite sorts NULL first";
    EXPECT_EQ(rows[3].origin, "customers id=1");
    ASSERT_TRUE(s->position());
    EXPECT_EQ(s->position()->value, "text:2024-01-01 11:00:00");
    EXPECT_EQ(s->position()->key, "2");

    // Row 1 changes with the same timestamp as the watermark; row 6 arrives.
    db.exec("INSERT INTO customers VALUES(6, '2024-01-01 12:00:00')");
    rows = read_all(*open_sqlite(c, s->position()));
    ids.clear();
    for (auto& r : rows) ids.push_back(*r.values[0]);
    EXPECT_THAT(ids, ElementsAre("4", "1", "2", "6"));

    // An overlap reaches back for late commits.
    c.incremental->overlap = 1h;
    rows = read_all(*open_sqlite(c, Position{"text:2024-01-01 11:00:00", "2"}));
    EXPECT_EQ(rows.size(), 5u) << "10:00 onward, plus the NULL row";
}

TEST_F(SqliteSourceTest, IntegerWatermarksAreComparedAsNumbers) {
    db.exec(
        "CREATE TABLE customers(id INTEGER, version INTEGER);"
        "INSERT INTO customers VALUES(1, 9), (2, 10), (3, 11);");
    auto c = source();
    c.incremental = incremental("version", "id");
    auto s = open_sqlite(c);
    read_all(*s);
    EXPECT_EQ(s->position()->value, "int:11");
    auto rows = read_all(*open_sqlite(c, Position{"int:10", "2"}));
    EXPECT_EQ(rows.size(), 2u) << "10 and 11 (text comparison would have read none)";
}

TEST(SqliteSink, CreatesTheTableUpsertsByKeyAndDropsWhatWasNotCommitted) {
    testing::TempDir dir;
    SqliteSinkConfig sqlite;
    sqlite.path = dir.file("out/pulled.db");
    sqlite.table = "profiles";
    SinkConfig c{{}, "jobs.pull.sink", sqlite};
    TableLayout layout{{{"profile_id", ColumnType::Integer},
                        {"email", ColumnType::Text},
                        {"opted_in", ColumnType::Boolean},
                        {"score", ColumnType::Real}},
                       0};
    {
        auto sink = open_table_sink(c, layout);
        sink->upsert({"1", "a@example.com", "true", "1.5"});
        sink->upsert({"2", std::nullopt, "false", "x"});
        sink->commit();
        sink->upsert({"1", "changed@example.com", "false", "2"});
        sink->commit();
        sink->upsert({"3", "lost@example.com", "true", "0"});  // never committed
    }
    EXPECT_EQ(std::filesystem::status(sqlite.path).permissions() & std::filesystem::perms::others_read,
              std::filesystem::perms::none);
    SqliteFile db(sqlite.path);
    EXPECT_EQ(db.scalar("SELECT count(*) FROM profiles"), "2");
    EXPECT_EQ(db.scalar("SELECT email || ',' || opted_in || ',' || score FROM profiles WHERE profile_id = 1"),
              "changed@example.com,0,2.0");
    EXPECT_EQ(db.scalar("SELECT typeof(email) || ',' || score FROM profiles WHERE profile_id = 2"), "null,x")
        << "a value not of the column's type is kept as written";
    EXPECT_EQ(db.scalar("SELECT \"notnull\" FROM pragma_table_info('profiles') WHERE name = 'profile_id'"), "1");

    // Re-opening uses the table as it is; a layout naming a column it lacks is refused.
    layout.columns.push_back({"phone", ColumnType::Text});
    {
        auto message = testing::error_of<SinkError>([&] { open_table_sink(c, layout); });
        EXPECT_THAT(message, HasSubstr("the table exists without column(s) \"phone\""));
    }
}

// --- the SQL connectors' config sections ----------------------------------------------------

TEST(SqliteConfig, SourceSectionReadsATableOrAQueryIncrementally) {
    auto s = parse_section(
        "{ type: sqlite, path: crm.db, table: crm.customers, incremental: { column: updated_at, key: id,"
        " overlap: 5m } }",
        parse_sqlite_source);
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_EQ(s.value.path, "/etc/prefsync/crm.db");
    EXPECT_EQ(s.value.table, "crm.customers");
    ASSERT_TRUE(s.value.incremental);
    EXPECT_EQ(s.value.incremental->key, "id");
    EXPECT_EQ(s.value.incremental->overlap, 5min);
    EXPECT_EQ(s.value.incremental->key_path, "jobs.j.source.incremental") << "errors at open time name the key";
}

TEST(SqliteConfig, SourceSectionNamesWhatIsMissingAndWhatBelongsToAnotherType) {
    auto s = parse_section("type: sqlite\nincremental: { column: \"up\\\"d\" }\nfetch_rows: 10\nconninfo: x\n",
                           parse_sqlite_source);
    EXPECT_THAT(s.errors,
                Contains("/etc/prefsync/section.yaml:1:1: jobs.j.source.path: is required (the SQLite database file)"));
    EXPECT_THAT(s.errors, Contains("/etc/prefsync/section.yaml:1:1: jobs.j.source: give table or query"));
    EXPECT_THAT(
        s.errors,
        Contains(HasSubstr("jobs.j.source.incremental.column: must be a non-empty name without double quotes")));
    EXPECT_THAT(s.errors, Contains(HasSubstr("jobs.j.source.incremental.key: is required (a unique column, e.g. id)")));
    EXPECT_THAT(s.errors, Contains(HasSubstr("/etc/prefsync/section.yaml:3:1: jobs.j.source.fetch_rows: unknown key")))
        << "rows stream one step at a time: a fetch size would be silently ignored";
    EXPECT_THAT(s.errors, Contains(HasSubstr("/etc/prefsync/section.yaml:4:1: jobs.j.source.conninfo: unknown key")));
}

TEST(SqliteConfig, SinkSectionDefaultsTheKeyToTheProfileIdColumn) {
    auto s = parse_section("{ type: sqlite, path: out.db, table: profiles, columns: { pid: ProfileId, mail: Emails } }",
                           parse_sqlite_sink, "jobs.x.sink");
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_EQ(s.value.key, "pid");
    auto bad = parse_section(
        "{ type: sqlite, path: out.db, table: profiles, each: Consents, columns: { \"a\\\"b\": Emails } }",
        parse_sqlite_sink, "jobs.x.sink");
    EXPECT_THAT(bad.errors, Contains(HasSubstr("jobs.x.sink.each: unknown key")));
    EXPECT_THAT(bad.errors,
                Contains(HasSubstr("jobs.x.sink.columns.a\"b: must be a non-empty name without double quotes")));
    EXPECT_THAT(bad.errors, Contains(HasSubstr("jobs.x.sink.key: is required: a column with path ProfileId")));
}

TEST(PostgresConfig, SourceSectionReadsTheConnectionWithoutThePassword) {
    auto s = parse_section(
        "{ type: postgres, conninfo: \"host=db dbname=crm\", password_file: secrets/pg, sslmode: verify-full,"
        " sslrootcert: ca.pem, query: \"SELECT 1\", fetch_rows: 50 }",
        parse_postgres_source);
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_THAT(s.warnings, IsEmpty());
    EXPECT_EQ(s.value.connection.conninfo, "host=db dbname=crm");
    EXPECT_EQ(s.value.connection.password.kind, config::TokenSpec::Kind::File);
    EXPECT_EQ(s.value.connection.password.value, "/etc/prefsync/secrets/pg");
    EXPECT_EQ(s.value.connection.password.key, "jobs.j.source.password_file");
    EXPECT_EQ(s.value.connection.sslrootcert, "/etc/prefsync/ca.pem");
    EXPECT_EQ(s.value.query, "SELECT 1");
    EXPECT_EQ(s.value.fetch_rows, 50u);
}

TEST(PostgresConfig, SectionsNameMissingAndForeignKeysAndWarnAboutAPasswordInTheConninfo) {
    auto s = parse_section("type: postgres\ntable: t\npath: crm.db\npassword_env: A\npassword_credential: b\n",
                           parse_postgres_source);
    EXPECT_THAT(s.errors,
                Contains("/etc/prefsync/section.yaml:1:1: jobs.j.source.conninfo: is required (libpq conninfo or URI, "
                         "e.g. \"host=db dbname=crm user=prefsync\")"));
    EXPECT_THAT(s.errors, Contains(HasSubstr("/etc/prefsync/section.yaml:3:1: jobs.j.source.path: unknown key")));
    EXPECT_THAT(s.errors, Contains(HasSubstr("jobs.j.source: give at most one of password_env")));

    auto sink = parse_section(
        "{ type: postgres, conninfo: \"postgresql://u:pw@db/wh\", table: p, path: x.db,"
        " columns: { id: ProfileId } }",
        parse_postgres_sink, "jobs.x.sink");
    EXPECT_THAT(sink.errors, ElementsAre(HasSubstr("jobs.x.sink.path: unknown key")));
    EXPECT_THAT(sink.warnings, ElementsAre(HasSubstr("jobs.x.sink.conninfo contains a password")));
    EXPECT_EQ(sink.value.key, "id");
}

TEST(PositionIdentity, KeepsTheLayoutJournalsWereWrittenWith) {
    // A changed identity discards every stored watermark: the next run reads everything.
    SqliteSourceConfig sqlite;
    sqlite.path = "/srv/crm.db";
    sqlite.table = "customers";
    sqlite.incremental = incremental("updated_at", "id");
    EXPECT_EQ(position_identity(SourceConfig{{}, "jobs.a.source", "", sqlite}),
              "sqlite\n/srv/crm.db\ncustomers\n\nupdated_at\nid");
    PostgresSourceConfig pg;
    pg.query = "SELECT 1";
    pg.connection.conninfo = "host=db";
    EXPECT_EQ(position_identity(SourceConfig{{}, "jobs.a.source", "", pg}), "postgres\n\n\nSELECT 1");
    CsvSourceConfig csv;
    csv.path = "/srv/a.csv";
    EXPECT_EQ(position_identity(SourceConfig{{}, "jobs.a.source", "", csv}), "csv\n/srv/a.csv\n\n");
}

}  // namespace
}  // namespace prefsync::connectors
