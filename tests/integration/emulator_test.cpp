// The emulator over real HTTP on 127.0.0.1 (port 0): every endpoint family's documented
// behaviour, the error rules, and every fault knob, counted through the admin API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include <sstream>

#include "daemon/emulator/server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync::emulator {
namespace {

using ::testing::HasSubstr;
using testing::HttpClient;
using testing::HttpResult;
namespace json = boost::json;

const std::string kBase = "/Profiles/v2/12345/Profile";

// A fake clock the test moves by hand: no sleeps for "Pending Update" → "Complete".
struct FakeClock {
    std::atomic<long long> ms{1'800'000'000'000};
    std::chrono::system_clock::time_point now() const {
        return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms.load()));
    }
    void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

struct Emulator {
    FakeClock clock;
    ProfileStore store{[this] { return clock.now(); }, std::chrono::seconds(2)};
    EmulatorApi api;
    FaultInjector faults{FaultConfig{}};
    Server server;

    explicit Emulator(ApiOptions options = {}, ServerOptions server_options = {})
        : api(store, options, [this] { return clock.now(); }), server(api, store, faults, std::move(server_options)) {
        server.start();
    }
    HttpClient client() { return HttpClient(server.port()); }
    json::object stats() {
        HttpClient c(server.port());
        return c.get("/__admin/stats").json().as_object();
    }
    void set_faults(const std::string& body) {
        HttpClient c(server.port());
        auto r = c.request("POST", "/__admin/faults", body);
        ASSERT_EQ(r.status, 200) << r.body;
    }
};

std::string alt(const std::string& id, const std::string& type = "CRMID") {
    return "alternateId=" + id + "&alternateIdType=" + type;
}

json::object upsert_body(const std::string& first, const std::string& email) {
    return {{"CustomerName", {{"FirstName", first}, {"LastName", "Lee"}}},
            {"Emails", json::array{{{"EmailAddress", email}, {"EmailAddressType", "Personal"}}}}};
}

// --- writes -------------------------------------------------------------------------------

TEST(EmulatorWrites, UpsertCreatesThenMergesAndReportsPendingUntilProcessed) {
    Emulator e;
    auto c = e.client();
    auto r = c.post(kBase + "/AlternateId?" + alt("C1"), upsert_body("Ann", "ann@example.com"));
    ASSERT_EQ(r.status, 202) << r.body;
    auto accepted = r.json().as_object();
    EXPECT_EQ(accepted.at("UpdateStatus"), "Pending Update");
    EXPECT_EQ(accepted.at("AlternateId"), "C1");
    auto id = accepted.at("ProfileId").as_int64();

    auto got = c.get(kBase + "/AlternateId?" + alt("C1")).json().as_object();
    EXPECT_EQ(got.at("UpdateStatus"), "Pending Update");
    e.clock.advance(std::chrono::seconds(2));
    got = c.get(kBase + "/" + std::to_string(id)).json().as_object();
    EXPECT_EQ(got.at("UpdateStatus"), "Complete");
    EXPECT_EQ(got.at("CustomerName").at("FirstName"), "Ann");

    // Merge: absent properties unchanged, collections merged by their natural key.
    r = c.post(kBase + "/AlternateId?" + alt("C1"),
               json::object{{"CustomerName", {{"FirstName", "Anne"}}},
                            {"Emails", json::array{{{"EmailAddress", "work@example.com"}}}}});
    ASSERT_EQ(r.status, 202);
    EXPECT_EQ(r.json().at("ProfileId").as_int64(), id) << "same profile";
    got = c.get(kBase + "/" + std::to_string(id)).json().as_object();
    EXPECT_EQ(got.at("CustomerName").at("FirstName"), "Anne");
    EXPECT_EQ(got.at("CustomerName").at("LastName"), "Lee");
    EXPECT_EQ(got.at("Emails").as_array().size(), 2u);
    EXPECT_EQ(got.at("UpdateStatus"), "Pending Update") << "every write is processed again";
    EXPECT_EQ(e.store.size(), 1u);
}

TEST(EmulatorWrites, AQueryStringIsReadAsAFormWherePlusIsASpace) {
    // As ASP.NET binds query parameters: a client must send a '+' of its own as %2B.
    Emulator e;
    auto c = e.client();
    auto r = c.post(kBase + "/AlternateId?alternateIdType=EMAIL&alternateId=ann%2Bnews@example.com",
                    upsert_body("Ann", "ann+news@example.com"));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json().at("AlternateId"), "ann+news@example.com");
    r = c.post(kBase + "/AlternateId?alternateIdType=EMAIL&alternateId=ann+news@example.com",
               upsert_body("Ann", "ann+news@example.com"));
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json().at("AlternateId"), "ann news@example.com");
    EXPECT_EQ(e.store.size(), 2u);
}

TEST(EmulatorWrites, CreateAnswers409ForAnExistingAlternateId) {
    Emulator e;
    auto c = e.client();
    json::object body = upsert_body("Ann", "a@example.com");
    body["AlternateIds"] = json::array{{{"AlternateIdType", "CRMID"}, {"AlternateId", "C9"}}};
    auto r = c.post(kBase, body);
    ASSERT_EQ(r.status, 202) << r.body;
    r = c.post(kBase, body);
    EXPECT_EQ(r.status, 409);
    EXPECT_THAT(r.body, HasSubstr("already exists"));
    EXPECT_EQ(e.store.size(), 1u);
}

TEST(EmulatorWrites, UpdateByProfileIdAndDelete) {
    Emulator e;
    auto c = e.client();
    auto id = std::to_string(c.post(kBase, upsert_body("Ann", "a@x.com")).json().at("ProfileId").as_int64());
    EXPECT_EQ(c.post(kBase + "/" + id, json::object{{"CustomerType", "Retail"}}).status, 202);
    EXPECT_EQ(c.get(kBase + "/" + id).json().at("CustomerType"), "Retail");
    EXPECT_EQ(c.post(kBase + "/999", json::object{{"CustomerType", "Retail"}}).status, 404);
    EXPECT_EQ(c.request("DELETE", kBase + "/" + id + "?reasonCode=GDPR").status, 204);
    EXPECT_EQ(c.get(kBase + "/" + id).status, 404);
    EXPECT_EQ(c.request("DELETE", kBase + "/" + id).status, 404);
}

