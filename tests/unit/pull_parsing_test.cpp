// The pull side's parsing: answers split into profiles (simdjson On-Demand), profiles
// flattened into rows by JSON paths, and the round-trip comparison; the fingerprint of a
// pull's settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/pull/flattener.hpp"
#include "daemon/pull/pull_fingerprint.hpp"
#include "daemon/pull/reconcile.hpp"
#include "daemon/pull/response_reader.hpp"

namespace prefsync::pull {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(ResponseReader, SplitsArraysAndReadsProfileIdAsNumberOrString) {
    ResponseReader reader;
    std::vector<PulledProfile> out;
    ASSERT_EQ(reader.read(R"([{"ProfileId": 7, "A": [1, {"B": "]"}]}, {"ProfileId": "8"}, {"X": 1}])", out), "");
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].profile_id, 7);
    EXPECT_EQ(out[0].json, R"({"ProfileId": 7, "A": [1, {"B": "]"}]})");
    EXPECT_EQ(out[1].profile_id, 8) << "a numeric string is tolerated";
    EXPECT_EQ(out[2].profile_id, std::nullopt);
    ASSERT_EQ(reader.read(R"({"ProfileId": 9, "IsMobile": "false"})", out), "");
    EXPECT_EQ(out[0].profile_id, 9);
    EXPECT_THAT(reader.read("[1, 2]", out), HasSubstr("not a profile object"));
    EXPECT_THAT(reader.read("{\"a\": ", out), HasSubstr("JSON"));
    EXPECT_THAT(reader.read("\"text\"", out), HasSubstr("expected a profile"));
}

TEST(ResponseReader, AnAnswerMustBeJsonThroughout) {
    // Found by fuzzing: On-Demand skips what it does not visit by counting brackets, and a
    // document's raw_json() runs to the end of the body, so malformed profiles were returned
    // as received (and a jsonl sink writes them so).
    ResponseReader reader;
    std::vector<PulledProfile> out;
    EXPECT_THAT(reader.read(R"({"ProfilId": 7luId": 7, "A": dited"]t)", out), HasSubstr("not JSON"));
    EXPECT_THAT(out, IsEmpty());
    EXPECT_THAT(reader.read(R"([{"ProfileId": 7, "A": [1"Tags"}] ])", out), HasSubstr("not JSON"));
    EXPECT_THAT(out, IsEmpty());
    EXPECT_THAT(reader.read(R"({"ProfileId": 1} {"ProfileId": 2})", out), HasSubstr("not JSON"));
    EXPECT_THAT(reader.read(R"([{"ProfileId": 1}] x)", out), HasSubstr("not JSON"));
    EXPECT_THAT(reader.read(R"([{"ProfileId": 1, "A": tru}])", out), HasSubstr("not JSON"));
    ASSERT_EQ(reader.read(" {\"ProfileId\": 1} \r\n", out), "") << "space around is fine";
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].json, R"({"ProfileId": 1})");
    ASSERT_EQ(reader.read(R"([{"ProfileId": 1} , {"ProfileId": 2}])", out), "");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].json, R"({"ProfileId": 1})");
}

