// The diff of mirror mode, case by case: each test names a rule of profile_diff.hpp and
// pins the exact patch, then applies it where the outcome on the profile is the point.
#include "daemon/patch/profile_diff.hpp"

#include <gtest/gtest.h>

#include "daemon/patch/json_patch.hpp"

namespace prefsync::patch {
namespace {

json::object obj(std::string_view text) {
    return json::parse(text).as_object();
}

const DiffOptions kRead{.server = ServerView::Read};
const DiffOptions kDeactivate{.removed = RemovedElements::Deactivate};

#define EXPECT_PATCH(actual, expected_text) \
    EXPECT_TRUE(json_equal(actual, json::parse(expected_text))) << "patch: " << json::serialize(actual)

json::object applied(json::object doc, const json::array& patch) {
    json::value v = std::move(doc);
    auto error = apply_patch(v, patch);
    EXPECT_FALSE(error) << error->message << " in " << json::serialize(patch);
    return v.as_object();
}

TEST(ProfileDiff, UnchangedBodyGivesAnEmptyPatchWhateverElseIsOnTheProfile) {
    auto body = obj(R"({"CustomerName":{"FirstName":"Ann","LastName":"Lee"},
        "Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Personal"}],"ProfileTags":[{"Name":"vip"}]})");
    auto server = obj(R"({"ProfileId":7,"UpdateStatus":"Complete","Edited":{"ModifiedDate":"2026-01-01"},
        "DefaultLocale":"fr-FR","CustomerName":{"FirstName":"Ann","LastName":"Lee","Suffix":"Jr"},
        "Emails":[{"EmailAddress":"f@y.com"},{"EmailAddress":"a@x.com","EmailAddressType":"Personal","IsDefault":true}],
        "ProfileTags":[{"Name":"vip"},{"Name":"theirs"}]})");
    EXPECT_PATCH(diff_profile(server, body, body), "[]");
    EXPECT_PATCH(diff_profile(server, body, body, kRead), "[]");
    EXPECT_PATCH(diff_profile(body, body, body), "[]");
}

// A server that writes its own `Edited` into nested elements (the reference's profiles show
// it on an email's Consents) still shows an element without a key as ours: it is recognised
// by what we sent, and its guard tests what the server shows. Testing what we sent failed
// after every read ("the profile changed under the patch twice").
TEST(ProfileDiff, AnElementWithoutAKeyIsRecognisedAndGuardedThroughTheServersOwnNestedFields) {
    auto before = obj(R"({"Emails":[{"EmailAddressType":"Personal","Consents":[{"ConsentType":"Mkt"}]}]})");
    auto after = obj(R"({"Emails":[{"EmailAddress":"new@x.com","EmailAddressType":"Personal"}]})");
    auto server = obj(R"({"Emails":[{"EmailAddressType":"Personal","Edited":{"CreateDate":"d"},
        "Consents":[{"ConsentType":"Mkt","Edited":{"CreateDate":"d"}}]}]})");
    auto ops =
        diff_profile(server, before, after, {.removed = RemovedElements::Deactivate, .server = ServerView::Read});
    EXPECT_PATCH(ops, R"([
        {"op":"test","path":"/Emails/0/EmailAddressType","value":"Personal"},
        {"op":"test","path":"/Emails/0/Consents","value":[{"ConsentType":"Mkt","Edited":{"CreateDate":"d"}}]},
        {"op":"add","path":"/Emails/0/IsActive","value":false},
        {"op":"add","path":"/Emails/-","value":{"EmailAddress":"new@x.com","EmailAddressType":"Personal"}}])");
    auto patched = applied(server, ops);
    EXPECT_EQ(patched.at("Emails").as_array().size(), 2u);
    // Only `Edited` is looked through: a nested field the source cleared still tells the
    // elements apart (matched, the clearing would be taken as done and never sent).
    auto with_status = obj(R"({"Emails":[{"EmailAddressType":"Personal","Consents":[{"ConsentType":"Mkt","S":1}]}]})");
    auto cleared = obj(R"({"Emails":[{"EmailAddressType":"Personal","Consents":[{"ConsentType":"Mkt"}]}]})");
    auto stored = obj(R"({"Emails":[{"EmailAddressType":"Personal","Edited":{"CreateDate":"d"},
        "Consents":[{"ConsentType":"Mkt","S":1,"Edited":{"CreateDate":"d"}}]}]})");
    patched = applied(stored, diff_profile(stored, with_status, cleared, {.server = ServerView::Read}));
    ASSERT_EQ(patched.at("Emails").as_array().size(), 1u);
    EXPECT_FALSE(patched.at("Emails").at(0).at("Consents").at(0).as_object().contains("S"));
    // And at the top level: the element we sent with IsDefault is retired, not matched to
    // the one we want without it.
    auto with_default = obj(R"({"Emails":[{"EmailAddressType":"Personal","IsDefault":true}]})");
    auto without = obj(R"({"Emails":[{"EmailAddressType":"Personal"}]})");
    auto shown = obj(R"({"Emails":[{"EmailAddressType":"Personal","IsDefault":true,"Edited":{"CreateDate":"d"}}]})");
    for (const auto& view : {DiffOptions{}, DiffOptions{.server = ServerView::Read}}) {
        patched = applied(shown, diff_profile(shown, with_default, without, view));
        ASSERT_EQ(patched.at("Emails").as_array().size(), 1u);
        EXPECT_FALSE(patched.at("Emails").at(0).as_object().contains("IsDefault"));
    }
}