TEST(EmulatorWrites, PutReplacesAndBlanksAbsentFields) {
    Emulator e;
    auto c = e.client();
    c.post(kBase + "/AlternateId?" + alt("C1"), upsert_body("Ann", "a@x.com"));
    auto r = c.request("PUT", kBase + "/AlternateId?" + alt("C1"),
                       json::serialize(json::object{{"CustomerType", "Commercial"}}));
    ASSERT_EQ(r.status, 200) << r.body;
    auto p = r.json().as_object();
    EXPECT_EQ(p.at("CustomerType"), "Commercial");
    EXPECT_FALSE(p.contains("CustomerName")) << "absent is blank";
    EXPECT_FALSE(p.contains("Emails"));
    EXPECT_FALSE(p.contains("AlternateIds")) << "even the one the PUT found it by (a client must send it)";
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C1")).status, 404);

    auto id = std::to_string(p.at("ProfileId").as_int64());
    r = c.request("PUT", kBase + "/" + id, json::serialize(upsert_body("Bo", "b@x.com")));
    ASSERT_EQ(r.status, 200);
    EXPECT_FALSE(r.json().as_object().contains("CustomerType"));
    EXPECT_EQ(c.request("PUT", kBase + "/AlternateId?" + alt("nope"), "{}").status, 404);
}

TEST(EmulatorWrites, PatchBothBodyShapesAndTheTestOperation) {
    Emulator e;
    auto c = e.client();
    auto id = std::to_string(
        c.post(kBase + "/AlternateId?" + alt("C1"), upsert_body("Ann", "a@x.com")).json().at("ProfileId").as_int64());
    // W8: a bare array.
    auto r = c.request("PATCH", kBase + "/" + id, R"([
        {"op":"test","path":"/CustomerName/FirstName","value":"Ann"},
        {"op":"replace","path":"/CustomerName/FirstName","value":"Annie"},
        {"op":"add","path":"/Emails/-","value":{"EmailAddress":"b@x.com"}},
        {"op":"add","path":"/CustomerType","value":"Retail"}])");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("CustomerName").at("FirstName"), "Annie");
    EXPECT_EQ(r.json().at("Emails").as_array().size(), 2u);
    // W5: wrapped in Operations; removal of several elements in descending order.
    r = c.request("PATCH", kBase + "/AlternateId?" + alt("C1"),
                  R"({"Operations":[{"op":"remove","path":"/Emails/1"},{"op":"remove","path":"/Emails/0"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().at("Emails").as_array().size(), 0u);
    // A failed test applies nothing.
    r = c.request("PATCH", kBase + "/" + id, R"([
        {"op":"replace","path":"/CustomerType","value":"Commercial"},
        {"op":"test","path":"/CustomerName/FirstName","value":"Ann"}])");
    EXPECT_EQ(r.status, 409);
    EXPECT_THAT(r.body, HasSubstr("test failed"));
    EXPECT_EQ(c.get(kBase + "/" + id).json().at("CustomerType"), "Retail");
    // move and copy are not supported; read-only paths and invalid results are refused.
    EXPECT_EQ(
        c.request("PATCH", kBase + "/" + id, R"([{"op":"move","from":"/CustomerType","path":"/ReasonCode"}])").status,
        400);
    EXPECT_EQ(c.request("PATCH", kBase + "/" + id, R"([{"op":"replace","path":"/ProfileId","value":1}])").status, 400);
    EXPECT_EQ(c.request("PATCH", kBase + "/" + id, R"([{"op":"add","path":"/Colour","value":"red"}])").status, 400);
    EXPECT_EQ(c.request("PATCH", kBase + "/" + id, R"({"op":"add"})").status, 400) << "W8 wants an array";
}

TEST(EmulatorWrites, ArchiveRemovesPreferencesByFilterOrAll) {
    Emulator e;
    auto c = e.client();
    json::object body{
        {"ProfilePreferences",
         json::array{{{"ProgramId", "P"}, {"FilterId", "F1"}}, {{"ProgramId", "Q"}, {"FilterId", "F2"}}}},
        {"Emails", json::array{{{"EmailAddress", "a@x.com"},
                                {"EmailPreferences", json::array{{{"ProgramId", "P"}, {"FilterId", "F1"}}}}}}}};
    auto id = std::to_string(c.post(kBase + "/AlternateId?" + alt("C1"), body).json().at("ProfileId").as_int64());
    auto r = c.request("PUT", kBase + "/Preferences/" + id + "/Archive",
                       R"({"ProfilePreferences":[{"FilterId":"F1","Reason_Code":"X"}]})");
    EXPECT_EQ(r.status, 204) << r.body;
    auto p = c.get(kBase + "/" + id).json();
    EXPECT_EQ(p.at("ProfilePreferences").as_array().size(), 1u);
    EXPECT_EQ(p.at("Emails").at(0).at("EmailPreferences").as_array().size(), 1u);
    EXPECT_EQ(c.request("PUT", kBase + "/Preferences/" + id + "/Archive", R"({"GlobalDeactivate":true})").status, 204);
    p = c.get(kBase + "/" + id).json();
    EXPECT_EQ(p.at("ProfilePreferences").as_array().size(), 0u);
    EXPECT_EQ(p.at("Emails").at(0).at("EmailPreferences").as_array().size(), 0u);
    EXPECT_EQ(c.request("PUT", kBase + "/Preferences/" + id + "/Archive", R"({"Colour":1})").status, 400);
}

