// `prefsync init`'s guessing: names → Profile fields, sampled values → kinds and date formats,
// YAML quoting, and whole starter configs read back by the real config parser and mapper.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json.hpp>
#include <sstream>

#include "config/config.hpp"
#include "daemon/init/column_guess.hpp"
#include "daemon/init/starter_config.hpp"
#include "daemon/init/yaml_scalar.hpp"
#include "daemon/mapping/mapper.hpp"

namespace prefsync::init {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace json = boost::json;

using Cells = std::vector<std::optional<std::string>>;
using Rows = std::vector<Cells>;

Cells cells(std::initializer_list<const char*> values) {
    Cells out;
    for (auto* v : values) out.push_back(v ? std::optional<std::string>(v) : std::nullopt);
    return out;
}

// ---- names ---------------------------------------------------------------------------------

TEST(InitNames, MatchKeyIgnoresCaseSeparatorsAndLatinAccents) {
    const std::pair<const char*, const char*> cases[] = {
        {"First Name", "firstname"},
        {"first_name", "firstname"},
        {"FIRSTNAME", "firstname"},
        {"E-Mail", "email"},
        {"Mobile Phone #", "mobilephone"},
        {"Prénom", "prenom"},
        {"Straße", "strasse"},
        {"ÉMAIL", "email"},
        {"電話", "電話"},  // other scripts are kept, not dropped
    };
    for (auto [name, key] : cases) EXPECT_EQ(match_key(name), key) << name;
}

TEST(InitNames, WordsSplitAtSeparatorsAndCamelCase) {
    EXPECT_EQ(name_words("NewsletterOptIn"), (std::vector<std::string>{"Newsletter", "Opt", "In"}));
    EXPECT_EQ(name_words("SMSOptIn"), (std::vector<std::string>{"SMS", "Opt", "In"}));
    EXPECT_EQ(name_words("Loyalty: Tier"), (std::vector<std::string>{"Loyalty", "Tier"}));
    EXPECT_EQ(pascal_case("loyalty_tier"), "LoyaltyTier");
    EXPECT_EQ(pascal_case("#notes"), "Notes");
    EXPECT_EQ(pascal_case("Größe"), "Größe");
    EXPECT_EQ(pascal_case("$ %"), "");
}

struct NameCase {
    const char* name;
    Role role;
    const char* type = "";
};

TEST(InitNames, CommonSpellingsOfProfileFields) {
    const NameCase cases[] = {
        {"First Name", Role::FirstName},
        {"FIRSTNAME", Role::FirstName},
        {"fname", Role::FirstName},
        {"Given Name", Role::FirstName},
        {"Prénom", Role::FirstName},
        {"Vorname", Role::FirstName},
        {"customer_first_name", Role::FirstName},
        {"Middle Name", Role::MiddleName},
        {"LAST_NAME", Role::LastName},
        {"Surname", Role::LastName},
        {"Nachname", Role::LastName},
        {"Salutation", Role::Prefix},
        {"Name Prefix", Role::Prefix},
        {"suffix", Role::Suffix},
        {"Customer Type", Role::CustomerType},
        {"locale", Role::Locale},
        {"Preferred Language", Role::Locale},
        {"Tags", Role::Tags},
        {"Interests", Role::Tags},
        {"Email", Role::Email},
        {"E-Mail", Role::Email, ""},
        {"E-mail 2", Role::Email, "Other"},
        {"Email Address", Role::Email},
        {"Work Email", Role::Email, "Work"},
        {"personal_email", Role::Email, "Personal"},
        {"Secondary Email", Role::Email, "Other"},
        {"Mobile Phone #", Role::Phone, "Mobile"},
        {"Cell", Role::Phone, "Mobile"},
        {"Home Phone", Role::Phone, "Home"},
        {"work_phone", Role::Phone, "Work"},
        {"Phone", Role::Phone, ""},
        {"Téléphone", Role::Phone, ""},
        {"Téléphone (travail)", Role::Phone, "Work"},
        {"Phone 2", Role::Phone, "Other"},
        {"Address", Role::Address1},
        {"address_line_1", Role::Address1},
        {"Line1", Role::Address1},
        {"Street Address", Role::Address1},
        {"Straße", Role::Address1},
        {"Address 2", Role::Address2},
        {"Suite", Role::Address2},
        {"City", Role::City},
        {"town", Role::City},
        {"State/Province", Role::StateProvince},
        {"Region", Role::StateProvince},
        {"province", Role::StateProvince},
        {"ZIP Code", Role::PostalCode},
        {"Postal Code", Role::PostalCode},
        {"postcode", Role::PostalCode},
        {"PLZ", Role::PostalCode},
        {"Country", Role::Country},
        {"Country Code", Role::Country},
        {"billing_city", Role::City, "Billing"},
        {"Shipping Zip", Role::PostalCode, "Shipping"},
        {"Mailing Address", Role::Address1, "Mailing"},
    };
    for (const auto& c : cases) {
        auto g = guess_from_name(c.name);
        EXPECT_EQ(g.role, c.role) << c.name << " guessed " << to_string(g.role);
        EXPECT_EQ(g.type, c.type) << c.name;
    }
}

TEST(InitNames, FlagsAboutAnEmailOrPhoneAreFlagsNotAddresses) {
    auto consent = guess_from_name("email_consent");
    EXPECT_EQ(consent.role, Role::Consent);
    EXPECT_EQ(consent.channel, "EMAIL");
    EXPECT_EQ(consent.program, "EmailMarketing");
    auto sms = guess_from_name("SMS opt-in");
    EXPECT_EQ(sms.role, Role::OptIn);
    EXPECT_EQ(sms.channel, "SMS");
    EXPECT_EQ(sms.program, "SMS");
    auto news = guess_from_name("NewsletterOptIn");
    EXPECT_EQ(news.role, Role::OptIn);
    EXPECT_EQ(news.channel, "EMAIL");
    EXPECT_EQ(news.program, "NEWSLETTER");
    auto out = guess_from_name("Unsubscribed");
    EXPECT_EQ(out.role, Role::OptOut);
    EXPECT_EQ(out.program, "MARKETING");
    EXPECT_EQ(guess_from_name("do_not_email").role, Role::OptOut);
    EXPECT_EQ(guess_from_name("do_not_email").channel, "EMAIL");
    auto gdpr = guess_from_name("GDPR consent");
    EXPECT_EQ(gdpr.role, Role::Consent);
    EXPECT_EQ(gdpr.program, "GDPR");
}

TEST(InitNames, IdentityNamesRankedWithAnAlternateIdType) {
    auto crm = guess_from_name("CRM ID");
    EXPECT_EQ(crm.role, Role::Identity);
    EXPECT_EQ(crm.alternate_id_type, "CRMID");
    auto customer = guess_from_name("customer_id");
    EXPECT_EQ(customer.role, Role::Identity);
    EXPECT_EQ(customer.alternate_id_type, "CUSTOMERID");
    EXPECT_LT(crm.identity_rank, customer.identity_rank);
    EXPECT_EQ(guess_from_name("Customer Number").alternate_id_type, "CUSTOMERID");
    EXPECT_EQ(guess_from_name("Kundennummer").alternate_id_type, "KUNDENID");
    auto id = guess_from_name("ID");
    EXPECT_EQ(id.role, Role::Identity);
    EXPECT_EQ(id.alternate_id_type, "ID");
    EXPECT_GT(id.identity_rank, customer.identity_rank);
    auto household = guess_from_name("household_id");
    EXPECT_EQ(household.role, Role::Identity);
    EXPECT_EQ(household.alternate_id_type, "HOUSEHOLDID");
    EXPECT_EQ(guess_from_name("Email ID").role, Role::Email) << "Indian English for the address";
    EXPECT_EQ(guess_from_name("paid").role, Role::None);
}

TEST(InitNames, UnknownNamesGuessNothing) {
    for (auto name : {"Loyalty: Tier", "#notes", "Größe", "yes", "", "#", "fax", "Account Balance"})
        EXPECT_EQ(guess_from_name(name).role, Role::None) << name;
    EXPECT_TRUE(guess_from_name("Title").needs_short_values);
}

// ---- values --------------------------------------------------------------------------------

TEST(InitValues, KindsOfValues) {
    EXPECT_EQ(sniff_values(cells({"a@example.com", " B@x.org ", ""})).kind, ValueKind::Email);
    EXPECT_EQ(sniff_values(cells({"a@example.com", "not an email"})).kind, ValueKind::Text);
    EXPECT_EQ(sniff_values(cells({"5551234567", "+1 (555) 123-4567"})).kind, ValueKind::Phone);
    EXPECT_EQ(sniff_values(cells({"555-0134", "555-0199"})).kind, ValueKind::Phone) << "punctuated, 7 digits";
    EXPECT_EQ(sniff_values(cells({"5550134", "5550199"})).kind, ValueKind::Integer) << "bare 7 digits: a number";
    EXPECT_EQ(sniff_values(cells({"5550134", "5550199"})).min_digits, 7u);
    EXPECT_EQ(sniff_values(cells({"Y", "n", "YES", "0"})).kind, ValueKind::Flag);
    EXPECT_EQ(sniff_values(cells({"Y", "n", "YES", "0"})).flag_spellings,
              (std::vector<std::string>{"y", "n", "yes", "0"}));
    EXPECT_EQ(sniff_values(cells({"true", "maybe"})).kind, ValueKind::Text);
    EXPECT_EQ(sniff_values(cells({"12", "-7"})).kind, ValueKind::Integer);
    EXPECT_EQ(sniff_values(cells({nullptr, "", "  "})).kind, ValueKind::Empty);
}

TEST(InitValues, CountsEmptiesAndRepeats) {
    auto p = sniff_values(cells({"a", nullptr, "", "b", "a"}));
    EXPECT_EQ(p.present, 3u);
    EXPECT_EQ(p.empty, 2u);
    EXPECT_FALSE(p.unique);
    EXPECT_TRUE(sniff_values(cells({"a", "b"})).unique);
    EXPECT_EQ(sniff_values(cells({"vip;gold", "new"})).list_delimiter, ";");
    EXPECT_EQ(sniff_values(cells({"vip, gold"})).list_delimiter, ",");
    EXPECT_EQ(sniff_values(cells({"US", "de"})).letters_only_length, 2u);
    EXPECT_EQ(sniff_values(cells({"USA", "DE"})).letters_only_length, 0u);
}

TEST(InitValues, DateFormats) {
    auto iso = sniff_values(cells({"2021-03-14", "1999-12-31"}));
    EXPECT_EQ(iso.kind, ValueKind::Date);
    EXPECT_EQ(iso.date_in, "%Y-%m-%d");
    auto us = sniff_values(cells({"03/14/2021", "4/1/2020"}));
    EXPECT_EQ(us.date_in, "%m/%d/%Y");
    EXPECT_FALSE(us.day_month_ambiguous) << "14 is no month";
    auto eu = sniff_values(cells({"14/03/2021", "01/04/2020"}));
    EXPECT_EQ(eu.date_in, "%d/%m/%Y");
    auto either = sniff_values(cells({"03/04/2021"}));
    EXPECT_EQ(either.date_in, "%m/%d/%Y");
    EXPECT_TRUE(either.day_month_ambiguous);
    EXPECT_EQ(sniff_values(cells({"14.03.2021"})).date_in, "%d.%m.%Y");
    EXPECT_EQ(sniff_values(cells({"03/14/21"})).date_in, "%m/%d/%y") << "a two-digit year is not %Y";
    auto stamp = sniff_values(cells({"2024-01-01 00:00:01+00", "2024-02-29 23:59:59+00"}));
    EXPECT_EQ(stamp.date_in, "%Y-%m-%d %H:%M:%S+00");
    EXPECT_EQ(stamp.date_out, "%Y-%m-%dT%H:%M:%S");
    EXPECT_NE(sniff_values(cells({"2021-02-30"})).kind, ValueKind::Date) << "the calendar is checked";
    EXPECT_EQ(sniff_values(cells({"2021-03-14", "soon"})).kind, ValueKind::Text);
    EXPECT_EQ(sniff_values(cells({"20210314"})).kind, ValueKind::Integer);
    EXPECT_EQ(sniff_values(cells({"20210314"}), true).date_in, "%Y%m%d");
    EXPECT_TRUE(date_hint("Signup Date"));
    EXPECT_FALSE(date_hint("Loyalty Tier"));
}

// ---- YAML ----------------------------------------------------------------------------------

TEST(InitYaml, PlainOnlyWhenUnambiguous) {
    const std::pair<std::string, std::string> cases[] = {
        {"first_name", "first_name"},
        {"E-Mail", "E-Mail"},
        {"profiles.csv", "profiles.csv"},
        {"First Name", "\"First Name\""},
        {"Loyalty: Tier", "\"Loyalty: Tier\""},
        {"#notes", "\"#notes\""},
        {"Mobile Phone #", "\"Mobile Phone #\""},
        {"- dash", "\"- dash\""},
        {"12345", "\"12345\""},
        {"quote\"d\\", "\"quote\\\"d\\\\\""},
        {"a\nb\tc", "\"a\\nb\\tc\""},
        {"", "\"\""},
    };
    for (const auto& [text, yaml] : cases) EXPECT_EQ(yaml_scalar(text), yaml) << text;
    for (auto word : {"yes", "No", "ON", "off", "y", "n", "true", "False", "null", "~"})
        EXPECT_EQ(yaml_scalar(word), "\"" + std::string(word) + "\"") << word;
    EXPECT_EQ(config_value("$price"), "\"$$price\"");
    EXPECT_EQ(config_value("${HOME}"), "\"$${HOME}\"");
}

TEST(InitYaml, OddTextReadsBackExactlyAsValueAndAsKey) {
    const std::string odd[] = {"First Name",
                               "Loyalty: Tier",
                               "#notes",
                               "yes",
                               "on",
                               "NO",
                               "~",
                               "null",
                               "- dash",
                               "? what",
                               ": colon",
                               "a #b",
                               "key: value",
                               "[list]",
                               "{map}",
                               "*alias",
                               "&anchor",
                               "!tag",
                               "%directive",
                               "@at",
                               "`tick",
                               "|pipe",
                               ">fold",
                               "'single'",
                               "\"double\"",
                               "back\\slash",
                               "tab\there",
                               "new\nline",
                               "bell\x07",
                               " lead",
                               "trail ",
                               "0x1F",
                               "1e3",
                               ".5",
                               "Größe",
                               "電話",
                               "line\xE2\x80\xA8sep",
                               "bom\xEF\xBB\xBF",
                               "nel\xC2\x85",
                               "-",
                               "---",
                               "...",
                               ",",
                               "a,b",
                               "$price",
                               "${HOME}"};
    for (const auto& text : odd) {
        auto as_value = YAML::Load("k: " + yaml_scalar(text));
        EXPECT_EQ(as_value["k"].Scalar(), text) << yaml_scalar(text);
        auto as_key = YAML::Load(yaml_scalar(text) + ": v");
        EXPECT_EQ(as_key.begin()->first.Scalar(), text) << yaml_scalar(text);
        auto in_flow = YAML::Load("{ column: " + yaml_scalar(text) + ", x: 1 }");
        EXPECT_EQ(in_flow["column"].Scalar(), text) << yaml_scalar(text);
    }
}

// ---- whole configs -------------------------------------------------------------------------

config::EnvLookup no_env() {
    return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

StarterSource csv_source() {
    StarterSource s;
    s.type = "csv";
    s.path = "in.csv";
    s.description = "csv in.csv";
    return s;
}

connectors::Row row_of(const Cells& values, std::size_t line) {
    connectors::Row r;
    r.origin = "in.csv:" + std::to_string(line);
    r.values = values;
    return r;
}

// Parses the YAML with prefsync's own config reader, compiles the job's mapping against the
// columns and maps every row: the bodies, or a test failure naming the reject.
std::vector<json::object> map_rows(const std::string& yaml, const std::vector<std::string>& columns, const Rows& rows) {
    config::Config config;
    try {
        config = config::parse_config(yaml, "/srv/prefsync/prefsync.yaml", no_env());
    } catch (const config::ConfigError& e) {
        ADD_FAILURE() << e.what() << "\n" << yaml;
        return {};
    }
    EXPECT_EQ(config.jobs.size(), 1u);
    std::vector<json::object> bodies;
    try {
        auto mapper = mapping::Mapper::compile(config.jobs.at(0), columns);
        for (std::size_t i = 0; i < rows.size(); ++i) {
            auto result = mapper.map(row_of(rows[i], i + 2));
            if (auto* e = std::get_if<mapping::RowError>(&result)) {
                ADD_FAILURE() << "row " << i + 2 << " rejected: " << e->key_path << ": " << e->message << "\n" << yaml;
                continue;
            }
            bodies.push_back(json::parse(std::get<mapping::MappedRow>(result).body).as_object());
        }
    } catch (const config::ConfigError& e) {
        ADD_FAILURE() << e.what() << "\n" << yaml;
    }
    return bodies;
}

const std::vector<std::string> kOddColumns{"Customer ID",
                                           "First Name",
                                           "LAST_NAME",
                                           "Email",
                                           "E-mail 2",
                                           "Mobile Phone #",
                                           "Home Phone",
                                           "Straße",
                                           "city",
                                           "State/Province",
                                           "ZIP Code",
                                           "Country",
                                           "Preferred Language",
                                           "Tags",
                                           "Newsletter Opt-In",
                                           "SMS opt-in",
                                           "Email Consent",
                                           "Signup Date",
                                           "Loyalty: Tier",
                                           "#notes",
                                           "yes",
                                           "Größe",
                                           "$price",
                                           "${HOME}",
                                           "- dash",
                                           "quote\"d",
                                           "a: b # c",
                                           "Contact"};
const Rows kOddRows{
    cells({"A-1",
           "Zoë",
           "Müller",
           "Zoe@Example.com",
           "zoe2@example.org",
           "+1 (555) 010-1001",
           "555-010-2001",
           "Hauptstraße 1",
           "Berlin",
           "BE",
           "10115",
           "de",
           "de-DE",
           "vip;gold",
           "Y",
           "yes",
           "true",
           "03/14/2021",
           "Gold",
           "likes cats",
           "x",
           "M",
           "9.99",
           "h",
           "a",
           "b",
           "c",
           "5550103001"}),
    cells({"A-2",    "José",
           "García", "jose@example.es",
           "",       "+1 (555) 010-1002",
           "",       "Calle Mayor 2",
           "Madrid", "MD",
           "28001",  "es",
           "es-ES",  "",
           "N",      "no",
           "false",  "12/01/2020",
           "Silver", "",
           "y",      "L",
           "1",      nullptr,
           "b",      "c",
           "d",      "5550103002"}),
};

TEST(StarterConfig, OddHeadersReadBackAndMapEverySampledRow) {
    StarterOptions options;
    options.job = "crm";
    options.custom_fields = true;  // every column in use, so every name is read back
    auto starter = make_starter_config(options, csv_source(), kOddColumns, kOddRows);
    auto bodies = map_rows(starter.yaml, kOddColumns, kOddRows);
    ASSERT_EQ(bodies.size(), 2u);
    const auto& b = bodies[0];
    EXPECT_EQ(b.at("CustomerName").at("FirstName"), "Zoë");
    EXPECT_EQ(b.at("CustomerName").at("LastName"), "Müller");
    EXPECT_EQ(b.at("DefaultLocale"), "de-DE");
    auto emails = b.at("Emails").as_array();
    ASSERT_EQ(emails.size(), 2u);
    EXPECT_EQ(emails[0].at("EmailAddress"), "zoe@example.com");
    EXPECT_EQ(emails[0].at("EmailAddressType"), "Personal");
    EXPECT_EQ(emails[0].at("Consents").at(0).at("ConsentStatus"), 1);
    EXPECT_EQ(emails[1].at("EmailAddressType"), "Other");
    auto phones = b.at("PhoneNumbers").as_array();
    ASSERT_EQ(phones.size(), 3u);
    EXPECT_EQ(phones[0].at("PhoneNumber"), "15550101001");
    EXPECT_EQ(phones[0].at("PhoneType"), "Mobile");
    EXPECT_EQ(phones[0].at("PhonePreferences").at(0).at("PreferenceStatus"), "OptIn");
    EXPECT_EQ(phones[1].at("PhoneType"), "Home");
    EXPECT_EQ(phones[2].at("PhoneType"), "Other") << "\"Contact\" is a phone by its values";
    auto address = b.at("Addresses").at(0);
    EXPECT_EQ(address.at("Address1"), "Hauptstraße 1");
    EXPECT_EQ(address.at("StateProvince"), "BE");
    EXPECT_EQ(address.at("PostalCode"), "10115");
    EXPECT_EQ(address.at("CountryCode_Alpha2"), "DE");
    EXPECT_EQ(b.at("ProfileTags"), json::parse(R"([{"Name":"vip"},{"Name":"gold"}])"));
    EXPECT_EQ(b.at("ProfilePreferences").at(0).at("ProgramId"), "NEWSLETTER");
    EXPECT_EQ(b.at("ProfilePreferences").at(0).at("PreferenceStatus"), "OptIn");
    std::map<std::string, std::string> custom;
    for (auto& f : b.at("CustomFields").as_array())
        custom[std::string(f.at("Name").as_string())] = std::string(f.at("Value").as_string());
    EXPECT_EQ(custom["SignupDate"], "2021-03-14");
    EXPECT_EQ(custom["LoyaltyTier"], "Gold");
    EXPECT_EQ(custom["Notes"], "likes cats");
    EXPECT_EQ(custom["Yes"], "x");
    EXPECT_EQ(custom["Größe"], "M");
    EXPECT_EQ(custom["Price"], "9.99") << "$ is not taken for ${VAR}";
    EXPECT_EQ(custom["HOME"], "h");
    EXPECT_EQ(custom["Dash"], "a");
    EXPECT_EQ(custom["QuoteD"], "b");
    EXPECT_EQ(custom["ABC"], "c");
    EXPECT_EQ(bodies[1].at("PhoneNumbers").at(0).at("PhonePreferences").at(0).at("PreferenceStatus"), "OptOut");
    EXPECT_EQ(bodies[1].at("Emails").as_array().size(), 1u) << "an empty second email is left out";
}

// Uncommenting the custom-field block (as its comment says to) gives a config that works too.
TEST(StarterConfig, CommentedCustomFieldsUncommentIntoAWorkingMapping) {
    StarterOptions options;
    auto starter = make_starter_config(options, csv_source(), kOddColumns, kOddRows);
    EXPECT_THAT(starter.yaml, HasSubstr("      # CustomFields:\n"));
    EXPECT_THAT(
        starter.yaml,
        HasSubstr("      #   SignupDate: { column: \"Signup Date\", date: { in: \"%m/%d/%Y\", out: \"%Y-%m-%d\" } }"));
    auto commented = map_rows(starter.yaml, kOddColumns, kOddRows);
    ASSERT_EQ(commented.size(), 2u);
    EXPECT_FALSE(commented[0].contains("CustomFields"));

    std::istringstream in(starter.yaml);
    std::string uncommented;
    bool inside = false;
    for (std::string line; std::getline(in, line);) {
        if (line == "      # CustomFields:") inside = true;
        if (inside && line.starts_with("      # ")) line = "      " + line.substr(8);
        uncommented += line + "\n";
    }
    auto bodies = map_rows(uncommented, kOddColumns, kOddRows);
    ASSERT_EQ(bodies.size(), 2u);
    EXPECT_EQ(bodies[0].at("CustomFields").as_array().size(), 10u);
}

TEST(StarterConfig, SaysWhatItGuessedFromWhichColumn) {
    auto starter = make_starter_config(StarterOptions{}, csv_source(), kOddColumns, kOddRows);
    const auto& y = starter.yaml;
    EXPECT_THAT(
        y, HasSubstr("      # \"Customer ID\": named like an identifier; non-empty and unique in the 2 rows sampled."));
    EXPECT_THAT(y, HasSubstr("      alternate_id_type: CUSTOMERID\n      column: \"Customer ID\"\n"));
    EXPECT_THAT(y, HasSubstr("# \"E-mail 2\": an email, type Other"));
    EXPECT_THAT(
        y, HasSubstr("# \"Contact\": a phone number, type Other; sent as digits only (the values are phone numbers)"));
    EXPECT_THAT(y, HasSubstr("# \"Newsletter Opt-In\": an opt-in flag (values y, n): yes -> OptIn, no -> OptOut"));
    EXPECT_THAT(y, HasSubstr("CountryCode_Alpha2: { column: Country, normalize: uppercase }  # two-letter codes"));
    EXPECT_THAT(y, HasSubstr("#   SignupDate: { column: \"Signup Date\", date: { in: \"%m/%d/%Y\", out: \"%Y-%m-%d\" } "
                             "}  # dates like %m/%d/%Y"));
    EXPECT_THAT(starter.guesses, ::testing::Contains("CustomerName.FirstName <- \"First Name\""));
    EXPECT_THAT(starter.guesses, ::testing::Contains("(commented out) CustomFields.Price <- \"$price\""));
}

TEST(StarterConfig, TheTokenComesFromTheEnvironmentNeverTheFile) {
    StarterOptions options;
    options.token_env = "MYPREF_TOKEN";
    auto y = make_starter_config(options, csv_source(), kOddColumns, kOddRows).yaml;
    EXPECT_THAT(y, HasSubstr("  token_env: MYPREF_TOKEN\n"));
    EXPECT_THAT(y, Not(HasSubstr("token:")));
    EXPECT_THAT(y, Not(HasSubstr("token_file")));
    auto config = config::parse_config(y, "/srv/p.yaml", no_env());
    EXPECT_EQ(config.api.token.kind, config::TokenSpec::Kind::Env);
    EXPECT_EQ(config.api.base_url, "http://127.0.0.1:8080/Profiles/v2");
    EXPECT_EQ(config.journal.path, "/srv/state/journal.db");
}

TEST(StarterConfig, SameInputSameText) {
    auto a = make_starter_config(StarterOptions{}, csv_source(), kOddColumns, kOddRows);
    auto b = make_starter_config(StarterOptions{}, csv_source(), kOddColumns, kOddRows);
    EXPECT_EQ(a.yaml, b.yaml);
}

TEST(StarterConfig, TheIdentityIsACompleteUniqueColumnPreferablyNamedLikeOne) {
    std::vector<std::string> cols{"id", "crm_id", "email"};
    Rows rows{cells({"1", "C1", "a@x.org"}), cells({"2", "", "b@x.org"})};
    auto y = make_starter_config(StarterOptions{}, csv_source(), cols, rows).yaml;
    EXPECT_THAT(y, HasSubstr("alternate_id_type: ID\n      column: id\n")) << "crm_id has an empty value";
    EXPECT_THAT(y, HasSubstr("#   CrmId: crm_id  # another identifier"));

    rows = {cells({"1", "C1", "a@x.org"}), cells({"2", "C2", "b@x.org"})};
    y = make_starter_config(StarterOptions{}, csv_source(), cols, rows).yaml;
    EXPECT_THAT(y, HasSubstr("alternate_id_type: CRMID\n      column: crm_id\n    mapping"))
        << "an id that is not an email is taken as it is";

    y = make_starter_config(StarterOptions{}, csv_source(), {"Name", "E-Mail"},
                            {cells({"Ann", "a@x.org"}), cells({"Ann", "b@x.org"})})
            .yaml;
    EXPECT_THAT(y, HasSubstr("alternate_id_type: EMAIL\n      column: E-Mail\n      normalize: lowercase\n"))
        << "the identity lowercased as its EmailAddress is: a change of case is not another person";
    EXPECT_THAT(y, HasSubstr("EmailAddress: { column: E-Mail, normalize: lowercase }")) << "and still an email";

    StarterOptions by_hand;
    by_hand.id_column = "customer id";  // matched like the guesses: case and separators ignored
    by_hand.id_type = "LOYALTY";
    y = make_starter_config(by_hand, csv_source(), {"Customer_ID", "x"}, {cells({"1", "a"})}).yaml;
    EXPECT_THAT(y, HasSubstr("alternate_id_type: LOYALTY\n      column: Customer_ID\n"));
    by_hand.id_column = "nope";
    EXPECT_THROW(make_starter_config(by_hand, csv_source(), {"Customer_ID"}, {}), StarterError);

    auto warned = make_starter_config(StarterOptions{}, csv_source(), {"x"}, {cells({"1"}), cells({"1"})});
    EXPECT_THAT(warned.warnings, ::testing::Contains(HasSubstr("has empty or repeated values")));
}

TEST(StarterConfig, ValuesOverruleNames) {
    std::vector<std::string> cols{"id", "Email", "Phone", "Newsletter", "Title", "First"};
    Rows rows{cells({"1", "none", "call me", "weekly", "Head of Sales", "Ann"}),
              cells({"2", "", "", "daily", "CEO", "Bo"})};
    auto starter = make_starter_config(StarterOptions{}, csv_source(), cols, rows);
    const auto& y = starter.yaml;
    EXPECT_THAT(y, Not(HasSubstr("Emails:")));
    EXPECT_THAT(y, HasSubstr("#   Email: Email  # named like an email column, but the values are text"));
    EXPECT_THAT(y, HasSubstr("#   Phone: Phone  # named like a phone column, but the values are text"));
    EXPECT_THAT(y, HasSubstr("#   Newsletter: Newsletter  # named like an opt-in column, but the values are text"));
    EXPECT_THAT(y, HasSubstr("#   Title: Title  # named like a name prefix, but the values are too long for one"));
    map_rows(y, cols, rows);
}

TEST(StarterConfig, ASecondColumnForTheSameFieldIsLeftForTheUser) {
    std::vector<std::string> cols{"id", "First Name", "FIRSTNAME", "billing_city", "shipping_city", "city"};
    Rows rows{cells({"1", "Ann", "Anne", "Oslo", "Bergen", "Oslo"})};
    auto y = make_starter_config(StarterOptions{}, csv_source(), cols, rows).yaml;
    EXPECT_THAT(
        y,
        HasSubstr(
            "#   FIRSTNAME: FIRSTNAME  # looks like CustomerName.FirstName too, which is mapped from \"First Name\""));
    auto bodies = map_rows(y, cols, rows);
    ASSERT_EQ(bodies.size(), 1u);
    EXPECT_EQ(bodies[0].at("Addresses"),
              json::parse(R"([{"City":"Oslo","AddressType":"Billing"},{"City":"Bergen","AddressType":"Shipping"},)"
                          R"({"City":"Oslo","AddressType":"Home"}])"));
}

TEST(StarterConfig, NothingRecognisedGoesToCustomFieldsSoTheConfigStillMaps) {
    std::vector<std::string> cols{"Kundennummer", "Spalte A", "Spalte B"};
    Rows rows{cells({"K1", "x", "y"})};
    auto starter = make_starter_config(StarterOptions{}, csv_source(), cols, rows);
    EXPECT_THAT(starter.yaml, HasSubstr("      CustomFields:\n        SpalteA: \"Spalte A\"\n"));
    auto bodies = map_rows(starter.yaml, cols, rows);
    ASSERT_EQ(bodies.size(), 1u);
    EXPECT_EQ(bodies[0].at("CustomFields").as_array().size(), 2u);

    auto only_id = make_starter_config(StarterOptions{}, csv_source(), {"customer_id"}, {cells({"1"})});
    EXPECT_THAT(only_id.yaml, HasSubstr("    mapping: {}"));
    map_rows(only_id.yaml, {"customer_id"}, {cells({"1"})});
}

TEST(StarterConfig, SqlSourcesAndOptionsAreWrittenAsGiven) {
    StarterSource pg;
    pg.type = "postgres";
    pg.conninfo = "host=db dbname=crm user=prefsync";
    pg.password_env = "CRM_DB_PASSWORD";
    pg.table = "crm.customers";
    pg.description = "postgres table crm.customers";
    StarterOptions options;
    options.job = "crm-db";
    options.base_url = "https://pmstg.mypreferences.com/Profiles/v2";
    options.client_id = "987";
    auto config = config::parse_config(make_starter_config(options, pg, {"customer_id", "email"}, {}).yaml,
                                       "/srv/p.yaml", no_env());
    ASSERT_EQ(config.jobs.size(), 1u);
    const auto& job = config.jobs[0];
    EXPECT_EQ(job.name, "crm-db");
    EXPECT_EQ(job.source.type(), "postgres");
    const auto& pg_settings = std::get<connectors::PostgresSourceConfig>(job.source.settings);
    EXPECT_EQ(pg_settings.connection.conninfo, "host=db dbname=crm user=prefsync");
    EXPECT_EQ(pg_settings.connection.password.value, "CRM_DB_PASSWORD");
    EXPECT_EQ(pg_settings.table, "crm.customers");
    EXPECT_EQ(config.api.client_id, "987");
    EXPECT_EQ(config.api.base_url, "https://pmstg.mypreferences.com/Profiles/v2");

    StarterSource tsv = csv_source();
    tsv.delimiter = '\t';
    tsv.path = "exports/my file.tsv";
    config = config::parse_config(make_starter_config(StarterOptions{}, tsv, {"id"}, {}).yaml, "/srv/p.yaml", no_env());
    EXPECT_EQ(std::get<connectors::CsvSourceConfig>(config.jobs.at(0).source.settings).delimiter, '\t');
    EXPECT_EQ(config.jobs.at(0).source.path(), "/srv/exports/my file.tsv");
}

}  // namespace
}  // namespace prefsync::init
