#include "config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "tests/support/temp_dir.hpp"

namespace prefsync::config {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EnvLookup fake_env(std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

const std::string kApi = R"(api:
  base_url: https://pmstg.mypreferences.com/Profiles/v2
  client_id: "12345"
  token_env: PREFSYNC_TOKEN
)";

const std::string kJob = R"(jobs:
  crm:
    source: { type: csv, path: data/profiles.csv }
    identity: { alternate_id_type: CRMID, column: customer_id }
    mapping:
      CustomerName.FirstName: first_name
)";

// Every diagnostic of a config that must fail, as "file:line:col: path: message".
std::vector<std::string> errors_of(const std::string& yaml, EnvLookup env = fake_env({})) {
    try {
        parse_config(yaml, "/etc/prefsync/test.yaml", env);
    } catch (const ConfigError& e) {
        std::vector<std::string> out;
        for (auto& d : e.diagnostics()) out.push_back(d.to_string());
        return out;
    }
    return {};
}

Config ok(const std::string& yaml, EnvLookup env = fake_env({})) {
    return parse_config(yaml, "/etc/prefsync/test.yaml", env);
}

TEST(Config, MinimalConfigGetsDocumentedDefaults) {
    auto c = ok(kApi + kJob);
    EXPECT_EQ(c.api.base_url, "https://pmstg.mypreferences.com/Profiles/v2");
    EXPECT_EQ(c.api.client_id, "12345");
    EXPECT_EQ(c.api.token.kind, TokenSpec::Kind::Env);
    EXPECT_EQ(c.http.connections, 16);
    EXPECT_EQ(c.http.connect_timeout, std::chrono::seconds(10));
    EXPECT_EQ(c.http.request_timeout, std::chrono::seconds(30));
    EXPECT_EQ(c.rate_limit.requests_per_second, 50);
    EXPECT_EQ(c.rate_limit.burst, 50);
    EXPECT_EQ(c.rate_limit.max_in_flight, 16) << "defaults to http.connections";
    EXPECT_EQ(c.retry.max_attempts, 8);
    EXPECT_EQ(c.retry.base_delay, std::chrono::milliseconds(500));
    EXPECT_EQ(c.retry.max_delay, std::chrono::minutes(5));
    EXPECT_EQ(c.retry.max_throttled, std::chrono::hours(1));
    EXPECT_EQ(c.journal.path, "/var/lib/prefsync/journal.db");
    EXPECT_FALSE(c.log.bodies);
    ASSERT_EQ(c.jobs.size(), 1u);
    EXPECT_EQ(c.jobs[0].mode, Mode::Upsert);
    EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(Config, RelativePathsResolveAgainstTheConfigDirectory) {
    auto c = ok(kApi + "journal: { path: state/j.db }\n" + kJob);
    EXPECT_EQ(c.journal.path, "/etc/prefsync/state/j.db");
    EXPECT_EQ(c.jobs[0].source.path(), "/etc/prefsync/data/profiles.csv");
    EXPECT_EQ(c.jobs[0].source.reject_file, "/etc/prefsync/state/rejects/crm.rejects.txt");
}

TEST(Config, EveryErrorIsReportedAtOnceWithLineColumnAndKeyPath) {
    auto errs =
        errors_of(kApi + "http:\n  connections: lots\n  conect_timeout: 5s\nretry: { max_attempts: 0 }\n" + kJob);
    ASSERT_EQ(errs.size(), 3u);
    EXPECT_EQ(errs[0], "/etc/prefsync/test.yaml:6:16: http.connections: expected a whole number, got \"lots\"");
    EXPECT_THAT(errs[1], AllOf(HasSubstr("test.yaml:7:3: http.conect_timeout: unknown key"),
                               HasSubstr("did you mean \"connect_timeout\"")));
    EXPECT_THAT(errs[2], HasSubstr("retry.max_attempts: must be between 1 and 1000, got 0"));
}

TEST(Config, InvalidYamlNamesTheLine) {
    auto errs = errors_of("api:\n  base_url: [unclosed\n");
    ASSERT_EQ(errs.size(), 1u);
    EXPECT_THAT(errs[0], AllOf(HasSubstr("test.yaml:"), HasSubstr("invalid YAML")));
}

TEST(Config, EmptyFileIsAnError) {
    EXPECT_THAT(errors_of(""), Contains(HasSubstr("the config file is empty")));
}

TEST(Config, UnknownTopLevelKeySuggestsTheRightOne) {
    EXPECT_THAT(errors_of(kApi + "jbos: {}\n"), Contains(HasSubstr("jbos: unknown key (did you mean \"jobs\"?)")));
}

TEST(Config, DuplicateKeysAreErrors) {
    EXPECT_THAT(errors_of(kApi + "retry: { max_attempts: 3, max_attempts: 4 }\n"),
                Contains(HasSubstr("retry.max_attempts: duplicate key")));
}

TEST(Config, ApiSectionIsRequiredAndChecked) {
    EXPECT_THAT(errors_of(kJob), Contains(HasSubstr("api: is required")));
    auto errs = errors_of("api: { token_env: T }\n");
    EXPECT_THAT(errs, Contains(HasSubstr("api.base_url: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("api.client_id: is required")));
    EXPECT_THAT(errors_of("api: { base_url: ftp://x, client_id: a, token_env: T }\n"),
                Contains(HasSubstr("api.base_url: must start with https://")));
}

TEST(Config, InlineTokenIsRefusedUnlessExplicitlyAllowedAndThenWarned) {
    EXPECT_THAT(errors_of("api: { base_url: https://x, client_id: a, token: s3cret }\n"),
                Contains(HasSubstr("api.token: a token written in the config file is refused")));
    auto c = ok("api: { base_url: https://x, client_id: a, token: s3cret, allow_inline_token: true }\n");
    EXPECT_EQ(c.api.token.kind, TokenSpec::Kind::Inline);
    EXPECT_THAT(c.warnings, Contains(HasSubstr("api.token is written in the config file")));
}

TEST(Config, OnlyOneTokenSource) {
    EXPECT_THAT(errors_of("api: { base_url: https://x, client_id: a, token_env: T, token_file: f }\n"),
                Contains(HasSubstr("give exactly one of token_env")));
}

// The API token becomes an HTTP header value: a line break in it would end the header.
TEST(Config, ATokenEndingInACarriageReturnIsTrimmedAndOneWithAControlCharacterInsideIsRefusedUnquoted) {
    auto config = ok("api: { base_url: https://x, client_id: a, token_env: T }\n");
    EXPECT_EQ(resolve_token(config, fake_env({{"T", "t0ken-value\r\n"}})), "t0ken-value")
        << "an env file saved with Windows line endings";
    try {
        resolve_token(config, fake_env({{"T", "t0ken\r\nX-Injected: 1"}}));
        ADD_FAILURE() << "read";
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("control character"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("api.token_env"));
        EXPECT_THAT(e.what(), ::testing::Not(::testing::HasSubstr("t0ken")));
    }
}

// A database password is not a header: taken as it is, spaces and tabs included.
TEST(Config, ADatabasePasswordIsTakenAsItIs) {
    TokenSpec spec{TokenSpec::Kind::Env, "PGPASS", {"c.yaml", 3, 5}, "password_env"};
    EXPECT_EQ(read_secret(spec, {}, "source", "password", fake_env({{"PGPASS", "pa\tss "}})), "pa\tss ");
}

TEST(Config, TokenIsResolvedFromEnvFileOrCredential) {
    auto env = fake_env({{"T", "tok-env"}, {"CREDENTIALS_DIRECTORY", "/nonexistent"}});
    EXPECT_EQ(resolve_token(ok("api: { base_url: https://x, client_id: a, token_env: T }\n"), env), "tok-env");

    testing::TempDir dir;
    dir.write("token", "tok-file\n");
    auto from_file =
        parse_config("api: { base_url: https://x, client_id: a, token_file: token }\n", dir.file("c.yaml"), env);
    EXPECT_EQ(resolve_token(from_file, env), "tok-file") << "relative to the config, newline trimmed";

    auto cred_env = fake_env({{"CREDENTIALS_DIRECTORY", dir.path()}});
    auto cred = ok("api: { base_url: https://x, client_id: a, credential: token }\n", cred_env);
    EXPECT_EQ(resolve_token(cred, cred_env), "tok-file");

    auto none = ok("api: { base_url: https://x, client_id: a }\n");
    EXPECT_THROW(resolve_token(none, env), ConfigError);
    auto unset = ok("api: { base_url: https://x, client_id: a, token_env: MISSING }\n");
    try {
        resolve_token(unset, env);
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("environment variable MISSING (api.token_env) is not set"));
    }
}

TEST(Config, OAuthMode) {
    auto c =
        ok("api: { base_url: https://x, client_id: a, token_env: T,\n"
           "       oauth: { token_url: https://auth.example.com/oauth/token, client_id: app, refresh_before: 2m } }\n");
    EXPECT_EQ(c.api.oauth.token_url, "https://auth.example.com/oauth/token");
    EXPECT_EQ(c.api.oauth.client_id, "app");
    EXPECT_EQ(c.api.oauth.refresh_before, std::chrono::minutes(2));
    EXPECT_THAT(errors_of("api: { base_url: https://x, client_id: a, token_env: T, oauth: { client_id: app } }\n"),
                Contains(HasSubstr("api.oauth.token_url: is required")));
    EXPECT_THAT(errors_of("api: { base_url: https://x, client_id: a, token_env: T, oauth: { token_url: ftp://x } }\n"),
                Contains(HasSubstr("api.oauth.token_url: must be an https:// URL")));
}

TEST(Config, EnvironmentInterpolation) {
    auto env = fake_env({{"HOST", "pm.example.com"}, {"EMPTY", ""}});
    auto c =
        ok("api: { base_url: \"https://${HOST}/v2\", client_id: \"${ID:-42}\", token_env: T }\n"
           "journal: { path: \"/x/$${HOST}/${EMPTY:-j}.db\" }\n",
           env);
    EXPECT_EQ(c.api.base_url, "https://pm.example.com/v2");
    EXPECT_EQ(c.api.client_id, "42");
    EXPECT_EQ(c.journal.path, "/x/${HOST}/j.db");
    EXPECT_THAT(errors_of("api: { base_url: \"https://${NOPE}/\", client_id: a }\n", env),
                Contains(HasSubstr("api.base_url: environment variable NOPE is not set")));
    EXPECT_THAT(errors_of("api: { base_url: \"https://${BAD\", client_id: a }\n", env),
                Contains(HasSubstr("unterminated ${...}")));
}

TEST(Config, DurationsAndSizes) {
    EXPECT_EQ(parse_duration("500ms"), std::chrono::milliseconds(500));
    EXPECT_EQ(parse_duration("10s"), std::chrono::seconds(10));
    EXPECT_EQ(parse_duration("5m"), std::chrono::minutes(5));
    EXPECT_EQ(parse_duration("2h"), std::chrono::hours(2));
    EXPECT_EQ(parse_duration("1d"), std::chrono::hours(24));
    EXPECT_EQ(parse_duration("10"), std::nullopt) << "a unit is required";
    EXPECT_EQ(parse_duration("-1s"), std::nullopt);
    EXPECT_EQ(parse_duration("1 s"), std::nullopt);
    EXPECT_EQ(parse_size("8MiB"), 8u << 20);
    EXPECT_EQ(parse_size("512KiB"), 512u << 10);
    EXPECT_EQ(parse_size("100"), 100u);
    EXPECT_EQ(parse_size("8MB"), std::nullopt);
}

TEST(Config, DurationsAndSizesThatWouldOverflowAreRefusedNotWrapped) {
    EXPECT_EQ(parse_duration("99999999999999999999d"), std::nullopt) << "more than 64 bits";
    EXPECT_EQ(parse_duration("9999999999999d"), std::nullopt) << "fits, but its milliseconds do not";
    EXPECT_EQ(parse_duration("36500d"), kMaxDuration);
    EXPECT_EQ(parse_duration("36501d"), std::nullopt) << "over kMaxDuration (100 years)";
    EXPECT_EQ(parse_duration("3153600000000ms"), kMaxDuration);
    EXPECT_EQ(parse_duration("3153600000001ms"), std::nullopt);
    EXPECT_EQ(parse_size("17179869183GiB"), std::size_t{17179869183} << 30) << "the largest that fits";
    EXPECT_EQ(parse_size("17179869184GiB"), std::nullopt);
    EXPECT_EQ(parse_size("9999999999999GiB"), std::nullopt);
    EXPECT_EQ(parse_size("99999999999999999999"), std::nullopt);
    EXPECT_THAT(errors_of(kApi + "retry: { max_delay: 99999999999999999999d }\n"),
                Contains(HasSubstr("retry.max_delay: expected a duration")));
    EXPECT_THAT(
        errors_of(kApi + "jobs:\n  crm:\n    source: { type: csv, path: a.csv, max_record_bytes: 9999999999999GiB }\n"
                         "    identity: { alternate_id_type: CRMID, column: id }\n    mapping: { CustomerType: t }\n"),
        Contains(HasSubstr("jobs.crm.source.max_record_bytes: expected a size")));
}

TEST(Config, ATimeZoneNameTooLongForAPathIsAnErrorNotAnException) {
    // Found by fuzzing: std::filesystem threw "File name too long" out of parse_config.
    EXPECT_THAT(errors_of(kApi + kJob + "daemon: { timezone: " + std::string(300, 'a') + " }\n"),
                Contains(HasSubstr("daemon.timezone: unknown time zone")));
}

TEST(Config, MetricsPortMustBeANumberThatFitsAPort) {
    EXPECT_EQ(parse_port("0"), 0);
    EXPECT_EQ(parse_port("65535"), 65535);
    EXPECT_EQ(parse_port("65536"), std::nullopt);
    EXPECT_EQ(parse_port("99999999999"), std::nullopt);
    EXPECT_EQ(parse_port("-1"), std::nullopt);
    EXPECT_EQ(parse_port("80x"), std::nullopt);
    EXPECT_EQ(parse_port(""), std::nullopt);
    EXPECT_THAT(errors_of(kApi + kJob + "daemon: { metrics_listen: \"127.0.0.1:99999\" }\n"),
                Contains(HasSubstr("daemon.metrics_listen: port \"99999\" is not a number from 0 to 65535")))
        << "was silently truncated to port 34463";
    EXPECT_THAT(errors_of(kApi + kJob + "daemon: { metrics_listen: \"localhost:http\" }\n"),
                Contains(HasSubstr("daemon.metrics_listen: port \"http\"")));
    EXPECT_EQ(ok(kApi + kJob + "daemon: { metrics_listen: \"[::1]:9464\" }\n").daemon.metrics_listen, "[::1]:9464");
    EXPECT_THAT(errors_of(kApi + "http: { request_timeout: soon }\n"),
                Contains(HasSubstr("http.request_timeout: expected a duration")));
    EXPECT_THAT(errors_of(kApi + "retry: { base_delay: 10s, max_delay: 1s }\n"),
                Contains(HasSubstr("retry.max_delay: must not be smaller than retry.base_delay")));
    EXPECT_THAT(errors_of(kApi + "retry: { max_throttled: 0s }\n"),
                Contains(HasSubstr("retry.max_throttled: must be positive")));
    EXPECT_EQ(ok(kApi + kJob + "retry: { max_throttled: 2s }\n").retry.max_throttled, std::chrono::seconds(2));
}

TEST(Config, BooleansAreStrict) {
    EXPECT_THAT(errors_of(kApi + "http: { insecure: maybe }\n"),
                Contains(HasSubstr("http.insecure: expected true or false, got \"maybe\"")));
    auto c = ok(kApi + "http: { insecure: true }\n");
    EXPECT_THAT(c.warnings, Contains(HasSubstr("NOT verified")));
}

TEST(Config, LogLevelFormatAndBodies) {
    auto c = ok(kApi + "log: { level: debug, format: json, bodies: true }\n");
    EXPECT_EQ(c.log.level, base::LogLevel::Debug);
    EXPECT_EQ(c.log.format, base::LogFormat::Json);
    EXPECT_TRUE(c.log.bodies);
    EXPECT_THAT(c.warnings, Contains(HasSubstr("personal data")));
    auto d = ok(kApi);
    EXPECT_EQ(d.log.level, base::LogLevel::Info);
    EXPECT_EQ(d.log.format, base::LogFormat::Text);
}

TEST(Config, LogValuesTheLoggerDoesNotImplementAreErrors) {
    EXPECT_THAT(errors_of(kApi + "log:\n  level: verbose\n  format: xml\n"),
                ElementsAre("/etc/prefsync/test.yaml:6:10: log.level: expected error, warning, info or debug, "
                            "got \"verbose\"",
                            "/etc/prefsync/test.yaml:7:11: log.format: expected text or json, got \"xml\""));
    EXPECT_THAT(errors_of(kApi + "log: { level: trace }\n"), Contains(HasSubstr("log.level: expected error, warning")))
        << "no trace events exist";
    EXPECT_THAT(errors_of(kApi + "log: { colour: true }\n"), Contains(HasSubstr("log.colour")));
}

TEST(Config, Schedules) {
    for (auto s : {"0 2 * * *", "*/15 * * * 1-5", "0 0 1,15 * *", "@daily", "every 15m"})
        EXPECT_EQ(check_schedule(s), "") << s;
    EXPECT_THAT(check_schedule("0 24 * * *"), HasSubstr("invalid hour field \"24\""));
    EXPECT_THAT(check_schedule("* * *"), HasSubstr("5 fields"));
    EXPECT_THAT(check_schedule("*/0 * * * *"), HasSubstr("minute"));
    EXPECT_THAT(check_schedule("every 10ms"), HasSubstr("at least 1s"));
    EXPECT_THAT(errors_of(kApi + kJob + "    schedule: \"61 * * * *\"\n"),
                Contains(HasSubstr("jobs.crm.schedule: invalid minute field")));
}

TEST(Config, JobModes) {
    EXPECT_THAT(errors_of(kApi + kJob + "    mode: upsret\n"),
                Contains(HasSubstr("jobs.crm.mode: expected create, update, upsert, replace, delete, archive or "
                                   "mirror, got \"upsret\" (did you mean \"upsert\"?)")));
    EXPECT_EQ(ok(kApi + kJob + "    mode: replace\n").jobs[0].mode, Mode::Replace);
    EXPECT_THAT(errors_of(kApi + kJob + "    mode: delete\n"),
                Contains(HasSubstr("jobs.crm.mapping: delete jobs send no body")));
    auto del = ok(kApi +
                  "jobs:\n  gone:\n    mode: delete\n    source: { type: csv, path: x.csv }\n"
                  "    identity: { profile_id_column: pid }\n");
    EXPECT_EQ(del.jobs[0].mode, Mode::Delete);
    const std::string by_pid =
        "jobs:\n  fix:\n    mode: replace\n    source: { type: csv, path: x.csv }\n"
        "    identity: { profile_id_column: pid }\n    mapping:\n      CustomerName.FirstName: first\n";
    EXPECT_THAT(errors_of(kApi + by_pid),
                Contains(HasSubstr("jobs.fix.mapping: mode replace by profile id sends a PUT, which blanks what it "
                                   "does not send, the profile's AlternateIds too")));
    EXPECT_EQ(
        ok(kApi + by_pid + "      AlternateIds:\n        - { AlternateIdType: { const: CRMID }, AlternateId: crm }\n")
            .jobs[0]
            .mode,
        Mode::Replace)
        << "the mapping sends the AlternateIds the PUT keeps";
}

TEST(Config, IdentityNormalize) {
    auto job = [](const std::string& identity) {
        return "jobs:\n  crm:\n    source: { type: csv, path: x.csv }\n    identity: " + identity +
               "\n    mapping:\n      CustomerType: t\n";
    };
    auto c = ok(kApi + job("{ alternate_id_type: EMAIL, column: email, normalize: lowercase }"));
    EXPECT_EQ(c.jobs[0].identity.normalize, std::vector<Normalize>{Normalize::Lowercase});
    EXPECT_THAT(errors_of(kApi + job("{ alternate_id_type: EMAIL, column: email, normalize: lower }")),
                Contains(HasSubstr("jobs.crm.identity.normalize: expected lowercase, uppercase, digits or "
                                   "collapse_spaces, got \"lower\"")));
    EXPECT_THAT(errors_of(kApi + job("{ profile_id_column: pid, normalize: digits }")),
                Contains(HasSubstr("jobs.crm.identity.normalize: cleans an alternate id")));
}

TEST(Config, JobNamesAndRequiredParts) {
    auto errs = errors_of(kApi + "jobs:\n  \"bad name\": {}\n  empty:\n    mode: update\n");
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.bad name: job names may use letters")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.empty.source: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.empty.identity: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.empty.mapping: is required for mode update")));
}