// --- reads --------------------------------------------------------------------------------

TEST(EmulatorReads, InactiveElementsOnlyWithMatchInactive) {
    Emulator e;
    auto c = e.client();
    c.post(kBase + "/AlternateId?" + alt("C1"),
           json::object{{"Emails", json::array{{{"EmailAddress", "on@x.com"}},
                                               {{"EmailAddress", "off@x.com"}, {"IsActive", false}}}}});
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C1")).json().at("Emails").as_array().size(), 1u);
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C1") + "&matchInactive=true").json().at("Emails").as_array().size(),
              2u);
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C2")).status, 404);
    EXPECT_EQ(c.get(kBase + "/AlternateId?alternateId=C1").status, 400) << "alternateIdType is required";
}

// --- searches -----------------------------------------------------------------------------

struct Seeded : Emulator {
    Seeded() {
        auto c = client();
        auto add = [&](const std::string& id, json::object body) {
            auto r = c.post(kBase + "/AlternateId?" + alt(id), body);
            ASSERT_EQ(r.status, 202) << r.body;
        };
        add("A", {{"CustomerName", {{"FirstName", "Bill"}, {"LastName", "Dayton"}}},
                  {"Emails", json::array{{{"EmailAddress", "bill@x.com"}, {"EmailAddressType", "Personal"}}}},
                  {"PhoneNumbers", json::array{{{"PhoneNumber", "(404) 555-0100"}, {"PhoneType", "Mobile"}}}},
                  {"Addresses", json::array{{{"Address1", "12 Camden Lane"},
                                             {"City", "Roswell"},
                                             {"StateProvince", "GA"},
                                             {"PostalCode", "30075"},
                                             {"AddressType", "Home"}}}},
                  {"CustomFields", json::array{{{"Name", "alpha"}, {"Value", "couch:chair"}}}},
                  {"ProfileTags", json::array{{{"Name", "tester"}}, {{"Name", "preferred"}}}},
                  {"Groups", json::array{{{"GroupType", "Household"}, {"GroupName", "Daytons"}, {"IsPrimary", true}}}},
                  {"ProfilePreferences",
                   json::array{{{"ProgramId", "P"},
                                {"PreferenceAttributes", json::array{{{"Key", "alpha"}, {"Value", "phone"}}}}}}}});
        add("B", {{"CustomerName", {{"FirstName", "Billy"}, {"LastName", "Day"}}},
                  {"Addresses",
                   json::array{{{"Address1", "134 Camdenisk Way"}, {"City", "Roswell"}, {"StateProvince", "GA"}}}},
                  {"CustomFields", json::array{{{"Name", "alpha"}, {"Value", "table"}}}},
                  {"ProfileTags", json::array{{{"Name", "tester"}}}},
                  {"Groups", json::array{{{"GroupType", "Household"}, {"GroupName", "Daytons"}}}}});
        add("C",
            {{"CustomerName", {{"FirstName", "Will"}, {"LastName", "Day"}}},
             {"Addresses", json::array{{{"Address1", "1 Cameron St"}, {"City", "Roswell"}, {"StateProvince", "GA"}}}}});
    }
    std::vector<std::string> names(const std::string& target) {
        auto c = client();
        auto r = c.get(target);
        EXPECT_EQ(r.status, 200) << target << " " << r.body;
        std::vector<std::string> out;
        if (r.status == 200) {
            auto profiles = r.json();
            for (auto& p : profiles.as_array()) out.emplace_back(p.at("CustomerName").at("FirstName").as_string());
        }
        return out;
    }
};

TEST(EmulatorSearches, AddressExactAndPartial) {
    Seeded e;
    using ::testing::ElementsAre;
    EXPECT_THAT(e.names(kBase + "/Address?city=Roswell&stateProvince=GA&address1=12%20Camden%20Lane"),
                ElementsAre("Bill"));
    EXPECT_THAT(e.names(kBase + "/Address?city=Roswell&stateProvince=GA&address1=Camden&partialAddress1Match=true"),
                ElementsAre("Bill", "Billy"))
        << "not Cameron";
    EXPECT_THAT(
        e.names(kBase + "/Address?city=Roswell&stateProvince=GA&firstName=Bill&lastName=Day&partialNameMatch=true"),
        ElementsAre("Bill", "Billy"))
        << "not Will Day";
    auto c = e.client();
    EXPECT_EQ(c.get(kBase + "/Address?city=Roswell").status, 400) << "stateProvince is required";
}

TEST(EmulatorSearches, CustomFieldsAndSelectList) {
    Seeded e;
    using ::testing::ElementsAre;
    EXPECT_THAT(e.names(kBase + "/CustomFields?customFields[0].Name=alpha&customFields[0].Value=table"),
                ElementsAre("Billy"));
    EXPECT_THAT(
        e.names(kBase +
                "/CustomFields/"
                "SelectList?customFields[0].OperatorId=3&customFields[0].Name=alpha&customFields[0].Value=chair:table"),
        ElementsAre("Bill", "Billy"));
    EXPECT_THAT(
        e.names(kBase +
                "/CustomFields/"
                "SelectList?customFields[0].OperatorId=2&customFields[0].Name=alpha&customFields[0].Value=couch:chair"),
        ElementsAre("Bill"));
    auto c = e.client();
    EXPECT_EQ(c.get(kBase + "/CustomFields").status, 400);
}

