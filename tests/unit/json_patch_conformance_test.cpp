// The json-patch-tests conformance suite (tests/data/json-patch-tests, Apache-2.0): every
// enabled case of tests.json and spec_tests.json, three ways — applied with move/copy
// allowed, applied as the API would (move/copy rejected), and as a diff round trip.
// The counts are asserted, so a suite that silently stopped loading would fail.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <iostream>
#include <sstream>

#include "daemon/patch/json_patch.hpp"
#include "daemon/patch/profile_diff.hpp"

namespace prefsync::patch {
namespace {

struct Case {
    std::string name;  // "tests.json#12: comment"
    const json::object* record;
};

const json::array& suite(const std::string& file) {
    static std::map<std::string, json::array> loaded;
    auto it = loaded.find(file);
    if (it == loaded.end()) {
        std::ifstream in(std::string(PREFSYNC_SOURCE_DIR) + "/tests/data/json-patch-tests/" + file);
        std::stringstream text;
        text << in.rdbuf();
        it = loaded.emplace(file, json::parse(text.str()).as_array()).first;
    }
    return it->second;
}

struct Counts {
    int run = 0, disabled = 0;
};

// Calls `check` for every enabled case; counts what ran and what was skipped as disabled.
Counts for_each_case(const std::function<void(const Case&)>& check) {
    Counts counts;
    for (const std::string file : {"tests.json", "spec_tests.json"}) {
        const auto& cases = suite(file);
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const auto& record = cases[i].as_object();
            if (!record.contains("patch")) continue;  // a comment-only record
            if (auto* d = record.if_contains("disabled"); d && d->is_bool() && d->get_bool()) {
                ++counts.disabled;
                continue;
            }
            std::string name = file + "#" + std::to_string(i);
            if (auto* c = record.if_contains("comment")) name += ": " + std::string(c->as_string());
            SCOPED_TRACE(name);
            ++counts.run;
            check(Case{name, &record});
        }
    }
    return counts;
}

bool uses_move_or_copy(const json::array& patch) {
    for (const auto& op : patch)
        if (const auto* o = op.if_object())
            if (const auto* name = o->if_contains("op"); name && (*name == "move" || *name == "copy")) return true;
    return false;
}

TEST(JsonPatchConformance, EveryEnabledCaseWithMoveAndCopyAllowed) {
    int passed_expected = 0, passed_error = 0;
    auto counts = for_each_case([&](const Case& c) {
        json::value doc = c.record->at("doc");
        const auto before = doc;
        auto error = apply_patch(doc, c.record->at("patch").as_array(), ApplyOptions{.allow_move_copy = true});
        if (const auto* expected = c.record->if_contains("expected")) {
            ASSERT_FALSE(error) << error->message;
            ASSERT_TRUE(json_equal(doc, *expected)) << json::serialize(doc);
            ++passed_expected;
        } else {
            ASSERT_TRUE(error) << "expected: " << c.record->at("error").as_string();
            ASSERT_EQ(doc, before) << "a failed patch leaves the document unchanged";
            ++passed_error;
        }
    });
    std::cout << "conformance: " << counts.run << " run (" << passed_expected << " results, " << passed_error
              << " errors) passed, " << counts.disabled << " disabled skipped\n";
    EXPECT_EQ(counts.run, 108);
    EXPECT_EQ(counts.disabled, 4);
    EXPECT_EQ(passed_expected, 74);
    EXPECT_EQ(passed_error, 34);
}

TEST(JsonPatchConformance, AsTheApiAppliesThemMoveAndCopyAreRejected) {
    int rejected = 0, passed = 0;
    for_each_case([&](const Case& c) {
        const auto& patch = c.record->at("patch").as_array();
        json::value doc = c.record->at("doc");
        const auto before = doc;
        auto error = apply_patch(doc, patch);
        if (uses_move_or_copy(patch)) {
            ASSERT_TRUE(error);
            EXPECT_EQ(error->kind, PatchErrorKind::Invalid) << error->message;
            EXPECT_EQ(doc, before);
            ++rejected;
        } else if (const auto* expected = c.record->if_contains("expected")) {
            ASSERT_FALSE(error) << error->message;
            EXPECT_TRUE(json_equal(doc, *expected));
            ++passed;
        } else {
            EXPECT_TRUE(error);
            ++passed;
        }
    });
    std::cout << "conformance without move/copy: " << passed << " passed, " << rejected
              << " move/copy cases rejected\n";
    EXPECT_EQ(rejected, 16);
    EXPECT_EQ(passed, 92);
}

TEST(JsonPatchConformance, DiffRoundTripOfEveryCaseWithAResult) {
    int round_trips = 0;
    for_each_case([&](const Case& c) {
        const auto* expected = c.record->if_contains("expected");
        if (!expected) return;
        const auto& doc = c.record->at("doc");
        auto patch = diff_values(doc, *expected);
        json::value result = doc;
        auto error = apply_patch(result, patch);
        ASSERT_FALSE(error) << error->message << " in " << json::serialize(patch);
        ASSERT_TRUE(json_equal(result, *expected)) << json::serialize(patch) << " gave " << json::serialize(result);
        EXPECT_TRUE(diff_values(*expected, *expected).empty());
        if (json_equal(doc, *expected)) {
            EXPECT_TRUE(patch.empty()) << json::serialize(patch);
        }
        ++round_trips;
    });
    std::cout << "diff round trip: " << round_trips << " cases\n";
    EXPECT_EQ(round_trips, 74);
}

}  // namespace
}  // namespace prefsync::patch