TEST(Config, SourceOptions) {
    auto c = ok(kApi + R"(jobs:
  crm:
    source: { type: csv, path: a.tsv, delimiter: "\t", header: false, columns: [id, name], reject_file: /tmp/r.txt, max_record_bytes: 64KiB }
    identity: { alternate_id_type: CRMID, column: id }
    mapping: { CustomerName.FirstName: name }
)");
    EXPECT_EQ(c.jobs[0].source.reject_file, "/tmp/r.txt");
    ASSERT_EQ(c.jobs[0].source.type(), "csv");
    const auto& s = std::get<connectors::CsvSourceConfig>(c.jobs[0].source.settings);
    EXPECT_EQ(s.delimiter, '\t');
    EXPECT_FALSE(s.header);
    EXPECT_EQ(s.columns, (std::vector<std::string>{"id", "name"}));
    EXPECT_EQ(s.max_record_bytes, 64u << 10);

    auto errs = errors_of(kApi + R"(jobs:
  a:
    source: { type: excel, path: a.xls }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
  b:
    source: { type: csv, path: b.csv, delimiter: ";;", header: false, pth: x }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
)");
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.a.source.type: unknown source type \"excel\"")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.delimiter: must be one character")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.columns: is required when header: false")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.pth: unknown key (did you mean \"path\"?)")));
}

