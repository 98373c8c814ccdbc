#include "connectors/postgres/postgres_config.hpp"

#include <algorithm>
#include <vector>

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::connectors {
namespace {

// The connection keys, listed with the section's other keys in its key check.
std::vector<std::string_view> with_connection_keys(std::vector<std::string_view> keys) {
    keys.insert(keys.end(), {"conninfo", "password_env", "password_file", "password_credential", "sslmode",
                             "sslrootcert"});
    return keys;
}

PostgresConnectionConfig parse_connection(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    PostgresConnectionConfig pg;
    if (auto conninfo = r.required_string(n, p, "conninfo",
                                          "libpq conninfo or URI, e.g. \"host=db dbname=crm user=prefsync\""))
        pg.conninfo = *conninfo;
    int passwords = 0;
    for (auto [key, kind] : {std::pair{"password_env", config::TokenSpec::Kind::Env},
                             std::pair{"password_file", config::TokenSpec::Kind::File},
                             std::pair{"password_credential", config::TokenSpec::Kind::Credential}}) {
        auto v = n[key];
        if (!v) continue;
        ++passwords;
        if (auto spec = config::read_secret_location(r, v, p + "." + key, kind, "password"))
            pg.password = std::move(*spec);
    }
    if (passwords > 1) r.error(n, p, "give at most one of password_env, password_file, password_credential");
    auto scheme = pg.conninfo.find("://");
    if (pg.conninfo.find("password") != std::string::npos ||
        (scheme != std::string::npos && pg.conninfo.find(':', scheme + 3) < pg.conninfo.find('@')))
        r.warn(p + ".conninfo contains a password; use password_env, password_file or password_credential");
    r.optional_string(n, p, "sslmode", pg.sslmode);
    if (!pg.sslmode.empty()) {
        static const std::vector<std::string_view> modes{"disable", "allow", "prefer", "require", "verify-ca",
                                                         "verify-full"};
        if (std::find(modes.begin(), modes.end(), pg.sslmode) == modes.end())
            r.error(n["sslmode"], p + ".sslmode", "expected disable, allow, prefer, require, verify-ca or verify-full");
    }
    r.optional_string(n, p, "sslrootcert", pg.sslrootcert);
    pg.sslrootcert = r.resolve_path(pg.sslrootcert);
    return pg;
}

}  // namespace

PostgresSourceConfig parse_postgres_source(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    PostgresSourceConfig s;
    r.check_keys(n, p, with_connection_keys({"type", "table", "query", "incremental", "fetch_rows", "reject_file"}));
    s.connection = parse_connection(r, n, p);
    parse_sql_read(r, n, p, s);
    r.optional_field(n, p, "fetch_rows", s.fetch_rows, [&](auto& v, auto path) { return r.integer(v, path, 1, 1000000); });
    return s;
}

PostgresSinkConfig parse_postgres_sink(config::YamlReader& r, const YAML::Node& n, const std::string& p) {
    PostgresSinkConfig s;
    r.check_keys(n, p, with_connection_keys({"type", "columns", "key", "table"}));
    parse_table_sink(r, n, p, s);
    s.connection = parse_connection(r, n, p);
    return s;
}

std::string resolve_password(const PostgresConnectionConfig& connection, const config::EnvLookup& env) {
    return config::read_secret(connection.password, connection.password.pos, connection.password.key,
                               "database password", env);
}

}  // namespace prefsync::connectors