TEST(EmulatorSearches, EmailNamePhoneAttributesTags) {
    Seeded e;
    using ::testing::ElementsAre;
    EXPECT_THAT(e.names(kBase + "/Email?emailAddress=BILL@x.com"), ElementsAre("Bill"));
    EXPECT_THAT(e.names(kBase + "/Email?emailAddress=bill@x.com&emailType=Work"), ElementsAre());
    EXPECT_THAT(e.names(kBase + "/Name?lastName=Day"), ElementsAre("Billy", "Will"));
    EXPECT_THAT(e.names(kBase + "/Name?lastName=Day&firstName=Will"), ElementsAre("Will"));
    EXPECT_THAT(e.names(kBase + "/Name/Partial?lastName=Day"), ElementsAre("Bill", "Billy", "Will"));
    EXPECT_THAT(e.names(kBase + "/Phone?phoneNumber=4045550100"), ElementsAre("Bill"));
    EXPECT_THAT(e.names(kBase + "/Attributes?attributes[0].Key=alpha&attributes[0].Value=phone"), ElementsAre("Bill"));
    EXPECT_THAT(e.names(kBase + "/Tags?tag[0]=tester&tag[1]=preferred&multipleProfiles=true"), ElementsAre("Bill"));
    EXPECT_THAT(e.names(kBase + "/Tags?tag[0]=tester&tag[1]=preferred&exactMatch=false&multipleProfiles=true"),
                ElementsAre("Bill", "Billy"));
    EXPECT_THAT(e.names(kBase + "/Tags?tag[0]=tester&exactMatch=false"), ElementsAre("Bill"))
        << "one unless multipleProfiles";
}

TEST(EmulatorSearches, Groups) {
    Seeded e;
    using ::testing::ElementsAre;
    EXPECT_THAT(e.names(kBase + "/Groups?groupType=Household&groupName=Daytons"), ElementsAre("Bill", "Billy"));
    EXPECT_THAT(e.names(kBase + "/Groups/AlternateId?groupType=Household&" + alt("A")), ElementsAre("Bill", "Billy"));
    EXPECT_THAT(e.names(kBase + "/Groups/Email?groupType=Household&emailAddress=bill@x.com"),
                ElementsAre("Bill", "Billy"));
    EXPECT_THAT(e.names(kBase + "/Groups/Phone?groupType=Household&phoneNumber=404-555-0100"),
                ElementsAre("Bill", "Billy"));
    auto c = e.client();
    auto primary = c.get(kBase + "/AlternateId?" + alt("A")).json().at("ProfileId").as_int64();
    EXPECT_THAT(e.names(kBase + "/Groups/Primary/" + std::to_string(primary) + "?groupType=Household"),
                ElementsAre("Bill", "Billy"));
    EXPECT_EQ(c.get(kBase + "/Groups?groupName=Daytons").status, 400) << "groupType is required";
}

TEST(EmulatorSearches, MoreThanFiftyMatchesIs403) {
    Emulator e;
    auto c = e.client();
    for (int i = 0; i < 51; ++i)
        ASSERT_EQ(c.post(kBase + "/AlternateId?" + alt("S" + std::to_string(i)),
                         json::object{{"CustomerName", {{"LastName", "Smith"}}}})
                      .status,
                  202);
    auto r = c.get(kBase + "/Name?lastName=Smith");
    EXPECT_EQ(r.status, 403);
    EXPECT_THAT(r.body, HasSubstr("more than 50"));
    c.request(
        "DELETE",
        kBase + "/" + std::to_string(c.get(kBase + "/AlternateId?" + alt("S0")).json().at("ProfileId").as_int64()));
    r = c.get(kBase + "/Name?lastName=Smith");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json().as_array().size(), 50u);
}

// --- history ------------------------------------------------------------------------------

TEST(EmulatorHistory, EveryKindInTheDocumentedOrder) {
    Emulator e;
    auto c = e.client();
    auto write = [&](json::object body) {
        ASSERT_EQ(c.post(kBase + "/AlternateId?" + alt("H"), body).status, 202);
        e.clock.advance(std::chrono::seconds(1));
    };
    write({{"CustomerType", "Retail"},
           {"Consents", json::array{{{"ConsentType", "B"}, {"ConsentVersion", "1"}, {"ConsentStatus", 1}}}},
           {"CustomFields", json::array{{{"Name", "Tier"}, {"Value", "Gold"}}}},
           {"Emails",
            json::array{{{"EmailAddress", "a@x.com"},
                         {"EmailPreferences",
                          json::array{{{"ProgramId", "P"}, {"FilterId", "F"}, {"PreferenceStatus", "OptIn"}}}}}}}});
    write({{"Consents", json::array{{{"ConsentType", "A"}, {"ConsentVersion", "1"}, {"ConsentStatus", 1}}}},
           {"CustomFields", json::array{{{"Name", "Tier"}, {"Value", "Platinum"}}}}});
    write({{"CustomerType", "Commercial"},
           {"Consents", json::array{{{"ConsentType", "B"}, {"ConsentVersion", "1"}, {"ConsentStatus", 0}}}},
           {"Emails",
            json::array{{{"EmailAddress", "a@x.com"},
                         {"EmailPreferences",
                          json::array{{{"ProgramId", "P"}, {"FilterId", "F"}, {"PreferenceStatus", "OptOut"}}}}}}}});
    auto h = [&](const std::string& kind) {
        auto r = c.get(kBase + "/History/" + kind + "/AlternateId?" + alt("H"));
        EXPECT_EQ(r.status, 200) << r.body;
        return r.json().as_object();
    };
    auto consents = h("Consents").at("Consents").as_array();
    ASSERT_EQ(consents.size(), 3u);
    EXPECT_EQ(consents[0].at("ConsentType"), "A") << "ascending by type";
    EXPECT_EQ(consents[1].at("ConsentStatus"), 1) << "then by modified date";
    EXPECT_EQ(consents[2].at("ConsentStatus"), 0);
    auto fields = h("CustomFields").at("CustomFields").as_array();
    ASSERT_EQ(fields.size(), 2u);
    EXPECT_EQ(fields[0].at("Value"), "Gold");
    EXPECT_LT(std::string(fields[0].at("Edited").at("ModifiedDate").as_string()),
              std::string(fields[1].at("Edited").at("ModifiedDate").as_string()));
    auto prefs = h("Preferences").at("Emails").at(0).at("EmailPreferences").as_array();
    ASSERT_EQ(prefs.size(), 2u);
    EXPECT_EQ(prefs[0].at("PreferenceStatus"), "OptIn");
    EXPECT_EQ(prefs[1].at("PreferenceStatus"), "OptOut");
    auto id = std::to_string(c.get(kBase + "/AlternateId?" + alt("H")).json().at("ProfileId").as_int64());
    EXPECT_EQ(c.get(kBase + "/History/Preferences/" + id + "?filterId=nope")
                  .json()
                  .at("Emails")
                  .at(0)
                  .at("EmailPreferences")
                  .as_array()
                  .size(),
              0u);
    auto contacts = h("ContactElements").at("Emails").as_array();
    EXPECT_EQ(contacts.size(), 2u) << "the email changed once (its preference)";
    auto standard = h("StandardFields").at("UserProfilePreferences").as_array();
    ASSERT_EQ(standard.size(), 2u) << "CustomerType changed once";
    EXPECT_EQ(standard[0].at("CustomerType"), "Retail");
    EXPECT_EQ(standard[1].at("CustomerType"), "Commercial");
    EXPECT_TRUE(standard[1].as_object().contains("AlternateIds"));
    EXPECT_EQ(c.get(kBase + "/History/Consents/42").status, 404);
}