TEST(Config, SqlSources) {
    auto c = ok(kApi + R"(jobs:
  pg:
    source:
      type: postgres
      conninfo: "host=db.internal dbname=crm user=prefsync"
      password_env: CRM_DB_PASSWORD
      sslmode: verify-full
      sslrootcert: certs/root.crt
      table: crm.customers
      incremental: { column: updated_at, key: id, overlap: 5m }
      fetch_rows: 5000
    identity: { alternate_id_type: CRMID, column: id }
    mapping: { CustomerName.FirstName: name }
  lite:
    source: { type: sqlite, path: crm.db, query: "SELECT * FROM customers" }
    identity: { alternate_id_type: CRMID, column: id }
    mapping: { CustomerName.FirstName: name }
)");
    ASSERT_EQ(c.jobs[0].source.type(), "postgres");
    const auto& pg = std::get<connectors::PostgresSourceConfig>(c.jobs[0].source.settings);
    EXPECT_EQ(pg.connection.conninfo, "host=db.internal dbname=crm user=prefsync");
    EXPECT_EQ(pg.connection.password.kind, TokenSpec::Kind::Env);
    EXPECT_EQ(pg.connection.sslmode, "verify-full");
    EXPECT_EQ(pg.connection.sslrootcert, "/etc/prefsync/certs/root.crt");
    EXPECT_EQ(pg.table, "crm.customers");
    ASSERT_TRUE(c.jobs[0].source.incremental());
    EXPECT_EQ(c.jobs[0].source.incremental()->column, "updated_at");
    EXPECT_EQ(c.jobs[0].source.incremental()->overlap, std::chrono::minutes(5));
    EXPECT_EQ(c.jobs[0].source.incremental()->key_path, "jobs.pg.source.incremental");
    EXPECT_EQ(pg.fetch_rows, 5000u);
    ASSERT_EQ(c.jobs[1].source.type(), "sqlite");
    EXPECT_EQ(c.jobs[1].source.path(), "/etc/prefsync/crm.db");
    EXPECT_EQ(c.jobs[1].source.sql()->query, "SELECT * FROM customers");
    EXPECT_EQ(c.jobs[1].source.incremental(), nullptr);
    EXPECT_EQ(connectors::resolve_password(pg.connection, fake_env({{"CRM_DB_PASSWORD", "s3cret"}})), "s3cret");
    try {
        connectors::resolve_password(pg.connection, fake_env({}));
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(),
                    HasSubstr("environment variable CRM_DB_PASSWORD (jobs.pg.source.password_env) is not set"));
    }
    EXPECT_EQ(connectors::resolve_password(connectors::PostgresConnectionConfig{}, fake_env({})), "")
        << "none configured: libpq decides";

    auto errs = errors_of(kApi + R"(jobs:
  a:
    source: { type: postgres, table: t, query: "SELECT 1", password_env: A, password_file: b, sslmode: verify }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
  b:
    source: { type: sqlite, table: "bad\"name", incremental: { column: u }, conninfo: x }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
  c:
    source: { type: postgress, conninfo: x, table: t }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
)");
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.a.source.conninfo: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.a.source: give exactly one of table, query")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.a.source: give at most one of password_env")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.a.source.sslmode: expected disable, allow")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.path: is required (the SQLite database file)")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.table: must be a non-empty name without double quotes")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.incremental.key: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.source.conninfo: unknown key")));
    EXPECT_THAT(errs, Contains(HasSubstr("unknown source type \"postgress\" (did you mean \"postgres\"?)")));

    auto warned = ok(kApi + R"(jobs:
  a:
    source: { type: postgres, conninfo: "postgresql://u:hunter2@db/crm", table: t }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
)");
    EXPECT_THAT(warned.warnings, Contains(HasSubstr("jobs.a.source.conninfo contains a password")));
}

