// Where secrets come from, checked at config time: a secret pasted where its location belongs
// is refused without being quoted, a secret file others can read is warned about, and plain
// http:// is kept to the loopback emulator.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "config/config.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync::config {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

// Every message a config produces, errors and warnings alike.
struct Outcome {
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    std::string all() const {
        std::string out;
        for (auto& e : errors) out += e + "\n";
        for (auto& w : warnings) out += w + "\n";
        return out;
    }
};

Outcome parse(const std::string& yaml, const std::string& file = "/etc/prefsync/test.yaml",
              const EnvLookup& env = env_of({})) {
    Outcome o;
    try {
        o.warnings = parse_config(yaml, file, env).warnings;
    } catch (const ConfigError& e) {
        for (auto& d : e.diagnostics()) o.errors.push_back(d.to_string());
    }
    return o;
}

std::string api(const std::string& token_line) {
    return "api:\n  base_url: https://pm.example.com/Profiles/v2\n  client_id: \"1\"\n  " + token_line + "\n";
}

const std::vector<std::string> kPastedTokens = {
    // A JWT, as OAuth servers issue them.
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    // 40 hex digits starting with a letter: a valid environment variable name by its syntax.
    "da39a3ee5e6b4b0d3255bfef95601890afd80709",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    "3f2a1b4c-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
    "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==",
};

TEST(SecretLocation, ATokenPastedIntoTokenEnvIsRefusedAndNeverQuoted) {
    for (const auto& token : kPastedTokens) {
        auto o = parse(api("token_env: \"" + token + "\""));
        EXPECT_THAT(o.errors,
                    ElementsAre("/etc/prefsync/test.yaml:4:14: api.token_env: the value is not an "
                                "environment variable name (did you paste the token itself? it is not shown)"))
            << token;
        EXPECT_THAT(o.all(), Not(HasSubstr(token.substr(0, 8))));
    }
}

TEST(SecretLocation, ATokenPastedIntoCredentialOrTokenFileIsRefusedAndNeverQuoted) {
    testing::TempDir dir;
    auto file = dir.file("prefsync.yaml");
    for (const auto& token : kPastedTokens) {
        auto cred = parse(api("credential: \"" + token + "\""), file);
        EXPECT_THAT(cred.errors, ElementsAre(HasSubstr("api.credential: the value is not a credential name (did you "
                                                       "paste the token itself? it is not shown)")))
            << token;
        auto path = parse(api("token_file: \"" + token + "\""), file);
        EXPECT_THAT(path.errors, ElementsAre(HasSubstr("api.token_file: the value is not the path of an existing "
                                                       "file (did you paste the token itself? it is not shown)")))
            << token;
        EXPECT_THAT(cred.all() + path.all(), Not(HasSubstr(token.substr(0, 8))));
    }
}

// ${VAR} expands before the check, so a reference to the token's own variable is caught too.
TEST(SecretLocation, TheTokenItselfThroughInterpolationIsRefusedToo) {
    auto o = parse(api("token_env: ${PREFSYNC_TOKEN}"), "/etc/prefsync/test.yaml",
                   env_of({{"PREFSYNC_TOKEN", kPastedTokens[1]}}));
    EXPECT_THAT(o.errors, ElementsAre(HasSubstr("api.token_env: the value is not an environment variable name")));
    EXPECT_THAT(o.all(), Not(HasSubstr(kPastedTokens[1].substr(0, 8))));
}

TEST(SecretLocation, DatabasePasswordsGetTheSameCheck) {
    const std::string secret = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    for (std::string key : {"password_env", "password_file", "password_credential"}) {
        auto o = parse(api("token_env: T") +
                       "jobs:\n  pg:\n    source: { type: postgres, conninfo: \"dbname=crm\", "
                       "table: t, " +
                       key + ": " + secret +
                       " }\n    identity: { alternate_id_type: CRMID, column: id }\n"
                       "    mapping: { CustomerType: t }\n");
        EXPECT_THAT(o.errors, Contains(AllOf(HasSubstr("jobs.pg.source." + key + ": the value is not"),
                                             HasSubstr("(did you paste the password itself? it is not shown)"))))
            << key;
        EXPECT_THAT(o.all(), Not(HasSubstr(secret.substr(0, 8)))) << key;
    }
}