// --- authentication and request errors --------------------------------------------------------

TEST(EmulatorErrors, AuthClientIdAndMalformedRequests) {
    Emulator e;
    auto c = e.client();
    auto body = json::serialize(upsert_body("A", "a@x.com"));
    EXPECT_EQ(c.request("GET", kBase + "/1", "", "application/json", std::string("wrong")).status, 401);
    EXPECT_EQ(c.request("GET", kBase + "/1", "", "application/json", std::string("")).status, 401);
    EXPECT_EQ(c.get("/Profiles/v2/999/Profile/1").status, 404) << "unknown clientId";
    EXPECT_EQ(c.request("POST", kBase, "{not json").status, 400);
    auto r = c.request("POST", kBase, R"({"Colour":"red"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("Colour: unknown field of Profile"));
    r = c.request("POST", kBase, R"({"Emails":[{"IsDefault":"yes"}]})");
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("Emails[0].IsDefault: expected a boolean"));
    EXPECT_EQ(c.request("POST", kBase, R"({"PhoneNumbers":[{"PhoneNumber":"1","IsMobile":"false"}]})").status, 202)
        << "the reference's own quirk: IsMobile as a string";
    EXPECT_EQ(c.request("POST", kBase, body, "text/plain").status, 415);
    EXPECT_EQ(c.request("POST", kBase, std::string(2 << 20, ' ')).status, 413);
    EXPECT_EQ(c.request("DELETE", kBase + "/AlternateId?" + alt("x")).status, 405);
    EXPECT_EQ(c.get("/Profiles/v4/12345/Profile/AlternateId?" + alt("none")).status, 404) << "v4 is served too";
}

TEST(EmulatorErrors, OAuthTokensExpire) {
    ApiOptions options;
    options.oauth = true;
    options.token_ttl = std::chrono::seconds(60);
    Emulator e(options);
    auto c = e.client();
    auto r = c.request("POST", "/oauth/token", "grant_type=client_credentials&client_secret=wrong",
                       "application/x-www-form-urlencoded");
    EXPECT_EQ(r.status, 401);
    r = c.request("POST", "/oauth/token", "grant_type=client_credentials&client_secret=emulator-token",
                  "application/x-www-form-urlencoded");
    ASSERT_EQ(r.status, 200) << r.body;
    auto token = std::string(r.json().at("access_token").as_string());
    EXPECT_EQ(r.json().at("expires_in"), 60);
    auto bearer = "Bearer " + token;
    EXPECT_EQ(c.request("GET", kBase + "/1", "", "", bearer).status, 404) << "authorized: profile 1 is simply missing";
    EXPECT_EQ(c.request("GET", kBase + "/1", "", "", std::string("emulator-token")).status, 401)
        << "the raw secret is not a token";
    e.clock.advance(std::chrono::seconds(61));
    EXPECT_EQ(c.request("GET", kBase + "/1", "", "", bearer).status, 401) << "expired";
}

// --- faults, counted by the admin API ------------------------------------------------------

TEST(EmulatorFaults, KeepAliveThreeRequestsOneConnection) {
    Emulator e;
    {
        auto c = e.client();
        for (int i = 0; i < 3; ++i) EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 404);
    }
    auto s = e.stats();
    EXPECT_EQ(s.at("requests"), 3);
    EXPECT_EQ(s.at("connections_total"), 2) << "one for the three requests, one for this stats call";
    EXPECT_EQ(s.at("by_endpoint").at("R1 get-by-alternate-id").at("404"), 3);
}

TEST(EmulatorFaults, RateLimitAnswers429WithRetryAfter) {
    Emulator e;
    e.set_faults(R"({"rate_limit": 5, "retry_after": 7})");
    auto c = e.client();
    int ok = 0, limited = 0;
    std::string retry_after;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        auto r = c.get(kBase + "/AlternateId?" + alt("x"));
        if (r.status == 429)
            ++limited, retry_after = r.retry_after;
        else
            ++ok;
    }
    // At most 5 per started second of the run get through, however slow the machine is.
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LE(ok, 5 * (seconds + 1));
    EXPECT_GE(limited, 1);
    EXPECT_EQ(retry_after, "7");
    EXPECT_EQ(e.stats().at("faults").at("429").as_int64(), limited);
}

