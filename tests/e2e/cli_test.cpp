// End-to-end tests of the prefsync binary: what a user types, what they see, exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <sstream>

#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::quote;
using testing::run;

const std::string kBin = PREFSYNC_BINARY;
const std::string kExample = PREFSYNC_SOURCE_DIR "/examples/prefsync.yaml";

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// A scratch config (with its own journal dir) around `csv` and `mapping`.
struct Scratch {
    testing::TempDir dir;
    std::string config;
    Scratch(const std::string& csv, const std::string& mapping) {
        dir.write("in.csv", csv);
        config = dir.write("prefsync.yaml",
                           "api: { base_url: https://pm.example.com/Profiles/v2, client_id: \"9\", token_env: T }\n"
                           "journal: { path: state/journal.db }\n"
                           "jobs:\n  crm:\n    source: { type: csv, path: in.csv }\n"
                           "    identity: { alternate_id_type: CRMID, column: id }\n    mapping:\n" +
                               mapping);
    }
    std::string cmd(const std::string& args) const { return quote(kBin) + " -c " + quote(config) + " " + args; }
};

TEST(Cli, CheckConfigAcceptsTheBundledExample) {
    auto r = run("PREFSYNC_TOKEN=secret-token-value " + quote(kBin) + " -c " + quote(kExample) + " check-config");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("prefsync.yaml: OK"));
    EXPECT_THAT(r.out + r.err, Not(HasSubstr("secret-token-value"))) << "the token is never printed";
}

TEST(Cli, CheckConfigReportsEveryErrorWithPositionAndExits1) {
    testing::TempDir dir;
    auto cfg = dir.write("bad.yaml",
                         "api: { base_url: https://x, client_id: \"1\", token_env: T }\n"
                         "rate_limit: { burst: -1 }\n"
                         "jobs:\n  j:\n    mode: upsret\n    source: { type: csv, path: in.csv }\n"
                         "    identity: { alternate_id_type: X, column: id }\n    mapping: { CustomerType: t }\n");
    auto r = run("T=x " + quote(kBin) + " -c " + quote(cfg) + " check-config");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr(cfg + ":2:22: rate_limit.burst: must be between 1 and 100000"));
    EXPECT_THAT(r.err, HasSubstr(cfg + ":5:11: jobs.j.mode: expected create, update, upsert, replace, delete, archive "
                                       "or mirror, got \"upsret\" (did you mean \"upsert\"?)"));
    EXPECT_THAT(r.err, HasSubstr("2 errors"));
}

// A header every run would stop on is an error for check-config; a file not there yet is a
// warning (it may be dropped before the run).
TEST(Cli, CheckConfigRefusesAHeaderThatNamesAColumnTwice) {
    testing::TempDir dir;
    auto text = [&](const std::string& csv) {
        return "api: { base_url: https://x, client_id: \"1\", token_env: T }\n"
               "jobs:\n  j:\n    source: { type: csv, path: " +
               csv +
               " }\n"
               "    identity: { alternate_id_type: X, column: id }\n    mapping: { CustomerName.FirstName: name }\n";
    };
    dir.write("in.csv", "id,name,name\n1,a,b\n");
    auto cfg = dir.write("p.yaml", text("in.csv"));
    auto r = run("T=x " + quote(kBin) + " -c " + quote(cfg) + " check-config");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("jobs.j.source: " + dir.file("in.csv") + ":1: header names column \"name\" twice"));
    cfg = dir.write("p.yaml", text("not-yet.csv"));
    r = run("T=x " + quote(kBin) + " -c " + quote(cfg) + " check-config");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("columns not checked"));
}

