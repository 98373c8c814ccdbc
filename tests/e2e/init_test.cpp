// End to end: a new user goes from a data file to a first sync with `prefsync init`,
// `check-config`, `dry-run` and `sync`, and writes no YAML by hand. The real binary, run in
// the user's directory; the emulator in process, inspected directly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <sstream>

#include "tests/support/in_process_emulator.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::quote;
namespace json = boost::json;

const std::string kBin = PREFSYNC_BINARY;

// Runs prefsync in `dir`, as a user would in the directory holding their export.
testing::RunResult prefsync_in(const testing::TempDir& dir, const std::string& args, const std::string& env = "") {
    return testing::run("cd " + quote(dir.path()) + " && " + env + (env.empty() ? "" : " ") + quote(kBin) + " " + args);
}

std::vector<json::object> dry_run_lines(const std::string& out, json::object& summary) {
    std::vector<json::object> rows;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
        auto v = json::parse(line).as_object();
        if (v.contains("summary"))
            summary = v.at("summary").as_object();
        else
            rows.push_back(std::move(v));
    }
    return rows;
}

// One row of the export, as the test knows it.
struct Person {
    std::string id, first, last, email, email2, mobile, work_phone, street, city, state, zip, country, language, tags,
        newsletter, sms, consent, signup, tier, notes, yes, size;
};

