// RFC 6902 application and RFC 6901 pointers: what the conformance suite does not pin down
// — which kind of failure, at which operation, atomicity, strict index syntax, numeric
// equality in `test`, move/copy behind their option.
#include "daemon/patch/json_patch.hpp"

#include <gtest/gtest.h>

#include "daemon/patch/json_pointer.hpp"

namespace prefsync::patch {
namespace {

json::value doc_of(std::string_view text) {
    return json::parse(text);
}
json::array ops(std::string_view text) {
    return json::parse(text).as_array();
}

TEST(JsonPointer, ParsesEscapesAndTheEmptyTokens) {
    EXPECT_EQ(parse_pointer(""), std::vector<std::string>{});
    EXPECT_EQ(parse_pointer("/"), std::vector<std::string>{""});
    EXPECT_EQ(parse_pointer("/a~1b/m~0n/~01"), (std::vector<std::string>{"a/b", "m~n", "~1"}));
    EXPECT_EQ(parse_pointer("/foo/"), (std::vector<std::string>{"foo", ""}));
    EXPECT_FALSE(parse_pointer("foo"));
    EXPECT_FALSE(parse_pointer("/a~2"));
    EXPECT_FALSE(parse_pointer("/a~"));
}

TEST(JsonPointer, AppendTokenEscapesWhatParseUnescapes) {
    std::string p;
    append_token(p, "a/b~c");
    EXPECT_EQ(p, "/a~1b~0c");
    EXPECT_EQ(parse_pointer(p), std::vector<std::string>{"a/b~c"});
    EXPECT_EQ(append_index("/Emails", 3), "/Emails/3");
}

TEST(JsonPointer, ArrayIndexRules) {
    EXPECT_EQ(array_index("0", 2, IndexUse::Existing), 0u);
    EXPECT_EQ(array_index("1", 2, IndexUse::Existing), 1u);
    EXPECT_FALSE(array_index("2", 2, IndexUse::Existing));
    EXPECT_EQ(array_index("2", 2, IndexUse::Insert), 2u);
    EXPECT_FALSE(array_index("3", 2, IndexUse::Insert));
    EXPECT_EQ(array_index("-", 2, IndexUse::Insert), 2u);
    EXPECT_FALSE(array_index("-", 2, IndexUse::Existing));
    for (auto bad : {"01", "00", "-1", "1e0", "+1", " 1", "", "x"})
        EXPECT_FALSE(array_index(bad, 100, IndexUse::Insert)) << bad;
    EXPECT_FALSE(array_index("99999999999999999999999999", 5, IndexUse::Insert)) << "no overflow into range";
}

TEST(JsonPatch, AppliesAllFourApiOperations) {
    auto doc = doc_of(R"({"CustomerName":{"FirstName":"Ann"},"Emails":[{"EmailAddress":"a@x.com"}]})");
    auto error = apply_patch(doc, ops(R"([
        {"op":"test","path":"/Emails/0/EmailAddress","value":"a@x.com"},
        {"op":"replace","path":"/CustomerName/FirstName","value":"Annie"},
        {"op":"add","path":"/Emails/-","value":{"EmailAddress":"b@x.com"}},
        {"op":"add","path":"/Emails/0","value":{"EmailAddress":"c@x.com"}},
        {"op":"remove","path":"/Emails/1"}])"));
    ASSERT_FALSE(error) << error->message;
    EXPECT_TRUE(json_equal(doc, doc_of(R"({"CustomerName":{"FirstName":"Annie"},
        "Emails":[{"EmailAddress":"c@x.com"},{"EmailAddress":"b@x.com"}]})")));
}

TEST(JsonPatch, FailedTestIsATestFailureNamingTheOperationAndNothingIsApplied) {
    auto doc = doc_of(R"({"a":1,"list":[{"k":"x"}]})");
    const auto before = doc;
    auto error = apply_patch(doc, ops(R"([
        {"op":"replace","path":"/a","value":2},
        {"op":"add","path":"/list/-","value":{"k":"y"}},
        {"op":"test","path":"/list/0/k","value":"z"}])"));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->kind, PatchErrorKind::TestFailed);
    EXPECT_EQ(error->op_index, 2u);
    EXPECT_NE(error->message.find("test failed at \"/list/0/k\""), std::string::npos) << error->message;
    EXPECT_EQ(doc, before) << "atomic: the two earlier operations are not kept";
}

TEST(JsonPatch, TestOfALocationThatIsNotThereIsATestFailure) {
    // A guard on an element that moved away must read as a conflict, not as a bad request.
    for (auto path : {"/list/5/k", "/list/01/k", "/nope", "/a/b"}) {
        auto doc = doc_of(R"({"a":1,"list":[{"k":"x"}]})");
        json::array patch{json::object{{"op", "test"}, {"path", path}, {"value", "x"}}};
        auto error = apply_patch(doc, patch);
        ASSERT_TRUE(error) << path;
        EXPECT_EQ(error->kind, PatchErrorKind::TestFailed) << path;
    }
}

TEST(JsonPatch, MalformedOperationsAreInvalid) {
    struct Case {
        const char* patch;
        const char* message;
    };
    const Case cases[] = {
        {R"([{"path":"/a","value":1}])", "missing \"op\""},
        {R"([{"op":"spam","path":"/a","value":1}])", "unknown op \"spam\""},
        {R"([{"op":"add","value":1}])", "missing \"path\""},
        {R"([{"op":"add","path":null,"value":1}])", "\"path\" must be a string"},
        {R"([{"op":"add","path":"a","value":1}])", "not a JSON Pointer"},
        {R"([{"op":"add","path":"/a~2","value":1}])", "not a JSON Pointer"},
        {R"([{"op":"replace","path":"/a"}])", "needs a \"value\""},
        {R"([{"op":"test","path":"/a"}])", "needs a \"value\""},
        {R"([7])", "must be an object"},
    };
    for (const auto& c : cases) {
        auto doc = doc_of(R"({"a":1})");
        auto error = apply_patch(doc, ops(c.patch));
        ASSERT_TRUE(error) << c.patch;
        EXPECT_EQ(error->kind, PatchErrorKind::Invalid) << c.patch;
        EXPECT_EQ(error->op_index, 0u);
        EXPECT_NE(error->message.find(c.message), std::string::npos) << c.patch << " → " << error->message;
    }
}

TEST(JsonPatch, OperationsThatDoNotFitTheDocumentAreUnappliable) {
    const char* cases[] = {
        R"([{"op":"remove","path":"/missing"}])",
        R"([{"op":"replace","path":"/missing","value":1}])",
        R"([{"op":"add","path":"/missing/child","value":1}])",
        R"([{"op":"add","path":"/list/3","value":1}])",
        R"([{"op":"add","path":"/list/01","value":1}])",
        R"([{"op":"remove","path":"/list/-"}])",
        R"([{"op":"add","path":"/list/x","value":1}])",
        R"([{"op":"add","path":"/a/b","value":1}])",
        R"([{"op":"remove","path":""}])",
    };
    for (const char* c : cases) {
        auto doc = doc_of(R"({"a":1,"list":[1,2]})");
        auto error = apply_patch(doc, ops(c));
        ASSERT_TRUE(error) << c;
        EXPECT_EQ(error->kind, PatchErrorKind::Unappliable) << c << " → " << error->message;
    }
}

TEST(JsonPatch, TheErrorNamesTheFirstFailingOperation) {
    auto doc = doc_of(R"({"a":1})");
    auto error = apply_patch(doc, ops(R"([{"op":"test","path":"/a","value":1},{"op":"remove","path":"/b"},
                                          {"op":"test","path":"/a","value":2}])"));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->op_index, 1u);
    EXPECT_EQ(error->kind, PatchErrorKind::Unappliable);
}

TEST(JsonPatch, WholeDocumentPath) {
    auto doc = doc_of(R"({"a":1})");
    ASSERT_FALSE(apply_patch(doc, ops(R"([{"op":"test","path":"","value":{"a":1}},
                                          {"op":"replace","path":"","value":[1]}])")));
    EXPECT_EQ(doc, doc_of("[1]"));
}

TEST(JsonPatch, MoveAndCopyAreRejectedUnlessAllowed) {
    auto doc = doc_of(R"({"a":1,"b":{"c":2}})");
    for (auto text : {R"([{"op":"move","from":"/a","path":"/z"}])", R"([{"op":"copy","from":"/a","path":"/z"}])"}) {
        auto error = apply_patch(doc, ops(text));
        ASSERT_TRUE(error);
        EXPECT_EQ(error->kind, PatchErrorKind::Invalid);
        EXPECT_NE(error->message.find("not supported"), std::string::npos);
    }
    ApplyOptions allow{.allow_move_copy = true};
    ASSERT_FALSE(apply_patch(
        doc, ops(R"([{"op":"copy","from":"/b","path":"/d"},{"op":"move","from":"/a","path":"/d/a"}])"), allow));
    EXPECT_EQ(doc, doc_of(R"({"b":{"c":2},"d":{"c":2,"a":1}})"));
    auto error = apply_patch(doc, ops(R"([{"op":"move","from":"/b","path":"/b/c/x"}])"), allow);
    ASSERT_TRUE(error) << "a value cannot move into its own child";
    EXPECT_EQ(error->kind, PatchErrorKind::Invalid);
}

TEST(JsonPatch, TestComparesNumbersByValueAndObjectsRegardlessOfOrder) {
    auto doc = doc_of(R"({"n":1,"big":9007199254740993,"o":{"x":1,"y":[1,2]}})");
    EXPECT_FALSE(apply_patch(doc, ops(R"([{"op":"test","path":"/n","value":1.0},
                                          {"op":"test","path":"/o","value":{"y":[1,2.0],"x":1}}])")));
    // 2^53 + 1 is not the double 2^53: comparing through double would say it is.
    EXPECT_TRUE(apply_patch(doc, ops(R"([{"op":"test","path":"/big","value":9007199254740992.0}])")));
    EXPECT_TRUE(apply_patch(doc, ops(R"([{"op":"test","path":"/n","value":"1"}])")));
    EXPECT_TRUE(apply_patch(doc, ops(R"([{"op":"test","path":"/o","value":{"x":1,"y":[2,1]}}])")));
    EXPECT_TRUE(json_equal(json::value(std::uint64_t{5}), json::value(std::int64_t{5})));
    EXPECT_FALSE(json_equal(json::value(std::int64_t{-1}), json::value(std::uint64_t{18446744073709551615u})));
}

}  // namespace
}  // namespace prefsync::patch
