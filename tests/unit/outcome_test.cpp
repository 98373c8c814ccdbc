#include "daemon/api/outcome.hpp"

#include <gtest/gtest.h>

#include <boost/url.hpp>

#include "daemon/api/requests.hpp"

namespace prefsync::api {
namespace {

struct Row {
    Operation op;
    Transport transport;
    int status;
    const char* body;
    Outcome expected;
};

// The status → outcome table (docs/ARCHITECTURE.md, section 2.1), one row per case.
const Row kTable[] = {
    {Operation::Upsert, Transport::Answered, 200, "", Outcome::Done},
    {Operation::Upsert, Transport::Answered, 204, "", Outcome::Done},
    {Operation::Upsert, Transport::Answered, 202, "", Outcome::Accepted},
    {Operation::Upsert, Transport::Answered, 400, "", Outcome::Failed},
    {Operation::Upsert, Transport::Answered, 401, "", Outcome::Fatal},
    {Operation::Upsert, Transport::Answered, 403, "", Outcome::Failed},
    {Operation::Search, Transport::Answered, 403, "", Outcome::Failed},
    {Operation::Update, Transport::Answered, 404, R"({"Message":"profile 1 not found"})", Outcome::Failed},
    {Operation::Update, Transport::Answered, 404, R"({"Message":"unknown clientId \"9\""})", Outcome::Fatal},
    {Operation::Upsert, Transport::Answered, 409, "", Outcome::Failed},
    {Operation::Create, Transport::Answered, 409, "", Outcome::Unknown},
    {Operation::Upsert, Transport::Answered, 408, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 413, "", Outcome::Failed},
    {Operation::Upsert, Transport::Answered, 429, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 500, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 502, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 503, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 504, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 599, "", Outcome::Retry},
    {Operation::Upsert, Transport::Answered, 418, "", Outcome::Failed},
    {Operation::Upsert, Transport::NotSent, 0, "", Outcome::Retry},
    {Operation::Create, Transport::NotSent, 0, "", Outcome::Retry},
    // Request sent, no answer: idempotent writes retry, a create must be resolved first.
    {Operation::Upsert, Transport::NoAnswer, 0, "", Outcome::Retry},
    {Operation::Replace, Transport::NoAnswer, 0, "", Outcome::Retry},
    {Operation::Delete, Transport::NoAnswer, 0, "", Outcome::Retry},
    {Operation::Create, Transport::NoAnswer, 0, "", Outcome::Unknown},
    {Operation::Read, Transport::NoAnswer, 0, "", Outcome::Retry},
};

TEST(Outcome, ClassificationTable) {
    for (const auto& row : kTable) {
        auto c = classify(row.op, row.transport, row.status, row.body);
        EXPECT_EQ(c.outcome, row.expected)
            << "status " << row.status << " transport " << static_cast<int>(row.transport) << " op "
            << static_cast<int>(row.op) << ": got " << to_string(c.outcome);
        EXPECT_FALSE(c.reason.empty());
    }
}

TEST(Outcome, RetryAfterSecondsOrHttpDate) {
    auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
    EXPECT_EQ(parse_retry_after("120", now), std::chrono::seconds(120));
    EXPECT_EQ(parse_retry_after(" 0 ", now), std::chrono::seconds(0));
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), std::chrono::seconds(60));
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:40:37 GMT", now), std::chrono::seconds(0)) << "past: now";
    EXPECT_EQ(parse_retry_after("", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT and more", now), std::nullopt);
}

TEST(Outcome, RetryAfterIsClampedToADayAndNeverOverflows) {
    auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
    EXPECT_EQ(kMaxRetryAfter, std::chrono::hours(24));
    EXPECT_EQ(parse_retry_after("86400", now), std::chrono::hours(24));
    EXPECT_EQ(parse_retry_after("86401", now), kMaxRetryAfter);
    EXPECT_EQ(parse_retry_after("9223372036854775807", now), kMaxRetryAfter);
    EXPECT_EQ(parse_retry_after("99999999999999999999", now), kMaxRetryAfter) << "too long for 64 bits: still a delay";
    EXPECT_EQ(parse_retry_after("-99999999999999999999", now), std::nullopt);
    EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:36 GMT", now), std::chrono::seconds(86399));
    // 8,000 years ahead: past what a nanosecond time_point holds (about 292 years).
    EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), kMaxRetryAfter);
    // What the engine does with the value.
    auto start = std::chrono::steady_clock::now();
    EXPECT_GT(start + *parse_retry_after("9223372036854775807", now), start);
}

