#include "daemon/api/outcome.hpp"

#include <gtest/gtest.h>

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
    EXPECT_EQ(r.target, "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=CRM%20ID&alternateId=a%26b=c/%C3%BC")
        << "& escaped; = is legal inside a value";
    EXPECT_EQ(b.create("{}").target, "/Profiles/v2/12345/Profile");
    EXPECT_EQ(b.update(42, "{}").target, "/Profiles/v2/12345/Profile/42");
    EXPECT_EQ(b.replace(42, "{}").method, "PUT");
    EXPECT_EQ(b.remove(42, "GDPR request").target, "/Profiles/v2/12345/Profile/42?reasonCode=GDPR%20request");
    EXPECT_EQ(b.archive(42, "{}").target, "/Profiles/v2/12345/Profile/Preferences/42/Archive");
    EXPECT_EQ(b.get("T", "1", true).target,
              "/Profiles/v2/12345/Profile/AlternateId?alternateIdType=T&alternateId=1&matchInactive=true");
    auto local = parse_base_url("http://127.0.0.1:8080/Profiles/v2");
    EXPECT_EQ(local.port, "8080");
    EXPECT_THROW(parse_base_url("ftp://x/y"), std::invalid_argument);
    EXPECT_EQ(profile_id_of(R"({"AlternateId":"x","ProfileId":1000001,"UpdateStatus":"Pending Update"})"), 1000001);
    EXPECT_EQ(profile_id_of("not json"), std::nullopt);
}

}  // namespace
}  // namespace prefsync::api
