#pragma once
// The postgres connector's config: the connection (shared by source and sink), a
// `source:` section that reads a table or query through a cursor, and a `sink:` section
// that upserts pulled profiles into a table.
// The rules of every connector section are in csv/csv_config.hpp.
//
// Design constraints:
// - The password never sits in the config: password_env / password_file /
//   password_credential say where it is (or libpq's own PGPASSWORD/.pgpass when none is
//   given), and resolve_password reads it when a connection is opened.
#include <cstddef>
#include <string>
#include <string_view>

#include "config/yaml/env.hpp"
#include "config/yaml/secret.hpp"
#include "config/yaml/yaml_fwd.hpp"
#include "connectors/sql/sql_config.hpp"

namespace prefsync::connectors {

// A PostgreSQL connection: libpq conninfo or URI; the password from password_env/_file/
// _credential; sslmode and sslrootcert are passed through to libpq.
struct PostgresConnectionConfig {
    std::string conninfo;
    config::TokenSpec password;
    std::string sslmode;
    std::string sslrootcert;
};

struct PostgresSourceConfig : SqlReadConfig {
    static constexpr std::string_view kType = "postgres";
    PostgresConnectionConfig connection;
    std::size_t fetch_rows = 1000;  // rows per cursor FETCH (one round trip)
};

struct PostgresSinkConfig : TableSinkConfig {
    static constexpr std::string_view kType = "postgres";
    PostgresConnectionConfig connection;
};

const config::KeyTable& postgres_source_keys();
const config::KeyTable& postgres_sink_keys();

PostgresSourceConfig parse_postgres_source(config::YamlReader& r, const YAML::Node& section, const std::string& path);
PostgresSinkConfig parse_postgres_sink(config::YamlReader& r, const YAML::Node& section, const std::string& path);

// The database password; "" when none is configured (libpq then uses its own defaults).
// Throws config::ConfigError, naming the key, if a configured one cannot be read.
std::string resolve_password(const PostgresConnectionConfig& connection,
                             const config::EnvLookup& env = config::process_env());

}  // namespace prefsync::connectors