std::string csv_field(const std::string& v) {
    if (v.find_first_of(",\"\n") == std::string::npos) return v;
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

std::vector<Person> people(int n) {
    const char* firsts[] = {"Zoë", "José", "Anne, Marie", "Søren", "Αλέξης", "伟", "Ольга", "O'Neil"};
    const char* lasts[] = {"Müller", "García", "O\"Brien", "Ødegård", "Παπαδόπουλος", "李", "Иванова", "Smith"};
    const char* yes_no[][2] = {{"Y", "N"}, {"yes", "no"}, {"TRUE", "false"}, {"1", "0"}};
    const char* countries[] = {"de", "ES", "ie", "DK", "GR", "CN", "UA", "US"};
    std::vector<Person> out;
    for (int i = 1; i <= n; ++i) {
        Person p;
        auto k = static_cast<std::size_t>(i % 8);
        auto flag = yes_no[i % 4];
        p.id = "K-" + std::to_string(1000 + i);
        p.first = firsts[k];
        p.last = lasts[k];
        p.email = "User" + std::to_string(i) + "@Example.COM";
        p.email2 = i % 3 == 0 ? "" : "alt" + std::to_string(i) + "@example.org";
        p.mobile = i % 5 == 0 ? "" : "+1 (555) 01" + std::to_string(10 + i % 90) + "-" + std::to_string(1000 + i);
        p.work_phone = i % 2 == 0 ? "" : "555." + std::to_string(200 + i % 700) + "." + std::to_string(3000 + i);
        p.street = std::to_string(i) + " Hauptstraße";
        p.city = i % 2 ? "Berlin" : "Zürich";
        p.state = i % 2 ? "BE" : "ZH";
        p.zip = std::to_string(10000 + i);
        p.country = countries[k];
        p.language = i % 2 ? "de-DE" : "fr-CH";
        p.tags = i % 4 == 0 ? "" : i % 4 == 1 ? "vip;gold" : "new";
        p.newsletter = flag[i % 2];
        p.sms = i % 5 == 0 ? "" : flag[(i + 1) % 2];
        p.consent = i % 7 == 0 ? "" : flag[i % 3 == 0];
        p.signup =
            "0" + std::to_string(1 + i % 9) + "/" + std::to_string(10 + i % 18) + "/20" + std::to_string(10 + i % 15);
        p.tier = i % 2 ? "Gold" : "Silver: plus";
        p.notes = i % 3 ? "" : "called # twice";
        p.yes = i % 2 ? "on" : "off";
        p.size = i % 2 ? "M" : "XL";
        out.push_back(p);
    }
    return out;
}

// A CSV as exported by hand: a byte order mark, headers with spaces, punctuation, mixed case,
// accents, names that look alike ("Email", "E-mail 2") and names YAML would misread.
std::string export_csv(const std::vector<Person>& rows) {
    std::string csv =
        "\xEF\xBB\xBF"
        "Customer ID,Prénom,LAST_NAME,Email,E-mail 2,Mobile Phone #,Téléphone (travail),Straße,city,"
        "State/Province,ZIP Code,Country,Preferred Language,Tags,Newsletter Opt-In,SMS opt-in,Email Consent,"
        "Signup Date,\"Loyalty: Tier\",#notes,yes,Größe\r\n";
    for (const auto& p : rows) {
        for (const auto* v :
             {&p.id,      &p.first,  &p.last, &p.email,   &p.email2,   &p.mobile, &p.work_phone, &p.street,
              &p.city,    &p.state,  &p.zip,  &p.country, &p.language, &p.tags,   &p.newsletter, &p.sms,
              &p.consent, &p.signup, &p.tier, &p.notes,   &p.yes,      &p.size})
            csv += csv_field(*v) + (v == &p.size ? "\r\n" : ",");
    }
    return csv;
}

std::string digits(const std::string& s) {
    std::string out;
    for (char c : s)
        if (c >= '0' && c <= '9') out += c;
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return s;
}

bool yes(const std::string& flag) {
    return flag == "Y" || flag == "yes" || flag == "TRUE" || flag == "1";
}

// The stored profile without what the server adds.
json::object client_fields(json::object p) {
    for (auto key : {"ProfileId", "UpdateStatus", "Edited", "AlternateIds"}) p.erase(key);
    return p;
}

TEST(Init, FromAnOddCsvToAFirstSyncWithoutWritingYaml) {
    testing::TempDir dir;
    auto rows = people(40);
    dir.write("Customer Export.csv", export_csv(rows));

    auto init = prefsync_in(dir, "init --csv 'Customer Export.csv'");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    EXPECT_EQ(init.out, "") << "the YAML goes to the file, the report to stderr";
    EXPECT_THAT(init.err, HasSubstr("wrote prefsync.yaml: job Customer-Export from csv Customer Export.csv "
                                    "(22 columns, 40 rows sampled)"));
    EXPECT_THAT(init.err, HasSubstr("identity CUSTOMERID <- \"Customer ID\""));
    EXPECT_THAT(init.err, HasSubstr("CustomerName.FirstName <- \"Prénom\""));
    EXPECT_THAT(init.err, HasSubstr("Emails[1] Other <- \"E-mail 2\""));
    EXPECT_THAT(init.err, HasSubstr("PhoneNumbers[1] Work <- \"Téléphone (travail)\""));
    EXPECT_THAT(init.err, HasSubstr("(commented out) CustomFields.LoyaltyTier <- \"Loyalty: Tier\""));
    auto yaml = testing::read_file(dir.file("prefsync.yaml"));
    EXPECT_THAT(yaml, HasSubstr("  token_env: PREFSYNC_TOKEN\n"));
    EXPECT_THAT(yaml, HasSubstr("      path: \"Customer Export.csv\"\n")) << "relative to the config file";

    auto check = prefsync_in(dir, "-c prefsync.yaml check-config", "env -u PREFSYNC_TOKEN");
    ASSERT_EQ(check.exit_code, 0) << check.err << yaml;
    EXPECT_THAT(check.out, HasSubstr("prefsync.yaml: OK"));
    EXPECT_THAT(check.err, Not(HasSubstr("error")));

    auto dry = prefsync_in(dir, "-c prefsync.yaml dry-run Customer-Export");
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    json::object summary;
    auto bodies = dry_run_lines(dry.out, summary);
    EXPECT_EQ(summary.at("read").as_int64(), 40);
    EXPECT_EQ(summary.at("mapped").as_int64(), 40);
    EXPECT_EQ(summary.at("rejected").as_int64(), 0) << dry.err;

    // Now against an API: the same command with --base-url, which must not clobber the file
    // unasked.
    testing::InProcessEmulator emu;
    auto again = prefsync_in(dir, "init --csv 'Customer Export.csv' --base-url " + emu.base_url());
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_THAT(again.err, HasSubstr("prefsync.yaml exists; not overwriting it without --force"));
    EXPECT_EQ(testing::read_file(dir.file("prefsync.yaml")), yaml);
    again = prefsync_in(dir, "init --csv 'Customer Export.csv' --force --base-url " + emu.base_url());
    ASSERT_EQ(again.exit_code, 0) << again.err;

    auto sync = prefsync_in(dir, "-c prefsync.yaml sync Customer-Export", "PREFSYNC_TOKEN=emulator-token");
    ASSERT_EQ(sync.exit_code, 0) << sync.err << sync.out;
    EXPECT_THAT(sync.out + sync.err, Not(HasSubstr("emulator-token")));

    std::map<std::string, json::object> stored;
    for (auto& p : emu.store.dump()) {
        auto ids = p.at("AlternateIds").as_array();
        ASSERT_EQ(ids.size(), 1u);
        EXPECT_EQ(ids[0].at("AlternateIdType"), "CUSTOMERID");
        stored[std::string(ids[0].at("AlternateId").as_string())] = p.as_object();
    }
    ASSERT_EQ(stored.size(), rows.size()) << "one profile per row";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& r = rows[i];
        SCOPED_TRACE(r.id);
        ASSERT_TRUE(stored.contains(r.id));
        const auto& p = stored[r.id];
        EXPECT_EQ(client_fields(p), bodies[i].at("body").as_object()) << "stored as dry-run showed it";

        EXPECT_EQ(p.at("CustomerName").at("FirstName"), r.first.c_str());
        EXPECT_EQ(p.at("CustomerName").at("LastName"), r.last.c_str());
        EXPECT_EQ(p.at("DefaultLocale"), r.language.c_str());
        auto emails = p.at("Emails").as_array();
        ASSERT_EQ(emails.size(), r.email2.empty() ? 1u : 2u);
        EXPECT_EQ(emails[0].at("EmailAddress"), lower(r.email).c_str());
        EXPECT_EQ(emails[0].at("EmailAddressType"), "Personal");
        EXPECT_EQ(emails[0].at("IsDefault"), true);
        if (!r.consent.empty()) {
            auto consent = emails[0].at("Consents").at(0);
            EXPECT_EQ(consent.at("ConsentType"), "EmailMarketing");
            EXPECT_EQ(consent.at("ConsentStatus"), yes(r.consent) ? 1 : 0);
        } else {
            EXPECT_FALSE(emails[0].as_object().contains("Consents"));
        }
        if (!r.email2.empty()) {
            EXPECT_EQ(emails[1].at("EmailAddress"), r.email2.c_str());
            EXPECT_EQ(emails[1].at("EmailAddressType"), "Other");
        }
        std::map<std::string, json::object> phones;
        if (p.contains("PhoneNumbers"))
            for (auto& ph : p.at("PhoneNumbers").as_array())
                phones[std::string(ph.at("PhoneType").as_string())] = ph.as_object();
        ASSERT_EQ(phones.size(), (r.mobile.empty() ? 0u : 1u) + (r.work_phone.empty() ? 0u : 1u));
        if (!r.mobile.empty()) {
            EXPECT_EQ(phones["Mobile"].at("PhoneNumber"), digits(r.mobile).c_str());
            EXPECT_EQ(phones["Mobile"].at("IsMobile"), true);
            auto pref = phones["Mobile"].at("PhonePreferences").at(0);
            EXPECT_EQ(pref.at("ChannelId"), "SMS");
            EXPECT_EQ(pref.at("PreferenceStatus"), yes(r.sms) ? "OptIn" : "OptOut");
        }
        if (!r.work_phone.empty()) {
            EXPECT_EQ(phones["Work"].at("PhoneNumber"), digits(r.work_phone).c_str());
        }
        auto address = p.at("Addresses").at(0);
        EXPECT_EQ(address.at("Address1"), r.street.c_str());
        EXPECT_EQ(address.at("City"), r.city.c_str());
        EXPECT_EQ(address.at("StateProvince"), r.state.c_str());
        EXPECT_EQ(address.at("PostalCode"), r.zip.c_str());
        std::string country = r.country;
        for (auto& c : country) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        EXPECT_EQ(address.at("CountryCode_Alpha2"), country.c_str());
        EXPECT_EQ(address.at("AddressType"), "Home");
        if (r.tags.empty()) {
            EXPECT_FALSE(p.contains("ProfileTags"));
        } else {
            EXPECT_EQ(p.at("ProfileTags").at(0).at("Name"), r.tags.substr(0, r.tags.find(';')).c_str());
        }
        auto newsletter = p.at("ProfilePreferences").at(0);
        EXPECT_EQ(newsletter.at("ProgramId"), "NEWSLETTER");
        EXPECT_EQ(newsletter.at("ChannelId"), "EMAIL");
        EXPECT_EQ(newsletter.at("PreferenceStatus"), yes(r.newsletter) ? "OptIn" : "OptOut");
        EXPECT_FALSE(p.contains("CustomFields")) << "unrecognised columns stay commented out";
    }
}