TEST(ResponseReader, EachAnswerIsReadOnItsOwnWhateverCameBefore) {
    // The reader keeps its buffer and parsers across answers: an answer over the kept size is
    // read whole (and its buffer released after), and later answers, each shorter than the
    // one before, must not see the earlier one's bytes.
    ResponseReader reader;
    std::vector<PulledProfile> out;
    std::string big = "[";
    for (int i = 1; i <= 600; ++i)
        big += (i > 1 ? "," : "") + std::string(R"({"ProfileId": )") + std::to_string(i) + R"(, "Pad": ")" +
               std::string(2000, 'x') + "\"}";
    big += "]";
    ASSERT_GT(big.size(), 1u << 20);
    ASSERT_EQ(reader.read(big, out), "");
    ASSERT_EQ(out.size(), 600u);
    EXPECT_EQ(out[599].profile_id, 600);
    EXPECT_EQ(out[599].json.substr(0, 19), R"({"ProfileId": 600, )");
    ASSERT_EQ(reader.read(R"({"ProfileId": "12"})", out), "");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].profile_id, 12);
    EXPECT_EQ(out[0].json, R"({"ProfileId": "12"})");
    ASSERT_EQ(reader.read(R"([{"ProfileId": 3}, {"ProfileId": 4.5}, {"ProfileId": "x"}])", out), "");
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].profile_id, 3);
    EXPECT_EQ(out[1].profile_id, std::nullopt) << "not an integer";
    EXPECT_EQ(out[2].profile_id, std::nullopt);
    EXPECT_EQ(out[2].json, R"({"ProfileId": "x"})");
    EXPECT_THAT(reader.read("[]", out), IsEmpty());
    EXPECT_THAT(out, IsEmpty());
}

config::SinkConfig sink_with(std::vector<std::pair<std::string, std::string>> columns, std::string each = "") {
    connectors::CsvSinkConfig csv;
    for (auto& [n, p] : columns) csv.columns.push_back({n, p, {}});
    csv.each = std::move(each);
    return config::SinkConfig{{}, "jobs.x.sink", csv};
}

TEST(Flattener, ReadsPathsIndexesAndFiltersAndWritesStructuresAsJson) {
    auto f = Flattener::compile(sink_with({{"id", "ProfileId"},
                                           {"first", "CustomerName.FirstName"},
                                           {"email", "Emails[1].EmailAddress"},
                                           {"crm", "AlternateIds[AlternateIdType=CRMID].AlternateId"},
                                           {"mobile", "PhoneNumbers[0].IsMobile"},
                                           {"tags", "ProfileTags"},
                                           {"none", "Missing.Field"},
                                           {"null", "Nothing"}}));
    std::vector<OutputRow> rows;
    ASSERT_EQ(f.rows(R"({"ProfileId": 5, "CustomerName": {"FirstName": "Zoë"},
        "Emails": [{"EmailAddress": "a@x"}, {"EmailAddress": "b@x"}],
        "AlternateIds": [{"AlternateIdType": "ERP", "AlternateId": "E1"}, {"AlternateIdType": "CRMID", "AlternateId": "C1"}],
        "PhoneNumbers": [{"IsMobile": "false"}], "ProfileTags": [{"Name": "vip"}], "Nothing": null})",
                     rows),
              "");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_THAT(rows[0],
                ElementsAre("5", "Zoë", "b@x", "C1", "false", R"([{"Name":"vip"}])", std::nullopt, std::nullopt));
}

// The API answers IsDefault, IsMobile and ConsentStatus as JSON booleans and numbers: a
// filter of true/false or a number matches those by value, and still matches strings as text.
TEST(Flattener, AFilterMatchesBooleansAndNumbersByValueAndStringsAsText) {
    auto f = Flattener::compile(sink_with({{"default", "Emails[IsDefault=true].EmailAddress"},
                                           {"other", "Emails[IsDefault=false].EmailAddress"},
                                           {"mobile", "PhoneNumbers[IsMobile=true].PhoneNumber"},
                                           {"consent", "Emails[0].Consents[ConsentStatus=1].ConsentType"},
                                           {"real", "Emails[0].Consents[ConsentStatus=2].ConsentType"},
                                           {"text", "CustomFields[Value=1].Name"},
                                           {"big", "Groups[GroupId=9007199254740993].GroupName"},
                                           {"string", "ProfileTags[Name=1].Name"},
                                           {"none", "Emails[IsDefault=yes].EmailAddress"}}));
    std::vector<OutputRow> rows;
    ASSERT_EQ(f.rows(R"({"Emails": [{"EmailAddress": "a@x", "IsDefault": false,
                                     "Consents": [{"ConsentType": "A", "ConsentStatus": 0},
                                                  {"ConsentType": "B", "ConsentStatus": 1},
                                                  {"ConsentType": "C", "ConsentStatus": 2.0}]},
                                    {"EmailAddress": "b@x", "IsDefault": true}],
        "PhoneNumbers": [{"PhoneNumber": "1", "IsMobile": false}, {"PhoneNumber": "2", "IsMobile": true}],
        "CustomFields": [{"Name": "N", "Value": 1}, {"Name": "S", "Value": "1"}],
        "Groups": [{"GroupName": "G2", "GroupId": 9007199254740992}, {"GroupName": "G3", "GroupId": 9007199254740993}],
        "ProfileTags": [{"Name": "x"}, {"Name": "1"}]})",
                     rows),
              "");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_THAT(rows[0], ElementsAre("b@x", "a@x", "2", "B", "C", "N", "G3", "1", std::nullopt));
}