TEST(Requests, TargetsEscapeQueryValuesAndFollowTheBaseUrl) {
    RequestBuilder b(parse_base_url("https://pm.example.com/Profiles/v2/"), "12345");
    EXPECT_EQ(b.base().host, "pm.example.com");
    EXPECT_EQ(b.base().port, "443");
    auto r = b.upsert("CRM ID", "a&b=c/ü", "{}");
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target,
              "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRM%20ID&alternateId=a%26b%3Dc%2F%C3%BC")
        << "all but unreserved characters escaped";
    EXPECT_EQ(b.create("{}").target, "/Profiles/v2/12345/Profile");
    EXPECT_EQ(b.update(42, "{}").target, "/Profiles/v2/12345/Profile/42");
    EXPECT_EQ(b.replace(42, "{}").method, "PUT");
    EXPECT_EQ(b.remove(42, "GDPR request").target, "/Profiles/v2/12345/Profile/42?reasonCode=GDPR%20request");
    EXPECT_EQ(b.archive(42, "{}").target, "/Profiles/v2/12345/Profile/Preferences/42/Archive");
    EXPECT_EQ(b.get("T", "1", true).target,
              "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=T&alternateId=1&matchInactive=true");
    EXPECT_EQ(b.read("CRMID", "Az09-._~", {true, true}).target,
              "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRMID&alternateId=Az09-._~&implied=true"
              "&matchInactive=true")
        << "unreserved characters as they are";
    EXPECT_EQ(b.read("CRMID", "a+b c", {}).target,
              "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRMID&alternateId=a%2Bb%20c")
        << "+ would read as a space";
    EXPECT_EQ(RequestBuilder(parse_base_url("https://pm.example.com"), "12345").upsert("T", "1", "{}").target,
              "/12345/Profile/AlternateId?alternateIdType=T&alternateId=1")
        << "a base URL without a path";
    auto local = parse_base_url("http://127.0.0.1:8080/Profiles/v2");
    EXPECT_EQ(local.port, "8080");
    EXPECT_THROW(parse_base_url("ftp://x/y"), std::invalid_argument);
    EXPECT_EQ(profile_id_of(R"({"AlternateId":"x","ProfileId":1000001,"UpdateStatus":"Pending Update"})"), 1000001);
    EXPECT_EQ(profile_id_of("not json"), std::nullopt);
}