TEST(Init, StdoutTheDashCFileAndOptionsThatWouldBreakTheFile) {
    testing::TempDir dir;
    dir.write("in.csv", "id;name;email\n1;Ann;ann@example.com\n");
    auto out = prefsync_in(dir, "init --csv in.csv -o - --job crm --client-id 777 --token-env MY_TOKEN");
    ASSERT_EQ(out.exit_code, 0) << out.err;
    EXPECT_THAT(out.out, HasSubstr("  client_id: \"777\""));
    EXPECT_THAT(out.out, HasSubstr("  token_env: MY_TOKEN\n"));
    EXPECT_THAT(out.out, HasSubstr("      delimiter: \";\"\n")) << "sniffed from the header line";
    EXPECT_THAT(out.err, HasSubstr("printed the config: job crm"));
    EXPECT_FALSE(std::filesystem::exists(dir.file("prefsync.yaml")));

    auto with_c = prefsync_in(dir, "-c mine.yaml init --csv in.csv");
    ASSERT_EQ(with_c.exit_code, 0) << with_c.err;
    EXPECT_TRUE(std::filesystem::exists(dir.file("mine.yaml"))) << "-c names the file init writes";
    EXPECT_EQ(prefsync_in(dir, "-c mine.yaml check-config").exit_code, 0);

    EXPECT_EQ(prefsync_in(dir, "init").exit_code, 1);
    EXPECT_THAT(prefsync_in(dir, "init --sqlite x.db").err, HasSubstr("--table is required"));
    EXPECT_EQ(prefsync_in(dir, "init --csv in.csv --sqlite x.db --table t").exit_code, 1);
    EXPECT_THAT(prefsync_in(dir, "init --csv in.csv -o - --job 'a b'").err, HasSubstr("job names use letters"));
    EXPECT_THAT(prefsync_in(dir, "init --csv in.csv -o - --token-env 'A-B'").err,
                HasSubstr("is not an environment variable name"));
    EXPECT_THAT(prefsync_in(dir, "init --csv in.csv -o - --id-column nope").err,
                HasSubstr("--id-column: csv in.csv has no column \"nope\""));
    auto secret = prefsync_in(dir, "init --postgres 'host=db password=hunter2' --table t -o -");
    EXPECT_EQ(secret.exit_code, 1);
    EXPECT_THAT(secret.err, HasSubstr("--password-env"));
    EXPECT_THAT(secret.out + secret.err, Not(HasSubstr("hunter2")));
    dir.write("ragged.csv", "id,name\n1,Ann\n2,Bo,extra\n3,Cy\n");
    auto ragged = prefsync_in(dir, "init --csv ragged.csv -o -");
    EXPECT_EQ(ragged.exit_code, 0) << ragged.err;
    EXPECT_THAT(ragged.err, HasSubstr("(2 columns, 2 rows sampled)"));
    EXPECT_THAT(ragged.err, HasSubstr("warning: Sampled rows cannot be read and were not looked at; sync and dry-run "
                                      "will reject them. unreadable=1 first=\"ragged.csv:3: wrong number of fields: "
                                      "expected 2, got 3\""));
    auto missing = prefsync_in(dir, "init --csv nope.csv -o -");
    EXPECT_EQ(missing.exit_code, 3);
    EXPECT_THAT(missing.err, HasSubstr("cannot open nope.csv"));
}