TEST(EmulatorFaults, Random503IsSeededAndCounted) {
    auto run = [](std::uint64_t seed) {
        Emulator e;
        e.set_faults(R"({"error_503": 0.3, "seed": )" + std::to_string(seed) + "}");
        auto c = e.client();
        std::string pattern;
        for (int i = 0; i < 100; ++i) pattern += c.get(kBase + "/AlternateId?" + alt("x")).status == 503 ? 'x' : '.';
        auto n = std::count(pattern.begin(), pattern.end(), 'x');
        EXPECT_EQ(e.stats().at("faults").at("503").as_int64(), n);
        EXPECT_GT(n, 10);
        EXPECT_LT(n, 50);
        return pattern;
    };
    EXPECT_EQ(run(42), run(42)) << "same seed, same faults";
    EXPECT_NE(run(42), run(43));
}

TEST(EmulatorFaults, ResetClosesBeforeApplying) {
    Emulator e;
    e.set_faults(R"({"reset": 1})");
    auto c = e.client();
    auto r = c.post(kBase + "/AlternateId?" + alt("R"), upsert_body("A", "a@x.com"));
    EXPECT_EQ(r.status, 0) << "no response";
    EXPECT_TRUE(r.error);
    EXPECT_EQ(e.store.size(), 0u) << "not applied";
    EXPECT_EQ(e.stats().at("faults").at("reset"), 1);
}

TEST(EmulatorFaults, AmbiguousWritesAreAppliedButUnanswered) {
    Emulator e;
    e.set_faults(R"({"ambiguous": 1})");
    auto c = e.client();
    auto r = c.post(kBase + "/AlternateId?" + alt("A"), upsert_body("A", "a@x.com"));
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(e.store.size(), 1u) << "applied";
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("A")).status, 200) << "reads are answered";
    EXPECT_EQ(e.stats().at("faults").at("ambiguous"), 1);
}

TEST(EmulatorFaults, AmbiguousWritesCanBeAnsweredWithAServerErrorAfterBeingApplied) {
    Emulator e;
    e.set_faults(R"({"ambiguous": 1, "ambiguous_status": 502})");
    auto c = e.client();
    auto r = c.post(kBase + "/AlternateId?" + alt("A"), upsert_body("A", "a@x.com"));
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(e.store.size(), 1u) << "applied";
    EXPECT_EQ(e.stats().at("faults").at("ambiguous"), 1);
    auto admin = e.client();
    EXPECT_EQ(admin.request("POST", "/__admin/faults", R"({"ambiguous_status": 404})").status, 400);
    EXPECT_EQ(admin.request("POST", "/__admin/faults", R"({"ambiguous_status": 500.5})").status, 400);
    EXPECT_EQ(admin.get("/__admin/faults").json().at("ambiguous_status"), 502);
}

TEST(EmulatorFaults, LatencyAndSlowResponsesDelayAtLeastTheirSetting) {
    Emulator e;
    e.set_faults(R"({"latency_ms": 150, "slow_ms": 100})");
    auto c = e.client();
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 404);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
}

TEST(EmulatorFaults, OutageRefusesEverythingUntilLifted) {
    Emulator e;
    e.set_faults(R"({"outage_ms": 600000})");
    auto c = e.client();
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 0);
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 0);
    e.set_faults(R"({"outage_ms": 0})");
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 404);
    EXPECT_EQ(e.stats().at("faults").at("outage"), 2);
}

TEST(EmulatorAdmin, StateResetFaultValidationAndPeaks) {
    Emulator e;
    {
        std::vector<HttpClient> clients;
        for (int i = 0; i < 4; ++i) clients.emplace_back(e.server.port());
        for (auto& c : clients)
            c.post(kBase + "/AlternateId?" + alt("P" + std::to_string(&c - clients.data())),
                   upsert_body("A", "a@x.com"));
        auto s = e.stats();
        EXPECT_GE(s.at("peak_connections").as_int64(), 4);
        EXPECT_GE(s.at("peak_rps").as_int64(), 4);
    }
    HttpClient admin(e.server.port());
    auto state = admin.get("/__admin/state").json();
    EXPECT_EQ(state.at("profiles").as_array().size(), 4u);
    EXPECT_EQ(admin.request("POST", "/__admin/faults", R"({"error_503": 2})").status, 400);
    EXPECT_EQ(admin.request("POST", "/__admin/faults", R"({"teleport": 1})").status, 400);
    EXPECT_EQ(admin.request("POST", "/__admin/reset").status, 200);
    EXPECT_EQ(admin.get("/__admin/state").json().at("profiles").as_array().size(), 0u);
    EXPECT_EQ(e.stats().at("requests"), 0);
}

// --- the worst server the reference allows -----------------------------------------------