TEST(SecretLocation, NamesAndPathsPeopleWriteAreAccepted) {
    for (std::string line : {"token_env: PREFSYNC_TOKEN", "token_env: T", "token_env: MYPREF_TOKEN_2024",
                             "credential: mypreferences-token", "credential: prefsync.token",
                             "token_file: secrets/token", "token_file: /run/secrets/mypreferences_token"}) {
        auto o = parse(api(line));
        EXPECT_THAT(o.errors, IsEmpty()) << line;
    }
    EXPECT_THAT(parse(api("token_env: \"\"")).errors, ElementsAre(HasSubstr("api.token_env: must not be empty")));
    EXPECT_THAT(parse(api("token_env: \"$PREFSYNC_TOKEN\"")).errors,
                ElementsAre(HasSubstr("api.token_env: the value is not an environment variable name")));
    EXPECT_THAT(parse(api("credential: a/b")).errors,
                ElementsAre(HasSubstr("api.credential: the value is not a credential name")));
}

// A file that exists is a file, whatever its name looks like.
TEST(SecretLocation, AnExistingFileWithARandomLookingNameIsAccepted) {
    testing::TempDir dir;
    auto name = kPastedTokens[1];
    dir.write(name, "tok\n");
    fs::permissions(dir.file(name), fs::perms::owner_read | fs::perms::owner_write);
    auto o = parse(api("token_file: " + name), dir.file("prefsync.yaml"));
    EXPECT_THAT(o.errors, IsEmpty());
    EXPECT_THAT(o.warnings, IsEmpty());
}

TEST(SecretLocation, LooksLikeSecret) {
    for (const auto& token : kPastedTokens) EXPECT_TRUE(looks_like_secret(token)) << token;
    for (std::string name : {"PREFSYNC_TOKEN", "CRM_DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "PREFSYNC_TOKEN_20240101",
                             "mypreferences-token", "MyPreferencesApiToken", "/etc/prefsync/token",
                             "/var/lib/prefsync/v2/s3/token-2024-q1.txt", "/tmp/prefsync-test-38475629183746283/token",
                             "/run/credentials/prefsync-sync@crm-nightly.service/mypreferences-token", "s3cret"})
        EXPECT_FALSE(looks_like_secret(name)) << name;
}

// Specs built outside the config (or before this check existed) are not quoted either.
TEST(SecretLocation, ReadingNeverQuotesAValueThatLooksLikeASecret) {
    const std::string secret = kPastedTokens[0];
    for (auto kind : {TokenSpec::Kind::Env, TokenSpec::Kind::File, TokenSpec::Kind::Credential}) {
        TokenSpec spec{kind,
                       kind == TokenSpec::Kind::File ? "/etc/prefsync/" + secret : secret,
                       {"c.yaml", 3, 5},
                       "api.token_env"};
        try {
            read_secret(spec, {}, "api", "API token", env_of({{"CREDENTIALS_DIRECTORY", "/nonexistent"}}));
            ADD_FAILURE() << "read";
        } catch (const ConfigError& e) {
            EXPECT_THAT(e.what(), Not(HasSubstr(secret.substr(0, 8))));
            EXPECT_THAT(e.what(), HasSubstr("api.token_env"));
        }
    }
}

TEST(SecretFile, ReadableByOthersIsWarnedAboutButStillRead) {
    testing::TempDir dir;
    auto token = dir.write("token", "tok\n");
    auto config = dir.file("prefsync.yaml");
    fs::permissions(token,
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    auto c = parse_config(api("token_file: token"), config, env_of({}));
    EXPECT_THAT(c.warnings,
                ElementsAre("api.token_file: the token file " + token +
                            " has mode 0644: its group or other users can read it; run chmod 600 " + token));
    EXPECT_EQ(resolve_token(c, env_of({})), "tok");

    fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_write);
    EXPECT_THAT(parse_config(api("token_file: token"), config, env_of({})).warnings,
                ElementsAre(HasSubstr("has mode 0620: its group or other users can change it")));

    fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_THAT(parse_config(api("token_file: token"), config, env_of({})).warnings, IsEmpty());

    auto pw = dir.write("pw", "secret\n");
    fs::permissions(pw, fs::perms::owner_read | fs::perms::group_read);
    auto pg = parse_config(api("token_env: T") +
                               "jobs:\n  pg:\n    source: { type: postgres, conninfo: \"dbname=crm\", "
                               "table: t, password_file: pw }\n    identity: { alternate_id_type: CRMID, column: id }\n"
                               "    mapping: { CustomerType: t }\n",
                           config, env_of({}));
    EXPECT_THAT(pg.warnings, ElementsAre("jobs.pg.source.password_file: the password file " + pw +
                                         " has mode 0440: its group or other users can read it; run chmod 600 " + pw));
}