TEST(ProfileDiff, ClearedScalarIsRemovedAndForeignFieldsAreNeverTouched) {
    auto server = obj(R"({"CustomerName":{"FirstName":"Ann","MiddleName":"B","Suffix":"Jr"},"CustomerType":"Retail",
                          "DefaultLocale":"fr-FR"})");
    auto owned = obj(R"({"CustomerName":{"FirstName":"Ann","MiddleName":"B"},"CustomerType":"Retail"})");
    auto desired = obj(R"({"CustomerName":{"FirstName":"Ann"}})");
    EXPECT_PATCH(diff_profile(server, owned, desired),
                 R"([{"op":"remove","path":"/CustomerName/MiddleName"},{"op":"remove","path":"/CustomerType"}])");
}

TEST(ProfileDiff, ChangedFieldsAreReplacedNewOnesAddedAForeignFieldWeNowSetIsTakenOver) {
    auto server = obj(R"({"CustomerName":{"FirstName":"Ann"},"ReasonCode":"X"})");
    auto owned = obj(R"({"CustomerName":{"FirstName":"Ann"}})");
    auto desired = obj(R"({"CustomerName":{"FirstName":"Anne","LastName":"Lee"},"ReasonCode":"R1"})");
    EXPECT_PATCH(diff_profile(server, owned, desired), R"([
        {"op":"replace","path":"/CustomerName/FirstName","value":"Anne"},
        {"op":"add","path":"/CustomerName/LastName","value":"Lee"},
        {"op":"replace","path":"/ReasonCode","value":"R1"}])");
}

TEST(ProfileDiff, NullMeansAbsentAndReadOnlyFieldsAreNeverWritten) {
    auto server = obj(R"({"CustomerType":"Retail"})");
    auto owned = obj(R"({"CustomerType":"Retail"})");
    auto desired = obj(R"({"CustomerType":null,"ProfileId":5,"UpdateStatus":"x","Edited":{"CreateDate":"y"},
        "Addresses":[{"Address1":"1 Main St","City":"Springfield","PostalCode":"12345","CassCity":"SPRINGFIELD"}]})");
    EXPECT_PATCH(diff_profile(server, owned, desired, kRead), R"([
        {"op":"add","path":"/Addresses","value":[{"Address1":"1 Main St","City":"Springfield","PostalCode":"12345"}]},
        {"op":"remove","path":"/CustomerType"}])");
}

