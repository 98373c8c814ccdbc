#include "connectors/postgres/postgres_sink.hpp"

#include "connectors/sql/sink_sql.hpp"
#include "connectors/sql/sql_text.hpp"

namespace prefsync::connectors {

void PostgresSink::fail(const std::string& what) const {
    throw SinkError(describe() + ": " + what + (conn_.last_error().empty() ? "" : ": " + conn_.last_error()));
}

PostgresSink::PostgresSink(const PostgresSinkConfig& config, TableLayout layout)
    : conn_(PgConnection::open<SinkError>(config.connection)), table_(config.table), layout_(std::move(layout)) {
    if (!conn_.exec(sql::create_table(table_, layout_, sql::Dialect::Postgres))) fail("cannot create the table");
    auto probe = conn_.exec("SELECT * FROM " + sql::quote_table(table_) + " LIMIT 0");
    if (!probe) fail("cannot read the table");
    std::vector<std::string> existing;
    existing.reserve(layout_.columns.size());
    for (int i = 0; i < PQnfields(probe.get()); ++i) existing.emplace_back(PQfname(probe.get(), i));
    if (auto missing = sql::missing_columns(layout_, existing); !missing.empty())
        throw SinkError(describe() + ": the table exists without column(s) " + missing +
                        "; add them (ALTER TABLE) or write to a new table");
    upsert_sql_ = sql::upsert(table_, layout_, sql::Dialect::Postgres);
}

PostgresSink::~PostgresSink() {
    // Uncommitted rows are dropped: the caller records as pulled only what was committed.
    if (in_transaction_) conn_.exec("ROLLBACK");
}

std::string PostgresSink::upsert(const std::vector<std::optional<std::string>>& values) {
    // Values go as C strings, and PostgreSQL text cannot hold a NUL at all: refused here
    // rather than cut short at it.
    for (std::size_t i = 0; i < values.size() && i < layout_.columns.size(); ++i)
        if (values[i] && values[i]->find('\0') != std::string::npos)
            return "column \"" + layout_.columns[i].name + "\": PostgreSQL text cannot hold a NUL character (\\u0000)";
    if (!in_transaction_) {
        if (!conn_.exec("BEGIN")) fail("cannot begin a transaction");
        in_transaction_ = true;
    }
    std::vector<std::optional<std::string>> params(values.begin(), values.end());
    params.resize(layout_.columns.size());
    if (!conn_.exec(upsert_sql_, params)) fail("cannot write a row");
    return "";
}

void PostgresSink::commit() {
    if (!in_transaction_) return;
    in_transaction_ = false;
    if (!conn_.exec("COMMIT")) fail("cannot commit");
}

}  // namespace prefsync::connectors