// systemd makes credentials private to the unit; whatever their mode, nothing to warn about.
TEST(SecretFile, SystemdCredentialsAreExempt) {
    testing::TempDir dir;
    auto token = dir.write("mypreferences-token", "tok\n");
    fs::permissions(token, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    auto env = env_of({{"CREDENTIALS_DIRECTORY", dir.path()}});
    auto c = parse_config(api("credential: mypreferences-token"), dir.file("prefsync.yaml"), env);
    EXPECT_THAT(c.warnings, IsEmpty());
    EXPECT_EQ(resolve_token(c, env), "tok");
}

TEST(SecretFile, OwnedBySomeoneElseIsWarnedAbout) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
    testing::TempDir dir;
    auto token = dir.write("token", "tok\n");
    fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
    ASSERT_EQ(::chown(token.c_str(), 65534, 65534), 0);
    auto c = parse_config(api("token_file: token"), dir.file("prefsync.yaml"), env_of({}));
    EXPECT_THAT(c.warnings,
                ElementsAre(AllOf(HasSubstr("api.token_file: the token file " + token + " is owned by "),
                                  HasSubstr("uid 65534"), HasSubstr("not by root (uid 0), who runs prefsync"),
                                  HasSubstr("chown it"))));
}

TEST(PlainHttp, OAuthTokenUrlOverHttpOnlyToLoopback) {
    auto with_token_url = [](const std::string& url) {
        return parse(api("token_env: T") + "  oauth: { token_url: \"" + url + "\" }\n");
    };
    for (std::string url : {"http://auth.example.com/oauth/token", "http://127.0.0.1.example.com/token",
                            "http://127.0.0.1@auth.example.com/token", "http://localhost.example.com/token",
                            "http://10.0.0.1/token", "http://[::2]/token"})
        EXPECT_THAT(
            with_token_url(url).errors,
            ElementsAre(AllOf(HasSubstr("api.oauth.token_url: plain http:// is allowed only to a loopback host"),
                              HasSubstr("client secret would travel unencrypted"))))
            << url;
    for (std::string url : {"https://auth.example.com/oauth/token", "http://127.0.0.1:8080/token", "http://127.9.8.7/t",
                            "http://[::1]:9000/token", "http://localhost/token", "http://LOCALHOST:1/token"})
        EXPECT_THAT(with_token_url(url).errors, IsEmpty()) << url;
}

TEST(PlainHttp, BaseUrlOverHttpToARemoteHostNeedsHttpInsecureAndIsThenWarned) {
    const std::string remote = "api: { base_url: http://api.example.com/v2, client_id: a, token_env: T }\n";
    EXPECT_THAT(
        parse(remote).errors,
        ElementsAre(AllOf(HasSubstr("test.yaml:1:18: api.base_url: plain http:// is allowed only to a loopback host"),
                          HasSubstr("http.insecure: true"))));
    auto insecure = parse(remote + "http: { insecure: true }\n");
    EXPECT_THAT(insecure.errors, IsEmpty());
    EXPECT_THAT(insecure.warnings, Contains(HasSubstr("the API token travels UNENCRYPTED in every request")));
    EXPECT_THAT(parse("api: { base_url: http://127.0.0.1.example.com/v2, client_id: a, token_env: T }\n").errors,
                ElementsAre(HasSubstr("api.base_url: plain http://")));
    for (std::string local : {"http://127.0.0.1:8080/Profiles/v2", "http://[::1]/v2", "http://localhost:1/v2"}) {
        auto o = parse("api: { base_url: \"" + local + "\", client_id: a, token_env: T }\n");
        EXPECT_THAT(o.errors, IsEmpty()) << local;
        EXPECT_THAT(o.warnings, IsEmpty()) << local;
    }
}

}  // namespace
}  // namespace prefsync::config