TEST(Config, Identity) {
    auto job = [](const std::string& identity, const std::string& mode = "update") {
        return kApi + "jobs:\n  j:\n    mode: " + mode + "\n    source: { type: csv, path: x.csv }\n" +
               "    identity: " + identity + "\n    mapping: { CustomerType: t }\n";
    };
    EXPECT_TRUE(ok(job("{ profile_id_column: pid }")).jobs[0].identity.by_profile_id());
    EXPECT_THAT(errors_of(job("{ alternate_id_type: X, column: c, profile_id_column: p }")),
                Contains(HasSubstr("identity: give exactly one of alternate_id_type + column, profile_id_column")));
    EXPECT_THAT(errors_of(job("{ alternate_id_type: X }")), Contains(HasSubstr("go together")));
    EXPECT_THAT(errors_of(job("{}")),
                Contains(HasSubstr("identity: give alternate_id_type + column or profile_id_column")));
    EXPECT_THAT(errors_of(job("{ profile_id_column: pid }", "upsert")),
                Contains(HasSubstr("mode upsert identifies profiles by alternate id")));
    EXPECT_THAT(errors_of(job("{ alternate_id_type: X, column: c }", "archive")),
                Contains(HasSubstr("archive addresses profiles by id")));
}

const std::string kPullJob = R"(jobs:
  export:
    source: { type: csv, path: ids.csv }
    identity: { profile_id_column: pid }
    pull: { implied: true }
)";

