#pragma once
// Owning handles for SQLite connections and statements, so a constructor that throws
// half-way (a missing table, a bad query) leaks nothing.
#include <sqlite3.h>

#include <memory>
#include <string>

namespace prefsync::connectors {

struct SqliteCloser {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;
using SqliteStmt = std::unique_ptr<sqlite3_stmt, SqliteCloser>;

// Prepares `sql`; nullptr (and the message in sqlite3_errmsg) on failure.
inline SqliteStmt sqlite_prepare(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
        sqlite3_finalize(s);
        return nullptr;
    }
    return SqliteStmt(s);
}

}  // namespace prefsync::connectors