TEST(Flattener, EachWritesARowPerElement) {
    auto f = Flattener::compile(
        sink_with({{"id", "ProfileId"}, {"type", "@.ConsentType"}, {"at", "@.Edited.ModifiedDate"}}, "Consents"));
    std::vector<OutputRow> rows;
    ASSERT_EQ(f.rows(R"({"ProfileId": 5, "Consents": [{"ConsentType": "A", "Edited": {"ModifiedDate": "d1"}},
                                                     {"ConsentType": "B"}]})",
                     rows),
              "");
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_THAT(rows[0], ElementsAre("5", "A", "d1"));
    EXPECT_THAT(rows[1], ElementsAre("5", "B", std::nullopt));
    rows.clear();
    ASSERT_EQ(f.rows(R"({"ProfileId": 6})", rows), "");
    EXPECT_THAT(rows, IsEmpty()) << "no entries, no rows";
}

TEST(Flattener, BadPathsAreConfigErrorsNamingTheColumn) {
    try {
        Flattener::compile(sink_with({{"a", "Emails[x].EmailAddress"}, {"b", "@.Name"}}));
        FAIL();
    } catch (const config::ConfigError& e) {
        EXPECT_THAT(e.what(), HasSubstr("jobs.x.sink.columns.a: expected [N] or [Key=Value]"));
        EXPECT_THAT(e.what(), HasSubstr("jobs.x.sink.columns.b: @. paths need sink.each"));
    }
}

TEST(Reconcile, ComparesWhatThePushSetsIgnoringServerFieldsAndArrayOrder) {
    auto expected = R"({"CustomerName": {"FirstName": "Ann"}, "Emails": [{"EmailAddress": "a@x", "IsDefault": true},
                       {"EmailAddress": "b@x"}], "CustomFields": [{"Name": "Tier", "Value": "1"}]})";
    EXPECT_THAT(differing_fields(expected, R"({"ProfileId": 1, "CustomerName": {"FirstName": "Ann", "LastName": "L"},
        "Emails": [{"EmailAddress": "b@x", "IsActive": true}, {"EmailAddress": "a@x", "IsDefault": "true"}],
        "CustomFields": [{"Name": "Tier", "Value": "1.0"}]})"),
                ElementsAre("CustomFields[0]"));
    EXPECT_THAT(differing_fields(expected, R"({"CustomerName": {"FirstName": "Anne"}, "Emails": [{"EmailAddress": "a@x",
        "IsDefault": true}, {"EmailAddress": "b@x"}], "CustomFields": [{"Name": "Tier", "Value": 1}]})"),
                ElementsAre("CustomerName.FirstName"));
    EXPECT_THAT(differing_fields(expected, R"({"CustomerName": {"FirstName": "Ann"}})"),
                ElementsAre("Emails", "CustomFields"));
}

