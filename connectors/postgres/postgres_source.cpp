#include "connectors/postgres/postgres_source.hpp"

#include <charconv>

namespace prefsync::connectors {
namespace {

// Built-in type OIDs (pg_type.h); stable across PostgreSQL versions.
enum : Oid {
    kInt8 = 20,
    kInt2 = 21,
    kInt4 = 23,
    kFloat4 = 700,
    kFloat8 = 701,
    kNumeric = 1700,
    kDate = 1082,
    kTimestamp = 1114,
    kTimestampTz = 1184,
};

// The lower bound for "column >= …", in the column's type, over $1 (the watermark) and
// $2 (the overlap); empty when the type has no subtraction and there is no overlap.
std::optional<std::string> lower_bound_sql(Oid type) {
    switch (type) {
        case kDate: return "($1::date - $2::interval)";
        case kTimestamp: return "($1::timestamp - $2::interval)";
        case kTimestampTz: return "($1::timestamptz - $2::interval)";
        case kInt2:
        case kInt4:
        case kInt8:
        case kNumeric: return "($1::numeric - $2::numeric)";
        case kFloat4:
        case kFloat8: return "($1::float8 - $2::float8)";
        default: return std::nullopt;
    }
}

}  // namespace

void PostgresSource::fail(const std::string& what) const {
    throw SourceError(describe() + ": " + what + (conn_.last_error().empty() ? "" : ": " + conn_.last_error()));
}

PostgresSource::PostgresSource(const PostgresSourceConfig& config, const std::optional<Position>& since)
    : conn_(PgConnection::open<SourceError>(config.connection)),
      name_(config.table.empty() ? "query" : config.table),
      fetch_rows_(config.fetch_rows) {
    // One snapshot for the whole run: rows committed while we read wait for the next run
    // (the watermark guarantees they are not skipped then).
    if (!conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) fail("cannot begin a read transaction");
    auto probe = conn_.exec("SELECT * FROM " + sql::relation(config) + " LIMIT 0");
    if (!probe) fail("cannot read " + name_);
    for (int i = 0; i < PQnfields(probe.get()); ++i) columns_.emplace_back(PQfname(probe.get(), i));
    incremental_ = sql::find_incremental_columns(config, columns_, describe());

    std::vector<std::optional<std::string>> params;
    std::string bound;
    if (incremental_ && since) {
        Oid type = PQftype(probe.get(), static_cast<int>(incremental_->column));
        auto overlap_ms = config.incremental->overlap.count();
        if (auto expr = lower_bound_sql(type)) {
            bound = *expr;
            bool interval = type == kDate || type == kTimestamp || type == kTimestampTz;
            params = {since->value, interval ? std::to_string(overlap_ms) + " milliseconds"
                                             : std::to_string(static_cast<double>(overlap_ms) / 1000.0)};
        } else if (overlap_ms == 0) {
            bound = "$1";  // the server infers the column's type
            params = {since->value};
        } else {
            throw SourceError(config.incremental->key_path + ".overlap: column \"" + config.incremental->column +
                              "\" is neither a timestamp, a date nor a number, so an overlap cannot be "
                              "subtracted; remove it");
        }
    }
    if (!conn_.exec("DECLARE prefsync_rows NO SCROLL CURSOR FOR " + sql::select_rows(config, bound), params))
        fail("cannot read " + name_);
}

bool PostgresSource::next_batch(std::vector<Row>& rows, std::size_t max_rows) {
    rows.clear();
    while (rows.size() < max_rows) {
        if (!batch_ || batch_next_ >= PQntuples(batch_.get())) {
            if (done_) break;
            batch_ = conn_.exec("FETCH " + std::to_string(fetch_rows_) + " FROM prefsync_rows");
            batch_next_ = 0;
            if (!batch_) fail("reading after row " + std::to_string(row_number_));
            if (PQntuples(batch_.get()) < static_cast<int>(fetch_rows_)) done_ = true;
            continue;
        }
        const PGresult* r = batch_.get();
        int i = batch_next_++;
        ++row_number_;
        Row& row = rows.emplace_back();
        row.values.resize(columns_.size());
        for (std::size_t c = 0; c < columns_.size(); ++c) {
            int col = static_cast<int>(c);
            if (PQgetisnull(r, i, col)) continue;
            std::string_view text(PQgetvalue(r, i, col), static_cast<std::size_t>(PQgetlength(r, i, col)));
            auto type = PQftype(r, col);
            double real = 0;
            if ((type == kFloat4 || type == kFloat8) && text.find_first_of("nN") == std::string_view::npos &&
                std::from_chars(text.data(), text.data() + text.size(), real).ptr == text.data() + text.size()) {
                row.values[c] = sql::real_text(real);
                continue;
            }
            row.values[c].emplace(text);
        }
        std::optional<std::string> key;
        if (incremental_) {
            key = row.values[incremental_->key];
            if (const auto& value = row.values[incremental_->column]) position_ = Position{*value, key.value_or("")};
        }
        row.origin = sql::row_origin(name_, incremental_, columns_, key, row_number_);
    }
    if (rows.empty() && done_ && batch_) {
        // The snapshot is no longer needed; ending it lets vacuum proceed.
        batch_.reset();
        conn_.exec("CLOSE prefsync_rows");
        conn_.exec("COMMIT");
    }
    return !rows.empty();
}

}  // namespace prefsync::connectors
