#pragma once
// The SQL both database sources send, built from the config alone: identifiers come from
// the config and are always double-quoted; values (the watermark) are always bound as
// parameters, never spliced into the text.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/yaml/units.hpp"
#include "connectors/sql/sql_config.hpp"

namespace prefsync::connectors::sql {

// A floating-point value as a row's text: fixed notation, the shortest that reads back as the
// same double. A REAL phone number, ZIP code or id (pandas writes integer columns with NULLs
// as REAL; PostgreSQL prints a float8 of 1000000 as "1e+06") is "8000000000", never "8e+09".
std::string real_text(double v);

// "crm.customers" → "crm"."customers" (config refuses names containing a double quote).
std::string quote_identifier(std::string_view name);
std::string quote_table(std::string_view dotted_name);

// The rows a source reads: its table, or its query as a subquery.
std::string relation(const SqlReadConfig& config);

// SELECT * over the relation. Incremental: ordered by (column, key) with the database's
// default NULL placement, so an index on (column, key) serves the first full read; given
// `lower_bound` (an SQL expression over bound parameters), only rows with the column at or
// past it, plus rows where it is NULL (they have no position: every run reads them and
// change detection drops the repeats, rather than skipping them for ever).
std::string select_rows(const SqlReadConfig& config, std::string_view lower_bound = {});

// Index of the incremental column and key among `columns`; throws SourceError naming the
// job's config key and suggesting a near name when one is missing.
struct IncrementalColumns {
    std::size_t column = 0;
    std::size_t key = 0;
};
std::optional<IncrementalColumns> find_incremental_columns(const SqlReadConfig& config,
                                                           const std::vector<std::string>& columns,
                                                           const std::string& source_name);

// Where a user finds a row: "customers id=42", or "customers row 17" without a key.
std::string row_origin(const std::string& source_name, const std::optional<IncrementalColumns>& inc,
                       const std::vector<std::string>& columns, const std::optional<std::string>& key_value,
                       std::size_t row_number);

// The watermark value minus `overlap` for text timestamps ("2024-05-01 10:00:00[.fff][Z]",
// 'T' or ' ' between date and time, same layout kept) and plain numbers (seconds); nullopt
// when the text is neither.
std::optional<std::string> minus_overlap(std::string_view value, config::Duration overlap);

}  // namespace prefsync::connectors::sql