// The columns a table gives, typed by SQLite: integers, dates, NULLs.
TEST(Init, SqliteTableToCheckConfigAndDryRun) {
    testing::TempDir dir;
    auto db = dir.file("crm.db");
    auto made = testing::run(
        "sqlite3 " + quote(db) +
        " \"CREATE TABLE customers(id INTEGER PRIMARY KEY, \\\"Customer Number\\\" TEXT, \\\"First Name\\\" TEXT, "
        "surname TEXT, email TEXT, mobile TEXT, opted_in INTEGER, signup_date TEXT, tier TEXT);"
        "INSERT INTO customers VALUES (1, 'C1', 'Ann', 'Lee', 'ann@example.com', '5550100001', 1, '2024-01-31', "
        "'Gold'),"
        "(2, 'C2', 'Bo', NULL, 'bo@example.com', NULL, 0, '2023-12-01', NULL),"
        "(3, 'C3', 'Cy', 'Ng', NULL, '+1 555 010 0003', NULL, NULL, 'Silver');\"");
    ASSERT_EQ(made.exit_code, 0) << made.err;

    auto init = prefsync_in(dir, "init --sqlite crm.db --table customers --custom-fields");
    ASSERT_EQ(init.exit_code, 0) << init.err;
    EXPECT_THAT(init.err, HasSubstr("wrote prefsync.yaml: job customers from sqlite crm.db table customers"));
    EXPECT_THAT(init.err, HasSubstr("identity CUSTOMERID <- \"Customer Number\""));
    EXPECT_THAT(init.err, HasSubstr("ProfilePreferences MARKETING <- \"opted_in\""));
    auto check = prefsync_in(dir, "-c prefsync.yaml check-config");
    ASSERT_EQ(check.exit_code, 0) << check.err;
    auto dry = prefsync_in(dir, "-c prefsync.yaml dry-run customers");
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    json::object summary;
    auto rows = dry_run_lines(dry.out, summary);
    EXPECT_EQ(summary.at("rejected").as_int64(), 0);
    ASSERT_EQ(rows.size(), 3u);
    auto ann = rows[0].at("body").as_object();
    EXPECT_EQ(rows[0].at("identity").at("alternate_id"), "C1");
    EXPECT_EQ(ann.at("CustomerName"), json::parse(R"({"FirstName":"Ann","LastName":"Lee"})"));
    EXPECT_EQ(ann.at("Emails").at(0).at("EmailAddress"), "ann@example.com");
    EXPECT_EQ(ann.at("PhoneNumbers").at(0).at("PhoneNumber"), "5550100001");
    EXPECT_EQ(ann.at("ProfilePreferences").at(0).at("PreferenceStatus"), "OptIn");
    EXPECT_EQ(ann.at("CustomFields"),
              json::parse(R"([{"Name":"Id","Value":"1"},{"Name":"SignupDate","Value":"2024-01-31"},)"
                          R"({"Name":"Tier","Value":"Gold"}])"));
    EXPECT_EQ(rows[1].at("body").at("ProfilePreferences").at(0).at("PreferenceStatus"), "OptOut");
}

