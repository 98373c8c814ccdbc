// The emulator's PATCH (ProfileStore::patch) applies through daemon/patch and keeps the API's
// own rules; a mirror-mode patch from diff_profile is one it accepts, and a stale one it
// refuses with 409 and leaves the profile as it was.
#include <gtest/gtest.h>

#include "daemon/emulator/profile_store.hpp"
#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/profile_diff.hpp"

namespace prefsync::patch {
namespace {

struct Store {
    emulator::ProfileStore store{[] { return std::chrono::system_clock::time_point{}; }, std::chrono::milliseconds(0)};
    emulator::AltId alt{"CRMID", "C1"};
    std::int64_t id = 0;

    explicit Store(std::string_view body) {
        store.upsert(alt, json::parse(body).as_object());
        id = *store.find(alt);
    }
    json::object read() { return store.get(id, true).body.as_object(); }
    emulator::Reply patch(std::string_view ops) { return store.patch(id, json::parse(ops).as_array()); }
};

TEST(EmulatorPatch, KeepsTheApiRulesOnTopOfRfc6902) {
    Store s(R"({"CustomerName":{"FirstName":"Ann"},"Emails":[{"EmailAddress":"a@x.com"}]})");
    const auto before = s.read();
    EXPECT_EQ(s.patch(R"([{"op":"copy","from":"/CustomerName","path":"/X"}])").status, 400);
    EXPECT_EQ(s.patch(R"([{"op":"replace","path":"/Edited/CreatedBy","value":"me"}])").status, 400);
    EXPECT_EQ(s.patch(R"([{"op":"replace","path":"","value":{}}])").status, 400);
    EXPECT_EQ(s.patch(R"([{"op":"add","path":"/Colour","value":"red"}])").status, 400) << "result is not a profile";
    EXPECT_EQ(s.patch(R"([{"op":"remove","path":"/Emails/3"}])").status, 400);
    auto r = s.patch(R"([{"op":"replace","path":"/CustomerName/FirstName","value":"Bo"},
                         {"op":"test","path":"/Emails/1/EmailAddress","value":"a@x.com"}])");
    EXPECT_EQ(r.status, 409) << "a guard on an element that is not there is a conflict";
    EXPECT_NE(json::serialize(r.body).find("Operations[1]: test failed"), std::string::npos) << r.body;
    EXPECT_EQ(s.read(), before) << "nothing applied";
    r = s.patch(R"([{"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
                    {"op":"replace","path":"/CustomerName/FirstName","value":"Bo"}])");
    EXPECT_EQ(r.status, 200) << r.body;
}

TEST(EmulatorPatch, AcceptsAMirrorPatchAndRefusesAStaleOne) {
    // The profile holds foreign data around ours: an email before ours, a consent inside it.
    Store s(R"({"Emails":[{"EmailAddress":"f@y.com"},
        {"EmailAddress":"a@x.com","Consents":[{"ConsentType":"Marketing","ConsentVersion":"v1"}]}],
        "CustomerName":{"FirstName":"Ann","LastName":"Lee"},"DefaultLocale":"fr-FR"})");
    auto owned =
        json::parse(R"({"Emails":[{"EmailAddress":"a@x.com"}],"CustomerName":{"FirstName":"Ann"}})").as_object();
    auto desired = json::parse(R"({"Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Work"},
        {"EmailAddress":"b@x.com"}],"CustomerName":{"FirstName":"Anne"}})")
                       .as_object();

    auto stale = diff_profile(owned, owned, desired);  // our own body: a@x.com at index 0
    auto r = s.store.patch(s.id, stale);
    EXPECT_EQ(r.status, 409) << r.body;

    auto read = s.read();
    auto fresh = diff_profile(read, owned, desired, {.server = ServerView::Read});
    r = s.store.patch(s.id, fresh);
    ASSERT_EQ(r.status, 200) << r.body << "\n" << json::serialize(fresh);
    auto after = s.read();
    EXPECT_EQ(after.at("DefaultLocale"), "fr-FR");
    EXPECT_EQ(after.at("CustomerName"), json::parse(R"({"FirstName":"Anne","LastName":"Lee"})"));
    EXPECT_EQ(after.at("Emails"), json::parse(R"([{"EmailAddress":"f@y.com"},
        {"EmailAddress":"a@x.com","Consents":[{"ConsentType":"Marketing","ConsentVersion":"v1"}],"EmailAddressType":"Work"},
        {"EmailAddress":"b@x.com"}])"));
    EXPECT_TRUE(diff_profile(after, owned_after(owned, desired), desired, {.server = ServerView::Read}).empty());
}

}  // namespace
}  // namespace prefsync::patch