TEST(Config, SinkIsValidated) {
    EXPECT_THAT(errors_of(kApi + kPullJob + "    sink: { type: xml, path: out.xml }\n"),
                Contains(HasSubstr(
                    "jobs.export.sink.type: unknown sink type \"xml\"; expected csv, jsonl, sqlite or postgres")));
    auto c = ok(kApi + kPullJob + "    sink: { type: jsonl, path: out.jsonl }\n");
    ASSERT_TRUE(c.jobs[0].sink);
    EXPECT_EQ(c.jobs[0].sink->type(), "jsonl");
    EXPECT_EQ(c.jobs[0].sink->path(), "/etc/prefsync/out.jsonl");
    c = ok(kApi + kPullJob +
           "    sink: { type: postgres, conninfo: \"dbname=wh\", password_file: pw, table: mp.profiles,"
           " columns: { id: ProfileId, email: \"Emails[0].EmailAddress\" } }\n");
    EXPECT_EQ(c.jobs[0].sink->table(), "mp.profiles");
    EXPECT_EQ(c.jobs[0].sink->key(), "id") << "the ProfileId column is the upsert key";
    EXPECT_EQ(c.jobs[0].sink->path(), "") << "a server, not a file";
    EXPECT_EQ(std::get<connectors::PostgresSinkConfig>(c.jobs[0].sink->settings).connection.password.value,
              "/etc/prefsync/pw");
    EXPECT_EQ(c.jobs[0].sink->columns()[1].path, "Emails[0].EmailAddress");
    EXPECT_THAT(errors_of(kApi + kPullJob + "    sink: { type: sqlite, path: out.db, columns: { a: CustomerType } }\n"),
                AllOf(Contains(HasSubstr("jobs.export.sink.table: is required")),
                      Contains(HasSubstr("jobs.export.sink.key: is required"))));
    EXPECT_THAT(errors_of(kApi + kPullJob + "    sink: { type: csv, path: out.csv, table: t, columns: { a: B } }\n"),
                Contains(HasSubstr("jobs.export.sink.table: unknown key")));
    EXPECT_THAT(errors_of(kApi + kPullJob + "    sink: { type: csv, path: out.csv }\n"),
                Contains(HasSubstr("jobs.export.sink.columns: is required")));
    EXPECT_THAT(errors_of(kApi + kJob + "    sink: { type: jsonl, path: out.jsonl }\n"),
                Contains(HasSubstr("jobs.crm.sink: is for pull jobs")));
}