TEST(ProfileDiff, ANewKeyIsANewElementTheOldOneIsRemovedAndTheNewOneAppended) {
    // Replacing EmailAddress in place would carry the preferences and consents recorded for
    // a@x.com (here a foreign preference) over to an address the person never confirmed.
    auto server = obj(R"({"Emails":[{"EmailAddress":"f@y.com"},
        {"EmailAddress":"a@x.com","EmailAddressType":"Personal","EmailPreferences":[{"ProgramId":"P","ChannelId":"C","FilterId":"F"}]}]})");
    auto owned = obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Personal"}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"b@x.com","EmailAddressType":"Personal"}]})");
    auto patch = diff_profile(server, owned, desired);
    EXPECT_PATCH(patch, R"([
        {"op":"test","path":"/Emails","value":[{"EmailAddress":"f@y.com"},
            {"EmailAddress":"a@x.com","EmailAddressType":"Personal","EmailPreferences":[{"ProgramId":"P","ChannelId":"C","FilterId":"F"}]}]},
        {"op":"test","path":"/Emails/1/EmailAddress","value":"a@x.com"},
        {"op":"remove","path":"/Emails/1"},
        {"op":"add","path":"/Emails/-","value":{"EmailAddress":"b@x.com","EmailAddressType":"Personal"}}])");
    EXPECT_EQ(
        applied(server, patch),
        obj(R"({"Emails":[{"EmailAddress":"f@y.com"},{"EmailAddress":"b@x.com","EmailAddressType":"Personal"}]})"));
}

TEST(ProfileDiff, SameKeyInAnotherSpellingIsReplacedInPlaceBehindAGuardOfTheStoredText) {
    auto before = obj(
        R"({"Emails":[{"EmailAddress":"Ann@X.com"}],"PhoneNumbers":[{"PhoneNumber":"555-010-2000","PhoneType":"Home"}]})");
    auto desired = obj(
        R"({"Emails":[{"EmailAddress":"ann@x.com"}],"PhoneNumbers":[{"PhoneNumber":"(555) 010 2000","PhoneType":"Mobile"}]})");
    EXPECT_PATCH(diff_profile(before, before, desired), R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"Ann@X.com"},
        {"op":"replace","path":"/Emails/0/EmailAddress","value":"ann@x.com"},
        {"op":"test","path":"/PhoneNumbers/0/PhoneNumber","value":"555-010-2000"},
        {"op":"replace","path":"/PhoneNumbers/0/PhoneNumber","value":"(555) 010 2000"},
        {"op":"replace","path":"/PhoneNumbers/0/PhoneType","value":"Mobile"}])");
}

TEST(ProfileDiff, EmptiedListRemovesOurElementsInDescendingOrderAndKeepsForeignOnes) {
    auto server = obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"f@y.com"},{"EmailAddress":"b@x.com"},
                                    {"EmailAddress":"c@x.com"}]})");
    auto owned =
        obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"},{"EmailAddress":"c@x.com"}]})");
    const char* expected = R"([
        {"op":"test","path":"/Emails/3/EmailAddress","value":"c@x.com"},{"op":"remove","path":"/Emails/3"},
        {"op":"test","path":"/Emails/2/EmailAddress","value":"b@x.com"},{"op":"remove","path":"/Emails/2"},
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},{"op":"remove","path":"/Emails/0"}])";
    auto patch = diff_profile(server, owned, obj(R"({"Emails":[]})"));
    EXPECT_PATCH(patch, expected);
    EXPECT_PATCH(diff_profile(server, owned, obj("{}")), expected) << "an absent collection is an empty one";
    EXPECT_EQ(applied(server, patch), obj(R"({"Emails":[{"EmailAddress":"f@y.com"}]})"));
}

TEST(ProfileDiff, InPlaceChangesFirstThenRemovalsHighestIndexFirstThenAppends) {
    auto before = obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Personal"},{"EmailAddress":"b@x.com"},
                                    {"EmailAddress":"c@x.com","EmailAddressType":"Personal"}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"c@x.com","EmailAddressType":"Work"},
        {"EmailAddress":"a@x.com","EmailAddressType":"Work"},{"EmailAddress":"d@x.com"}]})");
    auto patch = diff_profile(before, before, desired);
    EXPECT_PATCH(patch, R"([
        {"op":"test","path":"/Emails","value":[{"EmailAddress":"a@x.com","EmailAddressType":"Personal"},
            {"EmailAddress":"b@x.com"},{"EmailAddress":"c@x.com","EmailAddressType":"Personal"}]},
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
        {"op":"replace","path":"/Emails/0/EmailAddressType","value":"Work"},
        {"op":"test","path":"/Emails/2/EmailAddress","value":"c@x.com"},
        {"op":"replace","path":"/Emails/2/EmailAddressType","value":"Work"},
        {"op":"test","path":"/Emails/1/EmailAddress","value":"b@x.com"},{"op":"remove","path":"/Emails/1"},
        {"op":"add","path":"/Emails/-","value":{"EmailAddress":"d@x.com"}}])");
    EXPECT_EQ(applied(before, patch), obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Work"},
        {"EmailAddress":"c@x.com","EmailAddressType":"Work"},{"EmailAddress":"d@x.com"}]})"));
}