TEST(Requests, AReusedProfileIdReaderReadsEachAnswerOnItsOwn) {
    ProfileIdReader read;
    std::string big = R"({"Note":")" + std::string(5000, 'x') + R"(","ProfileId":7})";
    EXPECT_EQ(read(big), 7);
    EXPECT_EQ(read(R"({"ProfileId":8})"), 8) << "a shorter answer after a longer one";
    EXPECT_EQ(read(R"({"Profile)"), std::nullopt) << "nothing of the longer answer is read past the end";
    EXPECT_EQ(read(""), std::nullopt);
    EXPECT_EQ(read(R"({"ProfileId":9,"AlternateIds":[]})"), 9);
    std::string huge = R"({"Note":")" + std::string(200000, 'y') + R"(","ProfileId":10})";
    EXPECT_EQ(read(huge), 10) << "read with buffers of its own";
    EXPECT_EQ(read(R"({"ProfileId":11})"), 11);
}

// The targets as they were built before the profile prefix was computed once (a URL object
// per request, every segment pushed through Boost.URL), rooted: without a base path they
// lacked the leading "/". The builder must produce the same paths; query values are encoded
// but for unreserved characters (Boost.URL would leave a '+', which the server reads as a space).
std::string reference_target(const BaseUrl& base, const std::string& client, const std::vector<std::string>& segments,
                             const std::vector<std::pair<std::string, std::string>>& params) {
    boost::urls::url u;
    u.set_encoded_path(base.path);
    u.set_path_absolute(true);
    u.segments().push_back(client);
    u.segments().push_back("Profile");
    for (const auto& s : segments) u.segments().push_back(s);
    std::string target(u.encoded_path());
    char separator = '?';
    for (const auto& [k, v] : params) {
        target += separator + k + "=" + boost::urls::encode(v, boost::urls::unreserved_chars);
        separator = '&';
    }
    return target;
}

TEST(Requests, TargetsAreThoseBoostUrlBuildsForTheRootedBasePathAndAnyClientId) {
    for (std::string url :
         {"https://h/Profiles/v2/", "https://h", "https://h/", "http://h:1/a%20b/c%2Fd", "https://h/x:y/@z"}) {
        for (std::string client : {"12345", "a b", "\xc3\xbc/x", "%41", "a?b#c"}) {
            auto base = parse_base_url(url);
            RequestBuilder b(base, client);
            auto ref = [&](std::vector<std::string> segs,
                           std::vector<std::pair<std::string, std::string>> params = {}) {
                return reference_target(base, client, segs, params);
            };
            SCOPED_TRACE(url + " client " + client);
            EXPECT_EQ(b.create("{}").target, ref({}));
            EXPECT_TRUE(b.create("{}").target.starts_with("/")) << "an origin-form request target";
            EXPECT_EQ(b.archive(4, "{}").target, ref({"Preferences", "4", "Archive"}));
            EXPECT_EQ(b.update(42, "{}").target, ref({"42"}));
            EXPECT_EQ(b.get(-7).target, ref({"-7"}));
            EXPECT_EQ(b.remove(9, "r c").target, ref({"9"}, {{"reasonCode", "r c"}}));
            EXPECT_EQ(b.upsert("CRM ID", "a&b=c/\xc3\xbc#+", "{}").target,
                      ref({"AlternateId"}, {{"alternateIdType", "CRM ID"}, {"alternateId", "a&b=c/\xc3\xbc#+"}}));
            EXPECT_EQ(b.read(5, {}).target, ref({"5"}));
            EXPECT_EQ(b.read(5, {true, false}).target, ref({"5"}, {{"implied", "true"}}));
            EXPECT_EQ(b.read("T", "1 2", {true, true}).target, ref({"AlternateId"}, {{"alternateIdType", "T"},
                                                                                     {"alternateId", "1 2"},
                                                                                     {"implied", "true"},
                                                                                     {"matchInactive", "true"}}));
            EXPECT_EQ(b.history("Consents", 3, "f").target, ref({"History", "Consents", "3"}, {{"filterId", "f"}}));
        }
    }
}

// The reference lists `implied` for every search but S2, S3 (custom fields) and S8 (attributes).
TEST(Requests, ImpliedOnlyForTheSearchesWhoseReferenceListsIt) {
    for (auto endpoint : {"CustomFields", "CustomFields/SelectList", "Attributes"})
        EXPECT_FALSE(search_takes_implied(endpoint)) << endpoint;
    for (auto endpoint : {"Address", "Email", "Name", "Name/Partial", "Phone", "Tags", "Groups", "Groups/AlternateId",
                          "Groups/Email", "Groups/Phone", "Groups/Primary/42"})
        EXPECT_TRUE(search_takes_implied(endpoint)) << endpoint;
}

TEST(ServerMessage, TheTextOfTheMessageAndOfEachFieldErrorNotTheJsonAroundIt) {
    EXPECT_EQ(server_message(R"j({"Message":"Emails[0].EmailAddress: not an email address"})j"),
              "Emails[0].EmailAddress: not an email address");
    EXPECT_EQ(server_message(R"j({"Id":7,"Message":"in use (ProfileId 1000004)","Trace":"x"})j"),
              "in use (ProfileId 1000004)");
    EXPECT_EQ(server_message(R"j({"Message":"The request is invalid.","ModelState":)j"
                             R"j({"profile.Emails[0]":["bad address","too long"],"profile.X":["no"]}})j"),
              "The request is invalid.; profile.Emails[0]: bad address; profile.Emails[0]: too long; profile.X: no");
    EXPECT_EQ(server_message("  <html>Bad Gateway</html>\n"), "<html>Bad Gateway</html>") << "not JSON: as it is";
    EXPECT_EQ(server_message(R"j({"Other":"x"})j"), R"j({"Other":"x"})j");
    EXPECT_EQ(server_message(""), "");
    auto cut = server_message(std::string(299, 'a') + "\xc3\xa9tail");
    EXPECT_EQ(cut, std::string(299, 'a') + "...") << "never half a UTF-8 character";
}

}  // namespace
}  // namespace prefsync::api