TEST(Config, TheSourceTypeChoosesWhichKeysTheSectionMayHave) {
    // Each connector checks its own section; config only chose it by type.
    auto errs = errors_of(kApi + R"(jobs:
  a:
    source: { type: csv, path: a.csv, table: customers }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
  b:
    source: { type: sqlite, path: b.db, table: customers, delimiter: ";" }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
  c:
    source: { path: c.csv }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
)");
    EXPECT_THAT(errs, Contains("/etc/prefsync/test.yaml:7:39: jobs.a.source.table: unknown key; valid keys here: type, "
                               "path, delimiter, header, columns, reject_file, max_record_bytes, settle"));
    EXPECT_THAT(errs, Contains(HasSubstr("/etc/prefsync/test.yaml:11:59: jobs.b.source.delimiter: unknown key")));
    EXPECT_THAT(errs,
                Contains("/etc/prefsync/test.yaml:15:13: jobs.c.source.type: is required (csv, sqlite or postgres)"));
    EXPECT_EQ(errs.size(), 3u) << ::testing::PrintToString(errs);

    auto sinks =
        errors_of(kApi + kPullJob + "    sink: { type: jsonl, path: out.jsonl, columns: { id: ProfileId } }\n");
    EXPECT_THAT(sinks, ElementsAre(HasSubstr("jobs.export.sink.columns: unknown key; valid keys here: type, path")));
    EXPECT_THAT(errors_of(kApi + kPullJob + "    sink: { path: out.jsonl }\n"),
                ElementsAre(HasSubstr("jobs.export.sink.type: is required (csv, jsonl, sqlite or postgres)")));
}

TEST(Config, WarningsKeepTheirOrderAcrossSections) {
    auto c = ok(kApi + "http: { insecure: true }\nlog: { bodies: true }\n" + R"(jobs:
  pg:
    source: { type: postgres, conninfo: "host=db password=x", table: t }
    identity: { alternate_id_type: X, column: id }
    mapping: { CustomerType: t }
)");
    EXPECT_THAT(c.warnings, ElementsAre(HasSubstr("http.insecure"), HasSubstr("log.bodies"),
                                        HasSubstr("jobs.pg.source.conninfo contains a password")));
}

TEST(Config, PullJobs) {
    auto c = ok(kApi + kJob + R"(  back:
    pull:
      reconcile: crm
    sink: { type: jsonl, path: r.jsonl }
  trail:
    source: { type: csv, path: ids.csv }
    identity: { profile_id_column: pid }
    pull:
      history: Preferences
      filter_id: F1
    sink: { type: jsonl, path: h.jsonl }
  find:
    pull:
      searches:
        - { endpoint: Email, params: { emailAddress: a@example.com } }
        - { endpoint: "Groups/Primary/42", params: { groupType: Household } }
    sink: { type: jsonl, path: s.jsonl }
)");
    const auto& back = *c.find_job("back");
    ASSERT_TRUE(back.pull);
    EXPECT_EQ(back.pull->reconcile, "crm");
    EXPECT_FALSE(back.has_source);
    EXPECT_EQ(c.find_job("trail")->pull->history, HistoryKind::Preferences);
    const auto& find = *c.find_job("find");
    ASSERT_EQ(find.pull->searches.size(), 2u);
    EXPECT_EQ(find.pull->searches[0].params[0], (std::pair<std::string, std::string>{"emailAddress", "a@example.com"}));

    auto errs = errors_of(kApi + R"(jobs:
  a:
    pull: { searches: [ { endpoint: Emails, params: { emailAddress: x } } ], history: Consent }
    sink: { type: jsonl, path: a.jsonl }
  b:
    pull: { reconcile: nope, filter_id: F }
    mode: upsert
  c:
    pull: {}
    sink: { type: jsonl, path: c.jsonl }
  d:
    pull: { reconcile: c }
    sink: { type: jsonl, path: d.jsonl }
  e:
    pull: { reconcile: a, history: Consents }
    sink: { type: jsonl, path: e.jsonl }
)");
    EXPECT_THAT(errs,
                Contains(AllOf(
                    HasSubstr("jobs.a.pull.searches[0].endpoint: expected Address, CustomFields"),
                    HasSubstr("or a value matching Groups/Primary/[0-9]+, got \"Emails\" (did you mean \"Email\"?)"))));
    EXPECT_THAT(errs,
                Contains(HasSubstr("jobs.a.pull.history: expected Consents, ContactElements, CustomFields, Preferences "
                                   "or StandardFields, got \"Consent\" (did you mean \"Consents\"?)")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.mode: unknown key")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.pull.filter_id: applies to history: Preferences only")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.sink: is required")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.b.pull.reconcile: no job named \"nope\"")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.c.pull: give identities to pull")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.d.pull.reconcile: \"c\" is a pull job")));
    // A history answer is not the profile the push job's body is compared with: every
    // identity would be reported differing.
    EXPECT_THAT(errs, Contains(AllOf(ContainsRegex("^/etc/prefsync/test.yaml:[0-9]+:[0-9]+: "),
                                     HasSubstr("jobs.e.pull.reconcile: compares the push job's bodies with profiles, "
                                               "not with history answers"))));
}