TEST(ProfileDiff, NestedChangesAreGuardedAtEveryLevel) {
    auto before = obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailPreferences":[
        {"ProgramId":"P1","ChannelId":"C","FilterId":"F1","PreferenceStatus":"OptIn"},
        {"ProgramId":"P2","ChannelId":"C","FilterId":"F2","PreferenceStatus":"OptIn"}]}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailPreferences":[
        {"ProgramId":"P1","ChannelId":"C","FilterId":"F1","PreferenceStatus":"OptOut"}]}]})");
    EXPECT_PATCH(diff_profile(before, before, desired), R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
        {"op":"test","path":"/Emails/0/EmailPreferences/0/ProgramId","value":"P1"},
        {"op":"test","path":"/Emails/0/EmailPreferences/0/ChannelId","value":"C"},
        {"op":"test","path":"/Emails/0/EmailPreferences/0/FilterId","value":"F1"},
        {"op":"replace","path":"/Emails/0/EmailPreferences/0/PreferenceStatus","value":"OptOut"},
        {"op":"test","path":"/Emails/0/EmailPreferences/1/ProgramId","value":"P2"},
        {"op":"test","path":"/Emails/0/EmailPreferences/1/ChannelId","value":"C"},
        {"op":"test","path":"/Emails/0/EmailPreferences/1/FilterId","value":"F2"},
        {"op":"remove","path":"/Emails/0/EmailPreferences/1"}])");
}

TEST(ProfileDiff, AForeignElementTheSourceNowListsIsTakenOverInPlaceNotDuplicated) {
    auto server = obj(R"({"Emails":[{"EmailAddress":"X@y.com","IsDefault":true,
        "EmailPreferences":[{"ProgramId":"P","ChannelId":"C","FilterId":"F"}]}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"x@y.com","EmailAddressType":"Work"}]})");
    auto patch = diff_profile(server, obj("{}"), desired, kRead);
    EXPECT_PATCH(patch, R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"X@y.com"},
        {"op":"replace","path":"/Emails/0/EmailAddress","value":"x@y.com"},
        {"op":"add","path":"/Emails/0/EmailAddressType","value":"Work"}])");
    EXPECT_EQ(applied(server, patch), obj(R"({"Emails":[{"EmailAddress":"x@y.com","IsDefault":true,
        "EmailPreferences":[{"ProgramId":"P","ChannelId":"C","FilterId":"F"}],"EmailAddressType":"Work"}]})"));
}