// The config around one pull job `p` (and a push job `crm` it may reconcile).
std::string fingerprint_of(
    const std::string& pull_job, const std::string& crm_mapping = "CustomerName.FirstName: first",
    const std::string& api = "base_url: \"https://pm.example.com/Profiles/v2\", client_id: \"1\"") {
    auto text = "api: { " + api +
                ", token_env: T }\n"
                "jobs:\n"
                "  crm:\n"
                "    source: { type: csv, path: crm.csv }\n"
                "    identity: { alternate_id_type: CRMID, column: id }\n"
                "    mapping: { " +
                crm_mapping + " }\n" + pull_job;
    auto config = config::parse_config(text, "/etc/prefsync/prefsync.yaml");
    return pull_fingerprint(config, *config.find_job("p"));
}

TEST(PullFingerprint, FollowsWhatIsFetchedAndWrittenNotHowTheYamlIsSpelled) {
    auto base = fingerprint_of(
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, first: CustomerName.FirstName } }\n");
    EXPECT_EQ(base.size(), 64u);
    // Block style, quotes, a comment and a schedule: the same pull.
    EXPECT_EQ(fingerprint_of("  p:\n    schedule: \"@daily\"\n    source:\n      type: csv\n      path: \"ids.csv\"\n"
                             "    identity: { profile_id_column: pid }\n"
                             "    pull:\n      searches:\n        # the one search\n"
                             "        - endpoint: Email\n          params: { emailAddress: \"a@example.com\" }\n"
                             "    sink:\n      type: csv\n      path: ./out.csv\n"
                             "      columns: { id: ProfileId, first: CustomerName.FirstName }\n"),
              base);
    auto differs = [&](const std::string& job, const std::string& why) { EXPECT_NE(fingerprint_of(job), base) << why; };
    differs(
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: sqlite, path: out.db, table: t, columns: { id: ProfileId, first: "
        "CustomerName.FirstName } }\n",
        "another sink type");
    differs(
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, last: CustomerName.LastName } }\n",
        "other columns");
    differs(
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: b@example.com } },\n"
        "                        { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, first: CustomerName.FirstName } }\n",
        "a search inserted first: search:0 is another search");
    differs(
        "  p:\n    source: { type: csv, path: other.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, first: CustomerName.FirstName } }\n",
        "another source");
    differs(
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { implied: true, searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, first: CustomerName.FirstName } }\n",
        "implied");

    // Another API: resumed, one output would hold two servers' profiles. Not another
    // spelling of the same one.
    const std::string job =
        "  p:\n    source: { type: csv, path: ids.csv }\n    identity: { profile_id_column: pid }\n"
        "    pull: { searches: [ { endpoint: Email, params: { emailAddress: a@example.com } } ] }\n"
        "    sink: { type: csv, path: out.csv, columns: { id: ProfileId, first: CustomerName.FirstName } }\n";
    const std::string mapping = "CustomerName.FirstName: first";
    EXPECT_NE(fingerprint_of(job, mapping, "base_url: \"https://sandbox.example.com/Profiles/v2\", client_id: \"1\""),
              base);
    EXPECT_NE(fingerprint_of(job, mapping, "base_url: \"https://pm.example.com/Profiles/v2\", client_id: \"2\""), base);
    EXPECT_EQ(fingerprint_of(job, mapping, "base_url: \"https://PM.example.com:443/Profiles/v2/\", client_id: \"1\""),
              base);

    // reconcile: the push job's mapping makes the body each profile is compared with.
    auto reconcile = "  p:\n    pull: { reconcile: crm }\n    sink: { type: jsonl, path: back.jsonl }\n";
    EXPECT_EQ(fingerprint_of(reconcile), fingerprint_of(reconcile));
    EXPECT_NE(fingerprint_of(reconcile), fingerprint_of(reconcile, "CustomerName.LastName: first"));
    EXPECT_NE(fingerprint_of(reconcile), fingerprint_of("  p:\n    pull: { reconcile: crm, implied: true }\n"
                                                        "    sink: { type: jsonl, path: back.jsonl }\n"));
}

}  // namespace
}  // namespace prefsync::pull
