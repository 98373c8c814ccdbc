#include "connectors/postgres/postgres_config.hpp"

#include <algorithm>
#include <vector>

#include "config/yaml/yaml_reader.hpp"
#include "connectors/source_keys.hpp"

namespace prefsync::connectors {
namespace {

using config::ValueType;

// The connection's keys, in the source's and the sink's tables, and their rule.
constexpr config::KeySpec kConnectionKeys[] = {
    {.name = "conninfo",
     .required = "libpq conninfo or URI, e.g. \"host=db dbname=crm user=prefsync\"",
     .doc_type = "string",
     .description = "libpq conninfo or URI (`host=db dbname=crm user=prefsync`), without the password"},
    {.name = "password_env",
     .default_note = "none (libpq's PGPASSWORD/.pgpass)",
     .doc_type = "name",
     .description = "environment variable holding the database password; never logged"},
    {.name = "password_file",
     .type = ValueType::Path,
     .default_note = "none",
     .description = "file holding the database password (trailing newline ignored)"},
    {.name = "password_credential",
     .default_note = "none",
     .doc_type = "credential",
     .description = "systemd credential holding the database password, read from `$CREDENTIALS_DIRECTORY`"},
    {.name = "sslmode",
     .type = ValueType::Enum,
     .values = "disable|allow|prefer|require|verify-ca|verify-full",
     .default_note = "libpq's",
     .description = "passed through to libpq (`verify-full` for production)"},
    {.name = "sslrootcert",
     .type = ValueType::Path,
     .default_note = "libpq's",
     .description = "the CA certificates for `verify-ca` / `verify-full`, passed through to libpq"},
};
constexpr config::KeyRule kOnePassword{config::KeyRule::Kind::AtMostOne,
                                       "password_env|password_file|password_credential"};

std::vector<config::KeySpec> with_connection_keys(std::vector<config::KeySpec> keys) {
    keys.insert(keys.end(), std::begin(kConnectionKeys), std::end(kConnectionKeys));
    return keys;
}

PostgresConnectionConfig parse_connection(config::YamlReader& r, const YAML::Node& n, const std::string& p,
                                          const config::KeyTable& keys) {
    PostgresConnectionConfig pg;
    r.read(n, p, keys.key("conninfo"), pg.conninfo);
    // At most one of them: the tables' rule (kOnePassword), checked with the keys.
    for (auto [key, kind] : {std::pair{"password_env", config::TokenSpec::Kind::Env},
                             std::pair{"password_file", config::TokenSpec::Kind::File},
                             std::pair{"password_credential", config::TokenSpec::Kind::Credential}}) {
        auto v = n[key];
        if (!v) continue;
        if (auto spec = config::read_secret_location(r, v, p + "." + key, kind, "password"))
            pg.password = std::move(*spec);
    }
    auto scheme = pg.conninfo.find("://");
    if (pg.conninfo.find("password") != std::string::npos ||
        (scheme != std::string::npos && pg.conninfo.find(':', scheme + 3) < pg.conninfo.find('@')))
        r.warn(p + ".conninfo contains a password; use password_env, password_file or password_credential");
    r.read(n, p, keys.key("sslmode"), pg.sslmode);
    r.read(n, p, keys.key("sslrootcert"), pg.sslrootcert);
    return pg;
}

}  // namespace

const config::KeyTable& postgres_source_keys() {
    static const config::KeyTable table{
        .id = "source.postgres",
        .description = "A table or query of a PostgreSQL database, read through a cursor in one snapshot.",
        .keys = with_connection_keys({
            source_type_key("postgres", "a table or query of a PostgreSQL database"),
            kSourceTableKey,
            kSourceQueryKey,
            kIncrementalKey,
            {.name = "fetch_rows",
             .type = ValueType::Integer,
             .min = 1,
             .max = 1000000,
             .default_value = "1000",
             .description = "rows per cursor FETCH (one round trip)"},
            kRejectFileKey,
        }),
        .rules = {kTableOrQuery, kOnePassword},
    };
    return table;
}

const config::KeyTable& postgres_sink_keys() {
    static const config::KeyTable table{
        .id = "sink.postgres",
        .description = "A table of a PostgreSQL database, pulled profiles upserted by `key`.",
        .keys = with_connection_keys({
            sink_type_key("postgres", "a table of a PostgreSQL database"),
            kSinkColumnsKey,
            kSinkKeyKey,
            kSinkTableKey,
        }),
        .rules = {kOnePassword},
    };
    return table;
}

PostgresSourceConfig parse_postgres_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = postgres_source_keys();
    PostgresSourceConfig s;
    r.check_keys(n, p, keys);
    s.connection = parse_connection(r, n, p, keys);
    parse_sql_read(r, n, p, s);
    r.read(n, p, keys.key("fetch_rows"), s.fetch_rows);
    return s;
}

PostgresSinkConfig parse_postgres_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    const auto& keys = postgres_sink_keys();
    PostgresSinkConfig s;
    r.check_keys(n, p, keys);
    parse_table_sink(r, n, p, s);
    s.connection = parse_connection(r, n, p, keys);
    return s;
}

std::string resolve_password(const PostgresConnectionConfig& connection, const config::EnvLookup& env) {
    return config::read_secret(connection.password, connection.password.pos, connection.password.key,
                               "database password", env);
}

}  // namespace prefsync::connectors