TEST(ProfileDiff, DeactivatePolicyAndItsFallbackForTypesWithoutIsActive) {
    auto server = obj(R"({"Emails":[{"EmailAddress":"a@x.com","IsActive":true},{"EmailAddress":"b@x.com"}],
        "ProfileTags":[{"Name":"t1"},{"Name":"t2"}],"CustomFields":[{"Name":"cf1","Value":"v"}]})");
    auto owned = obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"}],
        "ProfileTags":[{"Name":"t1"},{"Name":"t2"}],"CustomFields":[{"Name":"cf1","Value":"v"}]})");
    auto desired = obj(R"({"Emails":[],"ProfileTags":[{"Name":"t1"}],"CustomFields":[]})");
    auto patch = diff_profile(server, owned, desired, kDeactivate);
    EXPECT_PATCH(patch, R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
        {"op":"replace","path":"/Emails/0/IsActive","value":false},
        {"op":"test","path":"/Emails/1/EmailAddress","value":"b@x.com"},
        {"op":"add","path":"/Emails/1/IsActive","value":false},
        {"op":"test","path":"/ProfileTags/1/Name","value":"t2"},{"op":"remove","path":"/ProfileTags/1"},
        {"op":"test","path":"/CustomFields/0/Name","value":"cf1"},
        {"op":"add","path":"/CustomFields/0/IsActive","value":false}])");
    auto server2 = applied(server, patch);

    // What we deactivated stays ours: nothing more to do while the source leaves it out...
    auto owned2 = owned_after(owned, desired, kDeactivate);
    EXPECT_EQ(
        owned2,
        obj(R"({"Emails":[{"EmailAddress":"a@x.com","IsActive":false},{"EmailAddress":"b@x.com","IsActive":false}],
        "ProfileTags":[{"Name":"t1"}],"CustomFields":[{"Name":"cf1","Value":"v","IsActive":false}]})"));
    EXPECT_PATCH(diff_profile(server2, owned2, desired, kDeactivate), "[]");
    // ...and it comes back active when the source lists it again.
    auto desired3 = obj(R"({"Emails":[{"EmailAddress":"a@x.com"}],"ProfileTags":[{"Name":"t1"}],"CustomFields":[]})");
    EXPECT_PATCH(diff_profile(server2, owned2, desired3, kDeactivate), R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
        {"op":"remove","path":"/Emails/0/IsActive"}])");
}

TEST(ProfileDiff, WhatWeOwnIsKeptInTheServersOrderDeactivatedInPlaceNewLast) {
    const DiffOptions kDeactivate{RemovedElements::Deactivate, ServerView::LastAccepted};
    auto owned = obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"c@x.com"},{"EmailAddress":"b@x.com"}]})");
    EXPECT_EQ(owned_after(owned, desired, kDeactivate),
              obj(R"({"Emails":[{"EmailAddress":"a@x.com","IsActive":false},{"EmailAddress":"b@x.com"},
                  {"EmailAddress":"c@x.com"}]})"))
        << "a deactivated where it was, b where it was, c appended: as the server holds them";
    // A journal written in another order, corrected by the profile as read.
    auto stale = obj(R"({"Emails":[{"EmailAddress":"b@x.com"},{"EmailAddress":"a@x.com","IsActive":false}]})");
    auto server = obj(R"({"Emails":[{"EmailAddress":"a@x.com","IsActive":false},{"EmailAddress":"o@other.com"},
                      {"EmailAddress":"b@x.com"}]})");
    const DiffOptions kRead{RemovedElements::Deactivate, ServerView::Read};
    auto desired2 = obj(R"({"Emails":[{"EmailAddress":"b@x.com"},{"EmailAddress":"d@x.com"}]})");
    EXPECT_EQ(owned_after(stale, desired2, kRead, &server),
              obj(R"({"Emails":[{"EmailAddress":"a@x.com","IsActive":false},{"EmailAddress":"b@x.com"},
                  {"EmailAddress":"d@x.com"}]})"));
}

TEST(ProfileDiff, ContainersTheLastAcceptedViewLacksAreFilledMemberByMember) {
    auto desired = obj(R"({"CustomerName":{"FirstName":"Ann"},"Emails":[{"EmailAddress":"a@x.com"}]})");
    auto patch = diff_profile(obj("{}"), obj("{}"), desired);
    EXPECT_PATCH(patch, R"([{"op":"add","path":"/CustomerName/FirstName","value":"Ann"},
                            {"op":"test","path":"/Emails","value":[]},
                            {"op":"add","path":"/Emails/-","value":{"EmailAddress":"a@x.com"}}])");
    EXPECT_PATCH(diff_profile(obj("{}"), obj("{}"), desired, kRead), R"([
        {"op":"add","path":"/CustomerName","value":{"FirstName":"Ann"}},
        {"op":"add","path":"/Emails","value":[{"EmailAddress":"a@x.com"}]}])");
    // On a profile that has them (data we never saw), nothing of theirs is overwritten...
    auto profile = obj(R"({"CustomerName":{"LastName":"Lee"},"Emails":[]})");
    EXPECT_EQ(applied(profile, patch), obj(R"({"CustomerName":{"LastName":"Lee","FirstName":"Ann"},
        "Emails":[{"EmailAddress":"a@x.com"}]})"));
    // ...an array holding elements we never saw fails the patch, which might append one of
    // them again (their key is our key); so does a profile that lacks them. Either way the
    // engine reads and diffs again.
    for (auto text : {R"({"CustomerName":{"LastName":"Lee"},"Emails":[{"EmailAddress":"f@y.com"}]})", "{}"}) {
        json::value read = json::parse(text);
        auto error = apply_patch(read, patch);
        ASSERT_TRUE(error) << text;
        EXPECT_NE(error->kind, PatchErrorKind::Invalid) << text;
    }
}