TEST(Init, PostgresTableToCheckConfigAndDryRun) {
    PREFSYNC_REQUIRE_POSTGRES();
    testing::TestDatabase db;
    db.admin().exec(
        "CREATE SCHEMA crm;"
        "CREATE TABLE crm.customers(crm_id text PRIMARY KEY, \"First Name\" text, last_name text, "
        "\"E-Mail\" text, \"SMS opt-in\" boolean, updated_at timestamptz, country char(2));"
        "INSERT INTO crm.customers VALUES ('X1', 'Ann', 'Lee', 'ann@example.com', true, "
        "'2024-01-01 10:00:00+00', 'us'), ('X2', 'Bo', NULL, NULL, false, NULL, NULL);");
    testing::TempDir dir;
    auto env = "PREFSYNC_TEST_PG_PASSWORD=" + quote(testing::TestDatabase::password());
    auto init = prefsync_in(dir,
                            "init --postgres " + quote(db.conninfo()) +
                                " --table crm.customers --password-env PREFSYNC_TEST_PG_PASSWORD --custom-fields",
                            env);
    ASSERT_EQ(init.exit_code, 0) << init.err;
    EXPECT_THAT(init.err, HasSubstr("identity CRMID <- \"crm_id\""));
    auto yaml = testing::read_file(dir.file("prefsync.yaml"));
    EXPECT_THAT(yaml, HasSubstr("      password_env: PREFSYNC_TEST_PG_PASSWORD\n"));
    if (auto password = testing::TestDatabase::password(); !password.empty()) {
        EXPECT_THAT(yaml, Not(HasSubstr(password)));
    }

    auto check = prefsync_in(dir, "-c prefsync.yaml check-config", env);
    ASSERT_EQ(check.exit_code, 0) << check.err << yaml;
    auto dry = prefsync_in(dir, "-c prefsync.yaml dry-run customers", env);
    ASSERT_EQ(dry.exit_code, 0) << dry.err << yaml;
    json::object summary;
    auto rows = dry_run_lines(dry.out, summary);
    EXPECT_EQ(summary.at("rejected").as_int64(), 0);
    ASSERT_EQ(rows.size(), 2u);
    std::map<std::string, json::object> by_id;
    for (auto& r : rows) by_id[std::string(r.at("identity").at("alternate_id").as_string())] = r.at("body").as_object();
    auto ann = by_id["X1"];
    EXPECT_EQ(ann.at("CustomerName").at("FirstName"), "Ann");
    EXPECT_EQ(ann.at("Emails").at(0).at("EmailAddress"), "ann@example.com");
    EXPECT_EQ(ann.at("ProfilePreferences").at(0).at("PreferenceStatus"), "OptIn") << "t/f from PostgreSQL";
    EXPECT_EQ(ann.at("Addresses").at(0).at("CountryCode_Alpha2"), "US");
    EXPECT_EQ(ann.at("CustomFields").at(0).at("Name"), "UpdatedAt");
    EXPECT_EQ(ann.at("CustomFields").at(0).at("Value"), "2024-01-01T10:00:00");
    EXPECT_EQ(by_id["X2"].at("ProfilePreferences").at(0).at("PreferenceStatus"), "OptOut");
}

}  // namespace
}  // namespace prefsync