// How many profiles carry each alternate id, as the admin API counts them.
json::object alternate_ids(Emulator& e, const std::string& query = "") {
    HttpClient c(e.server.port());
    auto r = c.get("/__admin/alternate-ids" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json().as_object();
}

// A W1 body: a create names its alternate id in the body.
json::object create_body(const std::string& alternate_id) {
    json::object body = upsert_body("Ann", "a@example.com");
    body["AlternateIds"] = json::array{{{"AlternateIdType", "CRMID"}, {"AlternateId", alternate_id}}};
    return body;
}

TEST(EmulatorWorstCase, AcceptDuplicatesMakesACreateSentTwiceTwoProfiles) {
    Emulator e;
    auto c = e.client();
    json::object body = create_body("C9");
    auto first = c.post(kBase, body);
    ASSERT_EQ(first.status, 202) << first.body;
    EXPECT_EQ(alternate_ids(e).at("duplicated"), 0);

    e.set_faults(R"({"accept_duplicates": true})");
    auto second = c.post(kBase, body);
    ASSERT_EQ(second.status, 202) << "no 409: " << second.body;
    auto oldest = first.json().at("ProfileId").as_int64();
    auto newer = second.json().at("ProfileId").as_int64();
    EXPECT_NE(newer, oldest);
    EXPECT_EQ(second.json().at("AlternateId"), "C9");
    EXPECT_EQ(e.store.size(), 2u);

    auto ids = alternate_ids(e, "?alternateIdType=CRMID&alternateId=C9");
    EXPECT_EQ(ids.at("duplicated"), 1);
    ASSERT_EQ(ids.at("alternate_ids").as_array().size(), 1u);
    EXPECT_EQ(ids.at("alternate_ids").at(0).at("ProfileIds"), (json::array{oldest, newer}));
    EXPECT_EQ(alternate_ids(e, "?alternateIdType=CRMID&alternateId=nope").at("alternate_ids").as_array().size(), 0u);

    // By alternate id, the oldest answers; writes to it are no conflict with its twin.
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C9")).json().at("ProfileId"), oldest);
    auto upsert = c.post(kBase + "/AlternateId?" + alt("C9"), json::object{{"CustomerType", "Retail"}});
    ASSERT_EQ(upsert.status, 202) << upsert.body;
    EXPECT_EQ(upsert.json().at("ProfileId"), oldest);
    EXPECT_EQ(c.request("PUT", kBase + "/" + std::to_string(newer), json::serialize(body)).status, 200);
    EXPECT_EQ(c.request("DELETE", kBase + "/" + std::to_string(oldest)).status, 204);
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("C9")).json().at("ProfileId"), newer) << "the twin remains reachable";
    EXPECT_EQ(alternate_ids(e).at("duplicated"), 0);

    e.set_faults(R"({"accept_duplicates": false})");
    EXPECT_EQ(c.post(kBase, body).status, 409);
    // Other writes never give a profile an alternate id another one carries.
    e.set_faults(R"({"accept_duplicates": true})");
    auto other = std::to_string(
        c.post(kBase + "/AlternateId?" + alt("D1"), upsert_body("Bo", "b@x.com")).json().at("ProfileId").as_int64());
    EXPECT_EQ(c.post(kBase + "/" + other, json::object{{"AlternateIds", body["AlternateIds"]}}).status, 409);
}

TEST(EmulatorWorstCase, PatchTestFailureStatusIsConfigurable) {
    Emulator e;
    auto c = e.client();
    auto id = std::to_string(
        c.post(kBase + "/AlternateId?" + alt("C1"), upsert_body("Ann", "a@x.com")).json().at("ProfileId").as_int64());
    c.post(kBase + "/AlternateId?" + alt("C2"), upsert_body("Bo", "b@x.com"));
    const std::string failing_test = R"([{"op":"test","path":"/CustomerName/FirstName","value":"Zed"}])";
    EXPECT_EQ(c.request("PATCH", kBase + "/" + id, failing_test).status, 409) << "the default";

    e.set_faults(R"({"patch_test_status": 400})");
    auto r = c.request("PATCH", kBase + "/" + id, failing_test);
    EXPECT_EQ(r.status, 400);
    EXPECT_THAT(r.body, HasSubstr("test failed"));
    EXPECT_EQ(c.request("PATCH", kBase + "/AlternateId?" + alt("C1"), R"({"Operations":)" + failing_test + "}").status,
              400)
        << "W5 too";
    EXPECT_EQ(c.request("PATCH", kBase + "/" + id, R"([{"op":"test","path":"/Nope","value":1}])").status, 400)
        << "a test of a missing path is a failed test";
    // Only the test's status moves: an alternate id another profile carries is still a conflict.
    r = c.request("PATCH", kBase + "/" + id,
                  R"([{"op":"add","path":"/AlternateIds/-","value":{"AlternateIdType":"CRMID","AlternateId":"C2"}}])");
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(c.get(kBase + "/" + id).json().at("CustomerName").at("FirstName"), "Ann") << "nothing applied";

    HttpClient admin(e.server.port());
    EXPECT_EQ(admin.request("POST", "/__admin/faults", R"({"patch_test_status": 500})").status, 400);
    EXPECT_EQ(admin.get("/__admin/faults").json().at("patch_test_status"), 400);
}

// An injected fault (`key`: 1) answers `status`, with a Retry-After only when
// `key`_retry_after is set, and applies nothing.
void injected_fault_carries_retry_after_only_when_set(const std::string& key, int status) {
    Emulator e;
    e.set_faults(R"({")" + key + R"(": 1})");
    auto c = e.client();
    auto r = c.get(kBase + "/AlternateId?" + alt("x"));
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.retry_after, "") << "none by default";
    e.set_faults(R"({")" + key + R"(_retry_after": 30})");
    r = c.get(kBase + "/AlternateId?" + alt("x"));
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.retry_after, "30");
    EXPECT_EQ(e.stats().at("faults").at(std::to_string(status)), 2);
    e.set_faults(R"({")" + key + R"(": 0})");
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 404);
}

TEST(EmulatorWorstCase, Random503CarriesRetryAfterOnlyWhenSet) {
    injected_fault_carries_retry_after_only_when_set("error_503", 503);
}

TEST(EmulatorWorstCase, Random429IsAnsweredWhateverTheRateAndCarriesRetryAfterOnlyWhenSet) {
    // error_429: 1 stands for a quota spent for the day: every request throttled, no sign
    // of when to come back.
    injected_fault_carries_retry_after_only_when_set("error_429", 429);
}

TEST(EmulatorWorstCase, LargeRetryAfterOn429IsSentAsGiven) {
    Emulator e;
    e.set_faults(R"({"rate_limit": 1, "retry_after": 100})");
    auto c = e.client();
    HttpResult limited;
    // One request a second gets through; however slow the machine, ten in a row meet a 429.
    for (int i = 0; i < 10 && limited.status != 429; ++i) limited = c.get(kBase + "/AlternateId?" + alt("x"));
    ASSERT_EQ(limited.status, 429);
    EXPECT_EQ(limited.retry_after, "100");
}

