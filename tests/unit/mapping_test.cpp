#include "daemon/mapping/mapper.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace prefsync::mapping {
namespace {

using ::testing::HasSubstr;

config::EnvLookup no_env() {
    return [](const std::string&) { return std::optional<std::string>(); };
}

// A job whose mapping is `mapping` (YAML, indented under "mapping:").
struct Fixture {
    config::Config config;
    std::vector<std::string> columns;
    std::optional<Mapper> mapper;

    Fixture(const std::string& mapping, std::vector<std::string> cols,
            const std::string& identity = "{ alternate_id_type: CRMID, column: id }",
            const std::string& mode = "upsert") {
        std::string yaml =
            "api: { base_url: https://x, client_id: \"1\", token_env: T }\n"
            "jobs:\n  crm:\n    mode: " +
            mode + "\n    source: { type: csv, path: in.csv }\n    identity: " + identity + "\n";
        if (!mapping.empty()) yaml += "    mapping:\n" + mapping;
        config = config::parse_config(yaml, "t.yaml", no_env());
        columns = std::move(cols);
        mapper.emplace(Mapper::compile(config.jobs[0], columns));
    }

    MapResult map(std::vector<std::optional<std::string>> values) const {
        connectors::Row row{"in.csv:2", std::move(values), "", ""};
        return mapper->map(row);
    }
    // The body of a row that must map.
    std::string body(std::vector<std::optional<std::string>> values) const {
        auto r = map(std::move(values));
        if (auto* e = std::get_if<RowError>(&r)) {
            ADD_FAILURE() << e->key_path << ": " << e->message;
            return {};
        }
        return std::get<MappedRow>(r).body;
    }
    RowError error(std::vector<std::optional<std::string>> values) const {
        auto r = map(std::move(values));
        if (auto* e = std::get_if<RowError>(&r)) return *e;
        ADD_FAILURE() << "mapped, but an error was expected: " << std::get<MappedRow>(r).body;
        return {};
    }
};

TEST(Mapping, ScalarPathsBuildNestedObjectsInConfigOrder) {
    Fixture f(
        "      CustomerName.LastName: last\n      CustomerName.FirstName: first\n"
        "      CustomerType: type\n",
        {"id", "first", "last", "type"});
    EXPECT_EQ(f.body({"1", "Zoë", "Müller", "Retail"}),
              R"({"CustomerName":{"LastName":"Müller","FirstName":"Zoë"},"CustomerType":"Retail"})");
}

TEST(Mapping, ConstantsAreTypedByTheField) {
    Fixture f(
        "      CustomerType: { const: Retail }\n      IsActive: { const: yes }\n"
        "      PhoneNumbers:\n        - { PhoneNumber: p, PhoneNumberNumeric: { column: p, normalize: digits } }\n",
        {"id", "p"});
    EXPECT_EQ(
        f.body({"1", "(404) 555-0100"}),
        R"({"CustomerType":"Retail","IsActive":true,"PhoneNumbers":[{"PhoneNumber":"(404) 555-0100","PhoneNumberNumeric":4045550100}]})");
}

TEST(Mapping, SeveralContactElementsFromSeveralColumnsAndEmptyOnesDropped) {
    Fixture f(
        "      Emails:\n"
        "        - { EmailAddress: { column: home, normalize: lowercase }, EmailAddressType: { const: Personal } }\n"
        "        - { EmailAddress: { column: work, normalize: lowercase }, EmailAddressType: { const: Work } }\n",
        {"id", "home", "work"});
    EXPECT_EQ(
        f.body({"1", " A@Example.COM ", "b@corp.example"}),
        R"({"Emails":[{"EmailAddress":"a@example.com","EmailAddressType":"Personal"},{"EmailAddress":"b@corp.example","EmailAddressType":"Work"}]})");
    EXPECT_EQ(f.body({"1", "", "b@corp.example"}),
              R"({"Emails":[{"EmailAddress":"b@corp.example","EmailAddressType":"Work"}]})")
        << "an element whose columns are all empty is not sent, even with its constants";
    EXPECT_EQ(f.body({"1", "  ", ""}), "{}") << "no emails at all: no Emails key";
}

TEST(Mapping, AnElementWhoseColumnsAreEmptyIsNotSentWhateverItsDefaultsHold) {
    // Measured before: an empty phone sent {"PhoneType":"Mobile"}, a phone without a number.
    Fixture f(
        "      PhoneNumbers:\n"
        "        - { PhoneNumber: phone, PhoneType: { column: phone_type, default: Mobile } }\n",
        {"id", "phone", "phone_type"});
    EXPECT_EQ(f.body({"1", "", ""}), "{}");
    EXPECT_EQ(f.body({"1", "", "Home"}), R"({"PhoneNumbers":[{"PhoneType":"Home"}]})")
        << "a column with data is data, even without the number (the API's validation decides)";
    EXPECT_EQ(f.body({"1", "5550100", ""}), R"({"PhoneNumbers":[{"PhoneNumber":"5550100","PhoneType":"Mobile"}]})");
}

TEST(Mapping, ElementsOfConstantsOnlyAreAlwaysSent) {
    Fixture f("      ProfilePreferences:\n        - { ProgramId: { const: P1 }, PreferenceStatus: { const: OptIn } }\n",
              {"id"});
    EXPECT_EQ(f.body({"1"}), R"({"ProfilePreferences":[{"ProgramId":"P1","PreferenceStatus":"OptIn"}]})");
}

TEST(Mapping, DelimitedListsBecomeTagsTrimmedAndDeduplicated) {
    Fixture f("      ProfileTags: { column: tags, split: \";\", normalize: lowercase }\n", {"id", "tags"});
    EXPECT_EQ(f.body({"1", "VIP; newsletter;;vip ;b2b"}),
              R"({"ProfileTags":[{"Name":"vip"},{"Name":"newsletter"},{"Name":"b2b"}]})");
    EXPECT_EQ(f.body({"1", " ; "}), "{}");
}

TEST(Mapping, SplitWithFurtherFields) {
    Fixture f(
        "      Groups: { column: g, split: \"|\", field: GroupName, with: { GroupType: { const: Household }, IsActive: "
        "{ const: true } } }\n",
        {"id", "g"});
    EXPECT_EQ(
        f.body({"1", "Smiths|Joneses"}),
        R"({"Groups":[{"GroupName":"Smiths","GroupType":"Household","IsActive":true},{"GroupName":"Joneses","GroupType":"Household","IsActive":true}]})");
}

// Each item's cleaned text outlives the evaluation of `with`, whose own cleaning reuses the
// evaluator's scratch text.
TEST(Mapping, SplitItemsKeepTheirTextWhenTheFurtherFieldsAreCleanedToo) {
    Fixture f(
        "      Groups: { column: g, split: \"|\", normalize: lowercase, field: GroupName, with: { GroupType: "
        "{ column: kind, normalize: uppercase } } }\n",
        {"id", "g", "kind"});
    EXPECT_EQ(
        f.body({"1", "Smiths|JONESES", "household"}),
        R"({"Groups":[{"GroupName":"smiths","GroupType":"HOUSEHOLD"},{"GroupName":"joneses","GroupType":"HOUSEHOLD"}]})");
}

// A constant is written once, when the mapping is compiled; one that cannot be written
// (a date the format does not read: only its type is checked at load) fails every row, with
// the row's own identity, rather than disappearing from the body.
TEST(Mapping, AConstantThatCannotBeWrittenFailsEveryRow) {
    Fixture f("      CustomFields: { Since: { const: \"31/04/2024\", date: { in: \"%m/%d/%Y\" } }, Tier: tier }\n",
              {"id", "tier"});
    for (std::string id : {"1", "2"}) {
        auto e = f.error({id, "Gold"});
        EXPECT_EQ(e.key_path, "jobs.crm.mapping.CustomFields.Since");
        EXPECT_THAT(e.message, HasSubstr("not a date"));
        ASSERT_TRUE(e.identity);
        EXPECT_EQ(e.identity->alternate_id, id);
    }
}

TEST(Mapping, CustomFieldsByName) {
    Fixture f("      CustomFields: { LoyaltyTier: tier, Score: { column: score, default: \"0\" } }\n",
              {"id", "tier", "score"});
    EXPECT_EQ(f.body({"1", "Gold", "7"}),
              R"({"CustomFields":[{"Name":"LoyaltyTier","Value":"Gold"},{"Name":"Score","Value":"7"}]})");
    EXPECT_EQ(f.body({"1", "", ""}), R"({"CustomFields":[{"Name":"Score","Value":"0"}]})")
        << "empty tier absent; empty score takes its default";
}

TEST(Mapping, PreferencesAndConsentsFromFlagColumns) {
    Fixture f(
        "      ProfilePreferences:\n"
        "        - ProgramId: { const: NEWS }\n"
        "          PreferenceStatus: { column: news, normalize: uppercase, map: { Y: OptIn, N: OptOut } }\n"
        "      Consents:\n"
        "        - ConsentType: { const: Marketing }\n"
        "          ConsentStatus: { column: consent, map: { \"yes\": \"1\", \"no\": \"0\" } }\n"
        "          Expired: { column: expired }\n",
        {"id", "news", "consent", "expired"});
    EXPECT_EQ(
        f.body({"1", "y", "yes", "0"}),
        R"({"ProfilePreferences":[{"ProgramId":"NEWS","PreferenceStatus":"OptIn"}],"Consents":[{"ConsentType":"Marketing","ConsentStatus":1,"Expired":false}]})");
    EXPECT_EQ(f.body({"1", "", "", ""}), "{}") << "no flag: no preference, no consent";
    auto e = f.error({"1", "maybe", "", ""});
    EXPECT_EQ(e.key_path, "jobs.crm.mapping.ProfilePreferences[0].PreferenceStatus");
    EXPECT_EQ(e.message, "value \"MAYBE\" is not in the map (expected one of N, Y)");
}

TEST(Mapping, MapWildcard) {
    Fixture f("      CustomerType: { column: t, map: { B2B: Commercial, \"*\": Retail } }\n", {"id", "t"});
    EXPECT_EQ(f.body({"1", "B2B"}), R"({"CustomerType":"Commercial"})");
    EXPECT_EQ(f.body({"1", "anything"}), R"({"CustomerType":"Retail"})");
}

TEST(Mapping, TypeConversionErrorsNameKeyPathAndValue) {
    Fixture f(
        "      RegistrationConfirmed: confirmed\n"
        "      Consents:\n        - { ConsentType: { const: T }, ConsentStatus: status }\n",
        {"id", "confirmed", "status"});
    EXPECT_EQ(f.body({"1", "Y", "2"}),
              R"({"RegistrationConfirmed":true,"Consents":[{"ConsentType":"T","ConsentStatus":2}]})");
    auto e = f.error({"1", "sometimes", "2"});
    EXPECT_EQ(e.key_path, "jobs.crm.mapping.RegistrationConfirmed");
    EXPECT_THAT(e.message, HasSubstr("expected a boolean"));
    EXPECT_THAT(e.message, HasSubstr("\"sometimes\""));
    e = f.error({"1", "y", "two"});
    EXPECT_EQ(e.key_path, "jobs.crm.mapping.Consents[0].ConsentStatus");
    EXPECT_EQ(e.message, "expected a whole number, got \"two\"");
}

TEST(Mapping, Dates) {
    Fixture f(
        "      CustomFields:\n        Since: { column: since, date: { in: \"%m/%d/%Y\", out: \"%Y-%m-%dT00:00:00\" } "
        "}\n",
        {"id", "since"});
    EXPECT_EQ(f.body({"1", "04/24/2022"}), R"({"CustomFields":[{"Name":"Since","Value":"2022-04-24T00:00:00"}]})");
    auto e = f.error({"1", "2022-04-24"});
    EXPECT_EQ(e.message, "value \"2022-04-24\" is not a date in the format \"%m/%d/%Y\"");
}

TEST(Mapping, TrimIsOnByDefaultAndCanBeTurnedOff) {
    Fixture f("      CustomerName.FirstName: a\n      CustomerName.LastName: { column: b, trim: false }\n",
              {"id", "a", "b"});
    EXPECT_EQ(f.body({"1", "  Ann ", " Lee "}), R"({"CustomerName":{"FirstName":"Ann","LastName":" Lee "}})");
}

TEST(Mapping, CollapseSpacesAndDigits) {
    Fixture f(
        "      CustomerName.FirstName: { column: a, normalize: collapse_spaces }\n"
        "      PhoneNumbers:\n        - { PhoneNumber: { column: p, normalize: digits } }\n",
        {"id", "a", "p"});
    EXPECT_EQ(f.body({"1", "Mary   Ann", "+1 (404) 555-0100"}),
              R"({"CustomerName":{"FirstName":"Mary Ann"},"PhoneNumbers":[{"PhoneNumber":"14045550100"}]})");
}

TEST(Mapping, EmptyMeansAbsentUnlessKeep) {
    Fixture f("      CustomerName.FirstName: a\n      CustomerName.MiddleName: { column: b, empty: keep }\n",
              {"id", "a", "b"});
    EXPECT_EQ(f.body({"1", "", ""}), R"({"CustomerName":{"MiddleName":""}})");
    EXPECT_EQ(f.body({"1", "", std::nullopt}), "{}") << "NULL is absent even with keep";
}

TEST(Mapping, RequiredRejectsEmpty) {
    Fixture f("      CustomerName.LastName: { column: last, required: true }\n", {"id", "last"});
    auto e = f.error({"1", " "});
    EXPECT_EQ(e.key_path, "jobs.crm.mapping.CustomerName.LastName");
    EXPECT_EQ(e.message, "is required, but the value is empty");
}

TEST(Mapping, IdentityByAlternateIdOrProfileId) {
    Fixture alt("      CustomerType: t\n", {"id", "t"});
    auto r = std::get<MappedRow>(alt.map({" C42 ", "x"}));
    EXPECT_EQ(r.identity.key(), "CRMID:C42");
    EXPECT_EQ(r.identity.to_json(), R"({"alternate_id_type":"CRMID","alternate_id":"C42"})");
    auto e = alt.error({"", "x"});
    EXPECT_EQ(e.key_path, "jobs.crm.identity.column");
    EXPECT_EQ(e.message, "the identity column \"id\" is empty");

    Fixture pid("      CustomerType: t\n", {"pid", "t"}, "{ profile_id_column: pid }", "update");
    r = std::get<MappedRow>(pid.map({"1234", "x"}));
    EXPECT_EQ(r.identity.key(), "profile:1234");
    EXPECT_EQ(r.identity.to_json(), R"({"profile_id":1234})");
    EXPECT_THAT(pid.error({"12x", "x"}).message, HasSubstr("is not a positive 32-bit integer"));
    EXPECT_THAT(pid.error({"4294967296", "x"}).message, HasSubstr("is not a positive 32-bit integer"));
}

TEST(Mapping, AnIdentityIsNormalizedAsTheConfigSaysBeforeItNamesTheProfile) {
    Fixture email("      CustomerType: t\n", {"email", "t"},
                  "{ alternate_id_type: EMAIL, column: email, normalize: lowercase }");
    auto r = std::get<MappedRow>(email.map({" Ann.Lee@Example.COM ", "x"}));
    EXPECT_EQ(r.identity.key(), "EMAIL:ann.lee@example.com") << "one person, whatever the case in the export";
    Fixture digits("      CustomerType: t\n", {"id", "t"},
                   "{ alternate_id_type: PHONE, column: id, normalize: [digits] }");
    EXPECT_EQ(std::get<MappedRow>(digits.map({"+1 (555) 010-9999", "x"})).identity.alternate_id, "15550109999");
    auto e = digits.error({"n/a", "x"});
    EXPECT_EQ(e.key_path, "jobs.crm.identity.column");
    EXPECT_THAT(e.message, HasSubstr("is empty once normalized (\"n/a\")"));
}

TEST(Mapping, DeleteModeHasNoBody) {
    Fixture f("", {"pid"}, "{ profile_id_column: pid }", "delete");
    auto r = std::get<MappedRow>(f.map({"7"}));
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.hash.size(), 32u);
}