TEST(Cli, CheckConfigChecksColumnsAndToken) {
    Scratch s("id,first\n1,a\n", "      CustomerName.FirstName: frist\n");
    auto r = run(s.cmd("check-config --token"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("jobs.crm.mapping.CustomerName.FirstName: unknown column \"frist\""));
    EXPECT_THAT(r.err, HasSubstr("did you mean \"first\""));
    EXPECT_THAT(r.err,
                HasSubstr("error: " + s.config + ":1:81: api: environment variable T (api.token_env) is not set"));
    EXPECT_THAT(r.err, HasSubstr("2 errors"));
}

// The first command a new user runs must not fail for want of a secret they may not hold.
TEST(Cli, CheckConfigWithoutTheTokenPassesWithAWarningSayingHowToCheckIt) {
    auto r = run("env -u PREFSYNC_TOKEN " + quote(kBin) + " -c " + quote(kExample) + " check-config");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("prefsync.yaml: OK"));
    EXPECT_THAT(r.err, ::testing::StartsWith("warning: " + kExample + ":"));
    EXPECT_THAT(r.err, HasSubstr(": api: environment variable PREFSYNC_TOKEN (api.token_env) is not set; the token "
                                 "was not checked (run \"prefsync check-config --token\""));
    EXPECT_THAT(r.err, Not(HasSubstr("error:")));
}

TEST(Cli, CheckConfigTokenRequiresTheTokenAndNeverEchoesIt) {
    auto missing = run("env -u PREFSYNC_TOKEN " + quote(kBin) + " -c " + quote(kExample) + " check-config --token");
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_THAT(missing.err, ::testing::StartsWith("error: " + kExample + ":"));
    EXPECT_THAT(missing.err, HasSubstr(": api: environment variable PREFSYNC_TOKEN (api.token_env) is not set"));
    EXPECT_THAT(missing.out, Not(HasSubstr("OK")));

    auto present =
        run("PREFSYNC_TOKEN=secret-token-value " + quote(kBin) + " -c " + quote(kExample) + " check-config --token");
    EXPECT_EQ(present.exit_code, 0) << present.err;
    EXPECT_THAT(present.err, Not(HasSubstr("token was not checked")));
    EXPECT_THAT(present.out + present.err, Not(HasSubstr("secret-token-value")));

    testing::TempDir dir;
    auto token = dir.write("token", "file-secret-value\n");
    auto cfg = dir.write(
        "p.yaml", "api: { base_url: https://pm.example.com/Profiles/v2, client_id: \"9\", token_file: token }\n");
    auto from_file = run(quote(kBin) + " -c " + quote(cfg) + " check-config --token");
    EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
    EXPECT_THAT(from_file.out + from_file.err, Not(HasSubstr("file-secret-value")));
    std::filesystem::remove(token);
    auto unreadable = run(quote(kBin) + " -c " + quote(cfg) + " check-config --token");
    EXPECT_EQ(unreadable.exit_code, 1);
    EXPECT_THAT(unreadable.err, HasSubstr("cannot read the API token file"));
}

TEST(Cli, CheckConfigWithNoTokenSourceAtAllIsAnErrorEvenWithoutTokenFlag) {
    testing::TempDir dir;
    auto cfg = dir.write("p.yaml", "api: { base_url: https://pm.example.com/Profiles/v2, client_id: \"9\" }\n");
    auto r = run(quote(kBin) + " -c " + quote(cfg) + " check-config");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("no API token configured"));
}

TEST(Cli, DryRunMapsTheBundledExample) {
    auto r = run(quote(kBin) + " -c " + quote(kExample) + " dry-run crm-nightly");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto out = lines(r.out);
    ASSERT_EQ(out.size(), 1001u) << "1000 rows and the summary";
    std::size_t previous_line = 0;
    for (std::size_t i = 0; i + 1 < out.size(); ++i) {
        auto v = boost::json::parse(out[i]).as_object();
        auto origin = std::string(v.at("row").as_string());
        auto line = std::stoul(origin.substr(origin.rfind(':') + 1));
        ASSERT_GT(line, previous_line) << "rows come in file order";
        previous_line = line;
        ASSERT_EQ(v.at("identity").at("alternate_id_type").as_string(), "CRMID");
        ASSERT_TRUE(v.at("body").is_object());
    }
    auto summary = boost::json::parse(out.back()).at("summary").as_object();
    EXPECT_EQ(summary.at("read").as_int64(), 1000);
    EXPECT_EQ(summary.at("mapped").as_int64(), 1000);
    EXPECT_EQ(summary.at("rejected").as_int64(), 0);
}

