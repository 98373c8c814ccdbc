#include "connectors/postgres/pg_connection.hpp"

namespace prefsync::connectors {
namespace {

std::string redacted(const std::string& conninfo) {
    std::string out = "postgres";
    char* err = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
    if (!options) {
        PQfreemem(err);
        return out + " (unparsable conninfo)";
    }
    for (auto* o = options; o->keyword; ++o) {
        std::string key = o->keyword;
        if (!o->val || key == "password" || key == "passfile") continue;
        out += " " + key + "=" + o->val;
    }
    PQconninfoFree(options);
    return out;
}

std::string trimmed(const char* message) {
    std::string s = message ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

}  // namespace

PgConnection::PgConnection(const PostgresConnectionConfig& config) : description_(redacted(config.conninfo)) {
    std::string password = resolve_password(config);
    // Order matters: libpq lets later keywords override the expanded conninfo, so defaults
    // go before it and explicit settings from the config after it.
    std::vector<const char*> keys{"connect_timeout", "application_name", "dbname"};
    std::vector<const char*> values{"10", "prefsync", config.conninfo.c_str()};
    auto add = [&](const char* key, const std::string& value) {
        if (value.empty()) return;
        keys.push_back(key);
        values.push_back(value.c_str());
    };
    add("password", password);
    add("sslmode", config.sslmode);
    add("sslrootcert", config.sslrootcert);
    keys.push_back("client_encoding");
    values.push_back("UTF8");
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_.reset(PQconnectdbParams(keys.data(), values.data(), 1));
    if (!conn_) {
        error_ = "out of memory";
        return;
    }
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
        error_ = trimmed(PQerrorMessage(conn_.get()));
        return;
    }
    // Server NOTICEs ("relation already exists, skipping") are not the user's concern and
    // would otherwise be printed to stderr by libpq.
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);
    if (!exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; "
              "SET extra_float_digits = 1"))
        return;
    error_.clear();
}

bool PgConnection::ok() const {
    return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

PgResult PgConnection::exec(const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PgResult r(params.empty() ? PQexec(conn_.get(), sql.c_str())
                              : PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                             values.data(), nullptr, nullptr, 0));
    auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        error_.clear();
        return r;
    }
    error_ = trimmed(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_.get()));
    if (error_.empty()) error_ = trimmed(PQerrorMessage(conn_.get()));
    if (!ok()) error_ += " (connection lost)";
    return nullptr;
}

}  // namespace prefsync::connectors