// H5 answers carry the ProfileId in each UserProfilePreferences entry, not at the top (H1–H4
// do): a table keyed on the path ProfileId would have no key for any profile.
TEST(Config, AStandardFieldsHistoryIntoATableKeyedOnProfileIdIsRefused) {
    auto job = [](const std::string& history, const std::string& sink) {
        return kApi + kJob +
               "  h:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
               "    pull: { history: " +
               history + " }\n    sink: " + sink + "\n";
    };
    auto errs = errors_of(
        job("StandardFields", "{ type: sqlite, path: h.db, table: h, columns: { pid: ProfileId, n: CustomerName } }"));
    EXPECT_THAT(errs, ElementsAre(AllOf(HasSubstr("jobs.h.sink.key: history StandardFields answers have no top-level "
                                                  "ProfileId"),
                                        HasSubstr("column \"pid\" would be empty for every profile"))));
    EXPECT_THAT(errors_of(job("StandardFields",
                              "{ type: postgres, conninfo: \"dbname=x\", table: h, key: pid, "
                              "columns: { crm: CustomerName, pid: ProfileId } }")),
                ElementsAre(HasSubstr("jobs.h.sink.key: history StandardFields")));
    // Keyed on a path the answer has, another history, or a csv sink (no key): accepted.
    ok(job("StandardFields",
           "{ type: sqlite, path: h.db, table: h, key: pid, columns: { pid: \"UserProfilePreferences[0].ProfileId\" "
           "} }"));
    ok(job("Consents", "{ type: sqlite, path: h.db, table: h, columns: { pid: ProfileId } }"));
    ok(job("StandardFields",
           "{ type: csv, path: h.csv, each: UserProfilePreferences, columns: { pid: \"@.ProfileId\", top: ProfileId "
           "} }"));
}

// --- mapping section ------------------------------------------------------------------

std::string with_mapping(const std::string& mapping) {
    return kApi +
           "jobs:\n  crm:\n    source: { type: csv, path: x.csv }\n"
           "    identity: { alternate_id_type: CRMID, column: id }\n    mapping:\n" +
           mapping;
}

TEST(ConfigMapping, UnknownFieldsAreNamedWithSuggestionAndPosition) {
    auto errs =
        errors_of(with_mapping("      CustomerName.FirstNam: first\n"
                               "      Emails:\n        - EmailAdress: email\n"));
    ASSERT_EQ(errs.size(), 2u);
    EXPECT_EQ(errs[0],
              "/etc/prefsync/test.yaml:10:30: jobs.crm.mapping.CustomerName.FirstNam: "
              "unknown CustomerName field \"FirstNam\" (did you mean \"FirstName\"?)");
    EXPECT_THAT(errs[1], HasSubstr("test.yaml:12:24: jobs.crm.mapping.Emails[0].EmailAdress: unknown Email "
                                   "field \"EmailAdress\" (did you mean \"EmailAddress\"?)"));
}

TEST(ConfigMapping, ReadOnlyFieldsAreRefused) {
    auto errs =
        errors_of(with_mapping("      ProfileId: pid\n      UpdateStatus: s\n"
                               "      Addresses:\n        - CassCity: c\n"));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.crm.mapping.ProfileId: is read-only")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.crm.mapping.UpdateStatus: is read-only")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.crm.mapping.Addresses[0].CassCity: is read-only")));
}

TEST(ConfigMapping, DottedAndNestedFormsMergeButNotTwice) {
    auto c = ok(with_mapping("      CustomerName.FirstName: f\n      CustomerName: { LastName: l }\n"));
    ASSERT_EQ(c.jobs[0].mapping.fields.size(), 1u);
    auto& name = std::get<ObjectSpec>(c.jobs[0].mapping.fields[0].spec);
    EXPECT_EQ(name.fields.size(), 2u);
    EXPECT_THAT(errors_of(with_mapping("      CustomerName.FirstName: f\n      CustomerName: { FirstName: g }\n")),
                Contains(HasSubstr("jobs.crm.mapping.CustomerName.FirstName: is mapped twice")));
    EXPECT_THAT(errors_of(with_mapping("      Emails.EmailAddress: e\n")),
                Contains(HasSubstr("only object fields take a dotted path")));
}