TEST(Cli, DryRunIsDeterministic) {
    auto a = run(quote(kBin) + " -c " + quote(kExample) + " dry-run crm-nightly");
    auto b = run(quote(kBin) + " -c " + quote(kExample) + " dry-run crm-nightly");
    EXPECT_EQ(a.out, b.out);
}

TEST(Cli, DryRunLimit) {
    auto r = run(quote(kBin) + " -c " + quote(kExample) + " dry-run crm-nightly --limit 5");
    EXPECT_EQ(r.exit_code, 0);
    auto out = lines(r.out);
    ASSERT_EQ(out.size(), 6u);
    EXPECT_THAT(out.back(), HasSubstr("\"read\":5,\"mapped\":5,\"rejected\":0"));
}

TEST(Cli, DryRunRejectsBadRowsKeepsGoodOnesAndExits2) {
    Scratch s(
        "id,first,confirmed\n"
        "1,Ann,yes\n"
        "2,Bob,yes,extra\n"
        "3,Caf\xC3,no\n"
        "4,Dee,sometimes\n"
        "5,\"Eve\",no\n"
        "6,\"Fay\"x,no\n"
        "7,Gus,y\n",
        "      CustomerName.FirstName: first\n      RegistrationConfirmed: confirmed\n");
    auto r = run(s.cmd("dry-run crm"));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    auto out = lines(r.out);
    ASSERT_EQ(out.size(), 4u) << r.out;
    EXPECT_THAT(out[0], HasSubstr("\"alternate_id\":\"1\""));
    EXPECT_THAT(out[1], HasSubstr("\"alternate_id\":\"5\""));
    EXPECT_THAT(out[2], HasSubstr("\"alternate_id\":\"7\""));
    EXPECT_THAT(out[3], HasSubstr("\"read\":7,\"mapped\":3,\"rejected\":4"));

    auto csv = s.dir.file("in.csv");
    auto rejected = "warning: Row rejected. origin=" + csv;
    EXPECT_THAT(r.err, HasSubstr(rejected + ":3 reason=\"wrong number of fields: expected 3, got 4\""));
    EXPECT_THAT(r.err, HasSubstr(rejected + ":4 reason=\"invalid UTF-8 in column \\\"first\\\"\""));
    EXPECT_THAT(r.err, HasSubstr(rejected + ":5 reason=\"jobs.crm.mapping.RegistrationConfirmed: expected a boolean"));
    EXPECT_THAT(r.err, HasSubstr(rejected + ":7 reason=\"unexpected character after the closing quote"));

    auto rejects = testing::read_file(s.dir.file("state/rejects/crm.rejects.txt"));
    EXPECT_THAT(rejects,
                HasSubstr("--- " + csv +
                          ":3 reason=\"wrong number of fields: expected 3, got 4\" bytes=15\n2,Bob,yes,extra\n"));
    EXPECT_THAT(rejects,
                HasSubstr("--- " + csv + ":4 reason=\"invalid UTF-8 in column 'first'\" bytes=9\n3,Caf\xC3,no\n"));
    EXPECT_THAT(rejects, HasSubstr(":5 reason=\"jobs.crm.mapping.RegistrationConfirmed: expected a boolean"));
    EXPECT_THAT(rejects, HasSubstr("4,Dee,sometimes\n"));
    EXPECT_THAT(rejects, HasSubstr(":7 reason=\"unexpected character"));
}

TEST(Cli, UnknownJobListsTheJobs) {
    auto r = run(quote(kBin) + " -c " + quote(kExample) + " dry-run nope");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr("no job named \"nope\" (jobs: crm-nightly)"));
}

