#pragma once
// One libpq connection, RAII, for the PostgreSQL source and sink.
//
// Design constraints:
// - The password comes from the config's password_env/_file/_credential (or libpq's own
//   PGPASSWORD/.pgpass) and is handed to libpq only: describe() and every error message are
//   built from the conninfo with any password removed.
// - Session settings are pinned (UTC, ISO dates, UTF-8, shortest exact floats) so text
//   values, and the watermarks stored from them, mean the same on every run.
// - Values always travel as bound parameters (PQexecParams), never inside SQL text.
#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectors/postgres/postgres_config.hpp"

namespace prefsync::connectors {

struct PgResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

class PgConnection {
public:
    // Connects; throws `Error` (SourceError or SinkError, so each side reports in its terms)
    // with the redacted conninfo and libpq's reason.
    template <typename Error>
    static PgConnection open(const PostgresConnectionConfig& config) {
        PgConnection c(config);
        if (!c.error_.empty()) throw Error(c.describe() + ": " + c.error_);
        return c;
    }
    PgConnection(PgConnection&&) noexcept = default;
    PgConnection& operator=(PgConnection&&) noexcept = default;

    // "postgres host=db port=5432 dbname=crm user=prefsync" (never the password).
    const std::string& describe() const { return description_; }
    bool ok() const;

    // Runs `sql` with text parameters (nullopt = NULL); returns the result when its status
    // is a success, else nullptr and last_error() says why.
    PgResult exec(const std::string& sql, const std::vector<std::optional<std::string>>& params = {});
    const std::string& last_error() const { return error_; }

private:
    explicit PgConnection(const PostgresConnectionConfig& config);
    struct ConnDeleter {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    std::unique_ptr<PGconn, ConnDeleter> conn_;
    std::string description_;
    std::string error_;
};

}  // namespace prefsync::connectors