TEST(ConfigMapping, ConstantsAreCheckedAgainstTheFieldType) {
    auto errs =
        errors_of(with_mapping("      IsActive: { const: maybe }\n"
                               "      Consents:\n        - ConsentStatus: { column: c, map: { y: one } }\n"
                               "      RegistrationConfirmed: { column: r, default: perhaps }\n"));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.crm.mapping.IsActive.const: expected a boolean")));
    EXPECT_THAT(
        errs,
        Contains(HasSubstr("jobs.crm.mapping.Consents[0].ConsentStatus.map.y: expected a whole number, got \"one\"")));
    EXPECT_THAT(errs, Contains(HasSubstr("jobs.crm.mapping.RegistrationConfirmed.default: expected a boolean")));
}

TEST(ConfigMapping, ValueSpecErrors) {
    auto errs =
        errors_of(with_mapping("      CustomerType: { column: a, const: b }\n"
                               "      DefaultLocale: { normalize: lowercase }\n"
                               "      ReasonCode: { column: r, normalize: [lowercase, shout] }\n"
                               "      CustomerName.FirstName: { column: f, colour: red }\n"
                               "      CustomerName.LastName: { column: l, date: \"%Q\" }\n"
                               "      IsActive: { column: a, empty: keep }\n"
                               "      CustomerName.Prefix: { column: p, empty: sometimes }\n"
                               "      CustomerName.Suffix:\n"));
    EXPECT_THAT(errs, Contains(HasSubstr("CustomerType: give exactly one of column, const")));
    EXPECT_THAT(errs, Contains(HasSubstr("DefaultLocale: give column or const")));
    EXPECT_THAT(
        errs,
        Contains(HasSubstr(
            "ReasonCode.normalize: expected lowercase, uppercase, digits, collapse_spaces or trim, got \"shout\"")));
    EXPECT_THAT(errs, Contains(HasSubstr("CustomerName.FirstName.colour: unknown key")));
    EXPECT_THAT(errs, Contains(HasSubstr("CustomerName.LastName.date: date format directive %Q is not supported")));
    EXPECT_THAT(errs, Contains(HasSubstr("IsActive.empty: keep is only for string fields")));
    EXPECT_THAT(errs, Contains(HasSubstr("CustomerName.Prefix.empty: expected absent or keep")));
    EXPECT_THAT(errs, Contains(HasSubstr("CustomerName.Suffix: is empty")));
}

TEST(ConfigMapping, ArraysTakeListsSplitColumnsOrNamedValues) {
    auto c = ok(with_mapping(
        "      ProfileTags: { column: tags, split: \";\" }\n"
        "      Groups: { column: groups, split: \"|\", field: GroupName, with: { GroupType: { const: Household } } }\n"
        "      CustomFields: { Tier: tier, Since: { column: since } }\n"
        "      Emails:\n        - { EmailAddress: e1 }\n        - { EmailAddress: e2 }\n"));
    const auto& f = c.jobs[0].mapping.fields;
    ASSERT_EQ(f.size(), 4u);
    auto& tags = std::get<ArraySpec>(f[0].spec);
    ASSERT_TRUE(tags.split);
    EXPECT_EQ(tags.split->field, "Name") << "the only string field of a tag";
    EXPECT_EQ(tags.split->delimiter, ";");
    auto& groups = std::get<ArraySpec>(f[1].spec);
    EXPECT_EQ(groups.split->field, "GroupName");
    EXPECT_EQ(groups.split->with.size(), 1u);
    auto& custom = std::get<ArraySpec>(f[2].spec);
    ASSERT_EQ(custom.named.size(), 2u);
    EXPECT_EQ(custom.name_field, "Name");
    EXPECT_EQ(std::get<ArraySpec>(f[3].spec).elements.size(), 2u);

    auto errs =
        errors_of(with_mapping("      ProfileTags: { column: tags }\n"
                               "      Groups: { column: groups, split: \"|\" }\n"
                               "      Emails: { Home: e }\n"
                               "      Addresses: a\n"));
    EXPECT_THAT(errs, Contains(HasSubstr("ProfileTags.split: is required (the delimiter")));
    EXPECT_THAT(errs, Contains(HasSubstr("Groups.field: is required: which Group field gets each item")));
    EXPECT_THAT(errs, Contains(HasSubstr("Emails: expected a list of Email elements")));
    EXPECT_THAT(errs, Contains(HasSubstr("Addresses: expected a list of Address elements")));
}

TEST(ConfigMapping, ArchiveModeMapsTheArchiveBody) {
    auto c = ok(kApi +
                "jobs:\n  arch:\n    mode: archive\n    source: { type: csv, path: x.csv }\n"
                "    identity: { profile_id_column: pid }\n"
                "    mapping: { GlobalDeactivate: { const: true }, Reason_Code: { const: GDPR } }\n");
    EXPECT_EQ(c.jobs[0].mapping.fields.size(), 2u);
    EXPECT_THAT(errors_of(kApi + "jobs:\n  arch:\n    mode: archive\n    source: { type: csv, path: x.csv }\n"
                                 "    identity: { profile_id_column: pid }\n    mapping: { CustomerType: t }\n"),
                Contains(HasSubstr("unknown ArchivePreferences field \"CustomerType\"")));
}

TEST(Config, LoadConfigReportsAMissingFile) {
    try {
        load_config("/nonexistent/prefsync.yaml");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("/nonexistent/prefsync.yaml: cannot read the config file"));
    }
}

TEST(Config, TheBundledExampleIsValid) {
    auto c = load_config(PREFSYNC_SOURCE_DIR "/examples/prefsync.yaml", fake_env({}));
    ASSERT_NE(c.find_job("crm-nightly"), nullptr);
    EXPECT_EQ(c.find_job("nope"), nullptr);
}

}  // namespace
}  // namespace prefsync::config