TEST(ProfileDiff, AnAppendOnTheWordOfTheLastAcceptedBodyNeverAddsAnElementTwice) {
    // Another client (or an earlier mode of this job) added c@x.com since our last accepted
    // body. Appending it on that body's word would put it on the profile twice; the whole
    // array's test fails instead, and the diff against the profile as read takes it over.
    auto owned = obj(R"({"Emails":[{"EmailAddress":"a@x.com"}]})");
    auto desired = obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"c@x.com"}]})");
    auto patch = diff_profile(owned, owned, desired);
    EXPECT_PATCH(patch, R"([{"op":"test","path":"/Emails","value":[{"EmailAddress":"a@x.com"}]},
                            {"op":"add","path":"/Emails/-","value":{"EmailAddress":"c@x.com"}}])");
    json::value profile = json::parse(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"c@x.com"}]})");
    auto error = apply_patch(profile, patch);
    ASSERT_TRUE(error);
    EXPECT_EQ(error->kind, PatchErrorKind::TestFailed);
    auto replanned = diff_profile(profile.as_object(), owned, desired, kRead);
    EXPECT_PATCH(replanned, "[]");
    // Where nobody added anything the patch applies as planned.
    EXPECT_EQ(applied(owned, patch), desired);
}

TEST(ProfileDiff, ShiftedArrayFailsTheGuardInsteadOfChangingAnotherElement) {
    auto view = obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"}]})");
    auto desired =
        obj(R"({"Emails":[{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com","EmailAddressType":"Work"}]})");
    auto patch = diff_profile(view, view, desired);
    EXPECT_PATCH(patch, R"([{"op":"test","path":"/Emails/1/EmailAddress","value":"b@x.com"},
                            {"op":"add","path":"/Emails/1/EmailAddressType","value":"Work"}])");
    for (auto real_text :
         {R"({"Emails":[{"EmailAddress":"f@y.com"},{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"}]})",
          R"({"Emails":[{"EmailAddress":"a@x.com"}]})"}) {
        json::value real = json::parse(real_text);
        const auto before = real;
        auto error = apply_patch(real, patch);
        ASSERT_TRUE(error) << real_text;
        EXPECT_EQ(error->kind, PatchErrorKind::TestFailed);
        EXPECT_EQ(error->op_index, 0u);
        EXPECT_EQ(real, before);
    }
    // The engine's second attempt diffs against the profile as read.
    auto real = obj(R"({"Emails":[{"EmailAddress":"f@y.com"},{"EmailAddress":"a@x.com"},{"EmailAddress":"b@x.com"}]})");
    auto retry = diff_profile(real, view, desired, kRead);
    EXPECT_PATCH(retry, R"([{"op":"test","path":"/Emails/2/EmailAddress","value":"b@x.com"},
                            {"op":"add","path":"/Emails/2/EmailAddressType","value":"Work"}])");
    applied(real, retry);
}

TEST(ProfileDiff, ReadViewCorrectsDriftOfOwnedFieldsTheLastAcceptedViewCannotSee) {
    auto owned = obj(R"({"CustomerName":{"FirstName":"Ann"}})");
    auto real = obj(R"({"CustomerName":{"FirstName":"Bob"}})");
    EXPECT_PATCH(diff_profile(owned, owned, owned), "[]");
    EXPECT_PATCH(diff_profile(real, owned, owned, kRead),
                 R"([{"op":"replace","path":"/CustomerName/FirstName","value":"Ann"}])");
}