TEST(EmulatorWorstCase, OutageAnswers503WhenSoConfiguredAndCanEndEarly) {
    Emulator e;
    auto c = e.client();
    e.set_faults(R"({"outage_ms": 600000})");
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 0) << "reset by default";
    // Changing the mode neither ends nor restarts the outage under way.
    e.set_faults(R"({"outage_mode": "503", "outage_retry_after": 120})");
    auto r = c.post(kBase + "/AlternateId?" + alt("x"), upsert_body("A", "a@x.com"));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.retry_after, "120");
    EXPECT_EQ(e.store.size(), 0u) << "not applied";
    e.set_faults(R"({"outage_retry_after": 0})");
    r = c.get(kBase + "/AlternateId?" + alt("x"));
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.retry_after, "");
    e.set_faults(R"({"outage_ms": 0})");
    EXPECT_EQ(c.get(kBase + "/AlternateId?" + alt("x")).status, 404) << "ended early";
    EXPECT_EQ(e.stats().at("faults").at("outage"), 3);
    EXPECT_EQ(e.stats().at("by_endpoint").at("outage").at("503"), 2);
}

TEST(EmulatorWorstCase, AmbiguousDeleteAndArchiveAreAppliedButUnanswered) {
    Emulator e;
    auto c = e.client();
    json::object body{{"ProfilePreferences", json::array{{{"ProgramId", "P"}, {"FilterId", "F1"}}}}};
    auto kept = std::to_string(c.post(kBase + "/AlternateId?" + alt("K"), body).json().at("ProfileId").as_int64());
    auto gone = std::to_string(c.post(kBase + "/AlternateId?" + alt("G"), body).json().at("ProfileId").as_int64());
    e.set_faults(R"({"ambiguous": 1})");
    EXPECT_EQ(c.request("DELETE", kBase + "/" + gone).status, 0) << "unanswered";
    EXPECT_EQ(c.request("PUT", kBase + "/Preferences/" + kept + "/Archive", R"({"GlobalDeactivate":true})").status, 0);
    EXPECT_EQ(e.stats().at("faults").at("ambiguous"), 2);
    e.set_faults(R"({"ambiguous": 0})");
    EXPECT_EQ(c.request("DELETE", kBase + "/" + gone).status, 404) << "the retry meets a profile already deleted";
    EXPECT_EQ(c.get(kBase + "/" + kept).json().at("ProfilePreferences").as_array().size(), 0u) << "archived";
}

TEST(EmulatorWorstCase, FaultValidationNamesTheKey) {
    Emulator e;
    HttpClient admin(e.server.port());
    for (const char* bad : {R"({"outage_mode": "later"})", R"({"outage_mode": 503})", R"({"accept_duplicates": 1})",
                            R"({"error_503_retry_after": -1})", R"({"outage_retry_after": 1e12})",
                            R"({"error_429": 2})", R"({"error_429_retry_after": -1})"}) {
        auto r = admin.request("POST", "/__admin/faults", bad);
        EXPECT_EQ(r.status, 400) << bad;
        auto parsed = json::parse(bad);
        EXPECT_THAT(r.body, HasSubstr(std::string(parsed.as_object().begin()->key()))) << bad;
    }
    auto faults = admin.get("/__admin/faults").json();
    EXPECT_EQ(faults.at("outage_mode"), "reset");
    EXPECT_EQ(faults.at("accept_duplicates"), false);
    EXPECT_EQ(faults.at("error_503_retry_after"), 0);
    EXPECT_EQ(faults.at("error_429").as_double(), 0.0);
    EXPECT_EQ(faults.at("error_429_retry_after"), 0);
    EXPECT_EQ(faults.at("outage_retry_after"), 0);
    EXPECT_EQ(faults.at("patch_test_status"), 409);
}

// --- the request log ---------------------------------------------------------------------

TEST(EmulatorRequestLog, NamesEndpointAlternateIdAndFaultOfEveryRequest) {
    testing::TempDir dir;
    ServerOptions options;
    options.request_log = dir.file("requests.jsonl");
    Emulator e({}, options);
    auto c = e.client();
    json::object create = create_body("C1");
    e.set_faults(R"({"reset": 1})");
    EXPECT_EQ(c.post(kBase, create).status, 0);
    e.set_faults(R"({"reset": 0, "error_503": 1})");
    EXPECT_EQ(c.post(kBase, create).status, 503);
    e.set_faults(R"({"error_503": 0})");
    auto id = std::to_string(c.post(kBase, create).json().at("ProfileId").as_int64());
    EXPECT_EQ(c.get(kBase + "/AlternateId?alternateIdType=CRMID&alternateId=C1").status, 200);
    EXPECT_EQ(c.post(kBase + "/" + id, json::object{{"CustomerType", "Retail"}}).status, 202);

    std::istringstream lines(testing::read_file(options.request_log));
    std::vector<json::object> api;
    for (std::string line; std::getline(lines, line);) {
        auto entry = json::parse(line).as_object();
        if (entry.at("endpoint") != "admin") api.push_back(std::move(entry));
    }
    ASSERT_EQ(api.size(), 5u);
    EXPECT_EQ(api[0].at("endpoint"), "W1 create");
    EXPECT_EQ(api[0].at("status"), 0) << "unanswered";
    EXPECT_EQ(api[0].at("fault"), "reset");
    EXPECT_EQ(api[1].at("fault"), "503");
    EXPECT_EQ(api[2].at("status"), 202);
    EXPECT_FALSE(api[2].contains("fault"));
    EXPECT_EQ(api[3].at("endpoint"), "R1 get-by-alternate-id");
    EXPECT_EQ(api[4].at("endpoint"), "W2 update");
    EXPECT_FALSE(api[4].contains("alternate_id")) << "names none";
    auto sent_for_c1 = std::count_if(api.begin(), api.end(), [](const json::object& l) {
        return l.contains("alternate_id") && l.at("alternate_id") == "C1" && l.at("alternate_id_type") == "CRMID" &&
               l.at("endpoint") == "W1 create";
    });
    EXPECT_EQ(sent_for_c1, 3) << "every create that reached the server, answered or not";
}

}  // namespace
}  // namespace prefsync::emulator