TEST(Mapping, SameRowSameBytesAndHashDifferentRowDifferentHash) {
    Fixture f("      CustomerName.FirstName: a\n      ProfileTags: { column: t, split: \",\" }\n", {"id", "a", "t"});
    auto r1 = std::get<MappedRow>(f.map({"1", "Ann", "x,y"}));
    auto r2 = std::get<MappedRow>(f.map({"1", "Ann", "x,y"}));
    EXPECT_EQ(r1.body, r2.body);
    EXPECT_EQ(r1.hash, r2.hash);
    EXPECT_NE(r1.hash, std::get<MappedRow>(f.map({"1", "Ann", "y,x"})).hash);
    EXPECT_NE(r1.hash, std::get<MappedRow>(f.map({"2", "Ann", "x,y"})).hash) << "identity is part of the hash";
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Journals keep these hashes across upgrades: a different construction would re-send every
// row on the first nightly run after one.
TEST(Mapping, TheHashIsTheFirstHalfOfTheSha256OfIdentityKeyLineBreakBody) {
    Fixture f("      CustomerName.FirstName: a\n", {"id", "a"});
    for (const std::string& name :
         {std::string("Ann"), std::string(3000, 'x'), std::string("Bo")}) {  // past the body room, and back
        auto r = std::get<MappedRow>(f.map({"1", name}));
        EXPECT_EQ(r.hash, sha256_hex(r.identity.key() + "\n" + r.body).substr(0, 32));
    }
}

TEST(Mapping, OutputIsValidJsonEvenForHostileValues) {
    Fixture f("      CustomerName.FirstName: a\n", {"id", "a"});
    auto body = f.body({"1", "quote\" back\\slash \n ctrl\x01 ünï"});
    auto parsed = boost::json::parse(body);
    EXPECT_EQ(parsed.at("CustomerName").at("FirstName").as_string(), "quote\" back\\slash \n ctrl\x01 ünï");
}

TEST(Mapping, UnknownColumnsAreConfigErrorsWithSuggestionAndPosition) {
    auto yaml = std::string(
        "api: { base_url: https://x, client_id: \"1\", token_env: T }\n"
        "jobs:\n  crm:\n    source: { type: csv, path: in.csv }\n"
        "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
        "    mapping:\n"
        "      Emails:\n        - { EmailAddress: emial, EmailAddressType: Personal }\n");
    auto config = config::parse_config(yaml, "t.yaml", no_env());
    try {
        Mapper::compile(config.jobs[0], {"customer_id", "email"});
        FAIL();
    } catch (const config::ConfigError& e) {
        ASSERT_EQ(e.diagnostics().size(), 2u);
        EXPECT_EQ(e.diagnostics()[0].to_string(),
                  "t.yaml:8:27: jobs.crm.mapping.Emails[0].EmailAddress: unknown column \"emial\" in in.csv (did you "
                  "mean \"email\"?)");
        EXPECT_EQ(e.diagnostics()[1].to_string(),
                  "t.yaml:8:52: jobs.crm.mapping.Emails[0].EmailAddressType: unknown column \"Personal\" in in.csv; "
                  "to send a constant, write {const: Personal}");
    }
    try {
        Mapper::compile(config.jobs[0], {"id", "email"});
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("jobs.crm.identity: unknown column \"customer_id\""));
    }
    // A header read with the wrong delimiter is one column: that is what is said.
    try {
        Mapper::compile(config.jobs[0], {"customer_id;email"});
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("unknown column \"customer_id\" in in.csv (its header reads as one column, "
                                        "\"customer_id;email\": the file seems delimited by \";\"; check "
                                        "source.delimiter)"));
    }
}

}  // namespace
}  // namespace prefsync::mapping