TEST(ProfileDiff, ElementsWithTheSameKeyInOneBodyAreMergedLaterFieldsWinning) {
    auto desired = obj(R"({"Emails":[{"EmailAddress":"a@x.com","EmailAddressType":"Personal"},
                                     {"EmailAddress":"A@x.com","IsDefault":true}]})");
    const char* merged = R"([{"EmailAddress":"A@x.com","EmailAddressType":"Personal","IsDefault":true}])";
    EXPECT_PATCH(diff_profile(obj("{}"), obj("{}"), desired, kRead),
                 std::string(R"([{"op":"add","path":"/Emails","value":)") + merged + "}]");
    EXPECT_EQ(owned_after(obj("{}"), desired), obj(std::string(R"({"Emails":)") + merged + "}"));
}

TEST(ProfileDiff, ElementsWithoutAKeyAreMatchedByContentAndGuardedOnEveryField) {
    auto desired = obj(R"({"PhoneNumbers":[{"PhoneType":"Home","PhoneNumber":"n/a"}]})");
    auto server = obj(R"({"PhoneNumbers":[{"PhoneNumber":"555-0100"}]})");
    auto patch = diff_profile(server, obj("{}"), desired, kRead);
    EXPECT_PATCH(patch, R"([{"op":"add","path":"/PhoneNumbers/-","value":{"PhoneType":"Home","PhoneNumber":"n/a"}}])");
    auto server2 = applied(server, patch);
    server2["PhoneNumbers"].as_array()[1].as_object()["Edited"] = json::object{{"CreateDate", "2026-01-01"}};
    auto owned2 = owned_after(obj("{}"), desired);
    EXPECT_PATCH(diff_profile(server2, owned2, desired, kRead), "[]") << "fields the server adds do not matter";
    EXPECT_PATCH(diff_profile(server2, owned2, obj("{}"), kRead), R"([
        {"op":"test","path":"/PhoneNumbers/1/PhoneType","value":"Home"},
        {"op":"test","path":"/PhoneNumbers/1/PhoneNumber","value":"n/a"},
        {"op":"remove","path":"/PhoneNumbers/1"}])");
}

TEST(ProfileDiff, FieldsTheSchemaDoesNotKnowAreWholeValuesWithEscapedPaths) {
    auto before = obj(R"({"We/ird~Key":[1]})");
    EXPECT_PATCH(diff_profile(before, before, obj(R"({"We/ird~Key":[1,2]})")),
                 R"([{"op":"replace","path":"/We~1ird~0Key","value":[1,2]}])");
}

TEST(ProfileDiff, OwnedAfterIsTheCleanedDesiredBodyWhenRemoving) {
    auto desired = obj(R"({"CustomerType":null,"ProfileId":1,"CustomerName":{"FirstName":"Ann","MiddleName":null}})");
    EXPECT_EQ(owned_after(obj(R"({"Emails":[{"EmailAddress":"a@x.com"}]})"), desired),
              obj(R"({"CustomerName":{"FirstName":"Ann"}})"));
    EXPECT_EQ(compact_body(desired), R"({"CustomerName":{"FirstName":"Ann"}})");
}

TEST(DiffValues, GenericDiffByPosition) {
    auto from = json::parse(R"({"a":1,"b":[1,2,3],"c":{"d":true},"gone":0})");
    auto to = json::parse(R"({"a":2,"b":[1,5],"c":{"d":true,"e":null},"new":[]})");
    auto patch = diff_values(from, to);
    EXPECT_PATCH(patch, R"([
        {"op":"remove","path":"/gone"},
        {"op":"replace","path":"/a","value":2},
        {"op":"replace","path":"/b/1","value":5},{"op":"remove","path":"/b/2"},
        {"op":"add","path":"/c/e","value":null},
        {"op":"add","path":"/new","value":[]}])");
    EXPECT_PATCH(diff_values(json::parse("[1]"), json::parse(R"({"x":1})")),
                 R"([{"op":"replace","path":"","value":{"x":1}}])");
}

}  // namespace
}  // namespace prefsync::patch