TEST(Cli, MissingSourceFileIsFatal) {
    Scratch s("id\n1\n", "      CustomerType: { const: Retail }\n");
    std::filesystem::remove(s.dir.file("in.csv"));
    auto r = run(s.cmd("dry-run crm"));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_THAT(r.err, HasSubstr("jobs.crm.source: cannot open " + s.dir.file("in.csv")));
}

TEST(Cli, UsageErrorsExit1) {
    EXPECT_EQ(run(quote(kBin)).exit_code, 1) << "a subcommand is required";
    EXPECT_EQ(run(quote(kBin) + " frobnicate").exit_code, 1);
    EXPECT_EQ(run(quote(kBin) + " -c /nonexistent.yaml dry-run x").exit_code, 1);
    auto v = run(quote(kBin) + " --version");
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_THAT(v.out, HasSubstr("prefsync "));
}

TEST(Cli, ConfigComesFromPrefsyncConfigWhenNotGiven) {
    auto r = run("PREFSYNC_TOKEN=x PREFSYNC_CONFIG=" + quote(kExample) + " " + quote(kBin) + " check-config");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(ExampleData, TheGeneratorReproducesTheBundledCsvExactly) {
    auto r = run(quote(PREFSYNC_GEN_PROFILES) + " 1000");
    ASSERT_EQ(r.exit_code, 0);
    auto bundled = testing::read_file(PREFSYNC_SOURCE_DIR "/examples/profiles.csv");
    // Compared as a bool: a diff of two 170 KB files helps nobody in a test log.
    EXPECT_TRUE(r.out == bundled) << "generated " << r.out.size() << " bytes, bundled " << bundled.size()
                                  << "; regenerate with scripts/gen-example-data.sh";
}

// Secrets and files (issue 12): a token pasted where its location belongs never reaches the
// output, a token file others can read is warned about by every command, reject files are
// private and never written through a symbolic link.
const std::string kJwt =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const std::string kHex = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

// Any stretch of the secret long enough to matter.
void expect_never_shown(const std::string& output, const std::string& secret, const std::string& what) {
    for (std::size_t i = 0; i + 8 <= secret.size(); i += 4)
        EXPECT_THAT(output, Not(HasSubstr(secret.substr(i, 8)))) << what;
}

TEST(CliSecrets, APastedTokenIsNeverEchoedByCheckConfigSyncOrDryRun) {
    for (const auto& [key, secret] : std::vector<std::pair<std::string, std::string>>{
             {"token_env", kJwt}, {"token_env", kHex}, {"token_file", kJwt}, {"credential", kHex}}) {
        testing::TempDir dir;
        dir.write("in.csv", "id,first\n1,Ann\n");
        auto cfg =
            dir.write("prefsync.yaml", "api: { base_url: https://pm.example.com/Profiles/v2, client_id: \"9\", " + key +
                                           ": " + secret +
                                           " }\njournal: { path: state/journal.db }\n"
                                           "jobs:\n  crm:\n    source: { type: csv, path: in.csv }\n"
                                           "    identity: { alternate_id_type: CRMID, column: id }\n"
                                           "    mapping: { CustomerName.FirstName: first }\n");
        for (std::string args : {"check-config", "check-config --token", "sync crm", "dry-run crm"}) {
            auto r = run("CREDENTIALS_DIRECTORY=" + quote(dir.path()) + " " + quote(kBin) + " -c " + quote(cfg) + " " +
                         args);
            std::string what = key + " / " + args;
            EXPECT_EQ(r.exit_code, 1) << what << "\n" << r.err;
            EXPECT_THAT(r.err, HasSubstr("api." + key + ": the value is not ")) << what;
            EXPECT_THAT(r.err, HasSubstr("(did you paste the token itself? it is not shown)")) << what;
            expect_never_shown(r.out + r.err, secret, what);
        }
    }
}

TEST(CliSecrets, APastedDatabasePasswordIsNeverEchoed) {
    testing::TempDir dir;
    auto cfg =
        dir.write("prefsync.yaml",
                  "api: { base_url: https://pm.example.com/Profiles/v2, client_id: \"9\", token_env: T }\n"
                  "jobs:\n  pg:\n    source: { type: postgres, conninfo: \"dbname=crm\", table: t, password_env: " +
                      kHex +
                      " }\n    identity: { alternate_id_type: CRMID, column: id }\n"
                      "    mapping: { CustomerType: t }\n");
    for (std::string args : {"check-config", "dry-run pg"}) {
        auto r = run("T=x " + quote(kBin) + " -c " + quote(cfg) + " " + args);
        EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
        EXPECT_THAT(r.err, HasSubstr("jobs.pg.source.password_env: the value is not an environment variable name (did "
                                     "you paste the password itself? it is not shown)"));
        expect_never_shown(r.out + r.err, kHex, args);
    }
}

TEST(CliSecrets, ATokenFileOthersCanReadIsWarnedAboutByEveryCommandAndStillUsed) {
    Scratch s("id,first\n1,Ann\n", "      CustomerName.FirstName: first\n");
    auto token = s.dir.write("token", "file-secret-value\n");
    std::filesystem::permissions(token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                            std::filesystem::perms::group_read | std::filesystem::perms::others_read);
    auto yaml = testing::read_file(s.config);
    yaml.replace(yaml.find("token_env: T"), std::string("token_env: T").size(), "token_file: token");
    s.dir.write("prefsync.yaml", yaml);
    auto warning = "warning: api.token_file: the token file " + token +
                   " has mode 0644: its group or other users can read it; run chmod 600 " + token;
    auto check = run(s.cmd("check-config --token"));
    EXPECT_EQ(check.exit_code, 0) << check.err;
    EXPECT_THAT(check.err, HasSubstr(warning));
    auto dry = run(s.cmd("dry-run crm"));
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_THAT(dry.err, HasSubstr(warning));
    EXPECT_THAT(check.out + check.err + dry.out + dry.err, Not(HasSubstr("file-secret-value")));

    std::filesystem::permissions(token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    check = run(s.cmd("check-config --token"));
    EXPECT_EQ(check.exit_code, 0) << check.err;
    EXPECT_THAT(check.err, Not(HasSubstr("warning")));
}

TEST(CliSecrets, RejectFileIsPrivateUnderUmask022AndASymlinkThereIsRefused) {
    Scratch s("id,first\n1,Ann\n2,Bob,extra\n", "      CustomerName.FirstName: first\n");
    auto rejects = s.dir.file("state/rejects/crm.rejects.txt");
    auto r = run("umask 022; " + s.cmd("dry-run crm"));
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::filesystem::status(rejects).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

    std::filesystem::remove(rejects);
    auto target = s.dir.write("target.txt", "untouched\n");
    std::filesystem::create_symlink(target, rejects);
    r = run("umask 022; " + s.cmd("dry-run crm"));
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_THAT(r.err, HasSubstr("the reject file " + rejects + " is a symbolic link: refusing to write rows"));
    EXPECT_EQ(testing::read_file(target), "untouched\n");
}

TEST(CliSecrets, PlainHttpToARemoteHostIsAConfigErrorNamingTheKey) {
    testing::TempDir dir;
    auto cfg = dir.write("prefsync.yaml",
                         "api:\n  base_url: https://pm.example.com/Profiles/v2\n  client_id: \"9\"\n  token_env: T\n"
                         "  oauth: { token_url: \"http://auth.example.com/token\" }\n");
    auto r = run("T=x " + quote(kBin) + " -c " + quote(cfg) + " check-config");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, HasSubstr(cfg + ":5:23: api.oauth.token_url: plain http:// is allowed only to a loopback host"));
}

}  // namespace
}  // namespace prefsync
