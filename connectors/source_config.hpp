#pragma once
// A job's `source:` as the connectors read it: what every source has, and the settings of
// its type, parsed by that type's connector (csv/csv_config.hpp, sqlite/sqlite_config.hpp,
// postgres/postgres_config.hpp). config chooses the type and fills in the common part.
//
// Design constraints:
// - The settings are a variant: a source has the options of its own type only, and a new
//   source type that open_source does not handle fails to compile.
// - The accessors give what the engine reads whatever the type, so it need not visit.
#include <string>
#include <string_view>
#include <variant>

#include "config/yaml/diagnostic.hpp"
#include "connectors/csv/csv_config.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/sqlite/sqlite_config.hpp"

namespace prefsync::connectors {

using SourceSettings = std::variant<CsvSourceConfig, SqliteSourceConfig, PostgresSourceConfig>;

struct SourceConfig {
    config::SourcePos pos;
    std::string key_path;     // "jobs.<name>.source", for messages
    std::string reject_file;  // default: <journal dir>/rejects/<job>.rejects.txt
    SourceSettings settings;

    std::string_view type() const;  // csv | sqlite | postgres
    // The file read (csv, sqlite); "" for a database server.
    const std::string& path() const;
    // The SQL sources' table or query; nullptr for files.
    const SqlReadConfig* sql() const;
    // Set: the source reads from a stored position on (a SQL source with `incremental`).
    const IncrementalConfig* incremental() const;
};

}  // namespace prefsync::connectors
