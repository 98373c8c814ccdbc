#pragma once
// The private PostgreSQL server scripts/test.sh starts (scripts/pg-test-server.sh), and a
// fresh database per test on it so tests can run in parallel.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>

namespace prefsync::testing {

class PgAdmin {
public:
    explicit PgAdmin(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
        if (PQstatus(conn_) != CONNECTION_OK) ADD_FAILURE() << PQerrorMessage(conn_);
    }
    ~PgAdmin() { PQfinish(conn_); }
    PgAdmin(const PgAdmin&) = delete;
    PgAdmin& operator=(const PgAdmin&) = delete;

    void exec(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        auto status = PQresultStatus(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            ADD_FAILURE() << PQresultErrorMessage(r) << "in: " << sql;
        PQclear(r);
    }
    std::string scalar(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        std::string out;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            ADD_FAILURE() << PQresultErrorMessage(r) << "in: " << sql;
        else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            out = PQgetvalue(r, 0, 0);
        PQclear(r);
        return out;
    }

private:
    PGconn* conn_;
};

// A database of its own on the test server, dropped afterwards.
class TestDatabase {
public:
    // nullopt when scripts/test.sh did not start a server (the caller skips, saying why).
    static std::optional<std::string> server() {
        const char* c = std::getenv("PREFSYNC_TEST_PG");
        if (!c || !*c) return std::nullopt;
        return std::string(c);
    }
    static std::string password() {
        const char* p = std::getenv("PREFSYNC_TEST_PG_PASSWORD");
        return p ? p : "";
    }

    // `options`: what follows CREATE DATABASE's name, e.g. "ENCODING 'SQL_ASCII' ...".
    explicit TestDatabase(const std::string& options = "") {
        std::random_device rd;
        name_ = "t" + std::to_string(rd()) + std::to_string(rd());
        admin_conninfo_ = *server() + " password=" + password();
        PgAdmin(admin_conninfo_).exec("CREATE DATABASE " + name_ + (options.empty() ? "" : " " + options));
        conninfo_ = *server() + " dbname=" + name_;
        admin_.emplace(conninfo_ + " password=" + password());
    }
    ~TestDatabase() {
        admin_.reset();
        PgAdmin(admin_conninfo_).exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    }

    // The conninfo a config names (without the password, which comes from password_env).
    const std::string& conninfo() const { return conninfo_; }
    PgAdmin& admin() { return *admin_; }

private:
    std::string name_, admin_conninfo_, conninfo_;
    std::optional<PgAdmin> admin_;
};

}  // namespace prefsync::testing

// Skips the test, loudly, when no PostgreSQL test server is running.
#define PREFSYNC_REQUIRE_POSTGRES()                                                                 \
    if (!::prefsync::testing::TestDatabase::server())                                               \
    GTEST_SKIP() << "SKIPPED: no PostgreSQL test server (PREFSYNC_TEST_PG unset); scripts/test.sh " \
                    "starts one with scripts/pg-test-server.sh"
