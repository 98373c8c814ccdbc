#include "daemon/push/seen_set.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <system_error>
#include <unordered_set>

#include "tests/support/temp_dir.hpp"

namespace prefsync::push {
namespace {

TEST(SeenSet, AnswersLikeAnInMemorySetAcrossSpillsAndMerges) {
    testing::TempDir dir;
    SeenSet seen(dir.path(), 100);
    std::unordered_set<std::uint64_t> reference;
    std::mt19937_64 random(7);
    std::vector<std::uint64_t> inserted;
    for (int i = 0; i < 20000; ++i) {
        // A third of the inserts repeat an earlier hash, as duplicate ids in a source do.
        std::uint64_t h = !inserted.empty() && random() % 3 == 0 ? inserted[random() % inserted.size()] : random();
        if (i == 10) h = 0;
        if (i == 11) h = std::numeric_limits<std::uint64_t>::max();
        bool fresh = reference.insert(h).second;
        ASSERT_EQ(seen.insert(h), fresh) << "insert " << i;
        if (fresh) inserted.push_back(h);
    }
    EXPECT_EQ(seen.size(), reference.size());
    EXPECT_GT(seen.files(), 0u) << "spilled";
    EXPECT_LE(seen.files(), static_cast<std::size_t>(std::log2(reference.size() / 100.0)) + 1) << "merged";
    for (auto h : inserted) ASSERT_TRUE(seen.contains(h)) << h;
    for (int i = 0; i < 20000; ++i) {
        auto h = random();
        ASSERT_EQ(seen.contains(h), reference.count(h) == 1) << h;
    }
}

TEST(SeenSet, RunsLargerThanOneBufferMergeWhole) {
    // Files of k hashes (k: where the set first spills, between 25,000 and 50,000): after 8k
    // inserts the merged runs of 4k and 8k, read and written, outgrow the 65,536-hash
    // buffers, so refills and flushes part-way through a run are exercised.
    testing::TempDir dir;
    SeenSet seen(dir.path(), 50000);
    std::mt19937_64 random(11);
    std::vector<std::uint64_t> inserted;
    std::size_t k = 0;
    while (k == 0 || inserted.size() < 8 * k + 1) {
        auto h = random();
        ASSERT_TRUE(seen.insert(h));
        inserted.push_back(h);
        if (k == 0 && seen.files() == 1) k = inserted.size() - 1;
    }
    ASSERT_GT(4 * k, 65536u);
    EXPECT_EQ(seen.files(), 1u) << "eight files of " << k << " merged into one";
    for (std::size_t i = 0; i < inserted.size(); i += 7) ASSERT_FALSE(seen.insert(inserted[i])) << i;
    for (int i = 0; i < 1000; ++i) ASSERT_FALSE(seen.contains(random()));
}

TEST(SeenSet, SpillsRatherThanDoubleItsTableOnceItHoldsHalfOfSpillAt) {
    // Doubling holds the old table and the new one at once: at the default a million hashes
    // would peak at 24 MiB of tables where 8 MiB hold them. Past half of spill_at, the set
    // spills where it would have doubled.
    testing::TempDir dir;
    const std::size_t spill_at = 100000;
    SeenSet seen(dir.path(), spill_at);
    std::mt19937_64 random(5);
    std::size_t first_spill = 0;
    for (std::size_t i = 0; i < spill_at - 1; ++i) {
        ASSERT_TRUE(seen.insert(random()));
        if (!first_spill && seen.files() > 0) first_spill = i;
    }
    EXPECT_GT(first_spill, spill_at / 2) << "not before it holds half of spill_at";
    EXPECT_LT(first_spill, spill_at - 1) << "spilled before spill_at, where the table would have doubled";
    EXPECT_EQ(seen.size(), spill_at - 1);
}

TEST(SeenSet, ASpillAtOfOneKeepsEachHashInAFileOfItsOwnAndNoEmptyOnes) {
    testing::TempDir dir;
    SeenSet seen(dir.path(), 1);
    EXPECT_TRUE(seen.insert(42));
    EXPECT_EQ(seen.files(), 0u) << "nothing spilled before the first hash";
    EXPECT_TRUE(seen.insert(7));
    EXPECT_EQ(seen.files(), 1u);
    EXPECT_FALSE(seen.insert(42));
    EXPECT_FALSE(seen.insert(7));
    EXPECT_TRUE(seen.insert(9));
    EXPECT_EQ(seen.size(), 3u);
}

TEST(SeenSet, ItsFilesHaveNoNameSoACrashLeavesNothingBehind) {
    testing::TempDir dir;
    {
        SeenSet seen(dir.path(), 10);
        for (std::uint64_t h = 0; h < 1000; ++h) seen.insert(h * 7919);
        EXPECT_GT(seen.files(), 0u);
        EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "unnamed files while they are in use";
    }
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(SeenSet, ADirectoryItCannotWriteIsAnErrorNamingItAndWhatWasInsertedIsStillKnown) {
    testing::TempDir dir;
    auto readonly = dir.file("readonly");
    std::filesystem::create_directory(readonly);
    chmod(readonly.c_str(), 0500);
    if (geteuid() == 0) {
        // root writes anywhere: a directory that does not exist fails alike.
        readonly = dir.file("missing/below");
    }
    SeenSet seen(readonly, 4);
    for (std::uint64_t h = 1; h <= 4; ++h) EXPECT_TRUE(seen.insert(h));
    try {
        seen.insert(5);
        FAIL() << "the fifth hash spills the first four";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find(readonly), std::string::npos) << e.what();
    }
    for (std::uint64_t h = 1; h <= 4; ++h) EXPECT_TRUE(seen.contains(h)) << h;
    EXPECT_FALSE(seen.contains(5)) << "a hash whose insert failed is not taken as seen";
}

}  // namespace
}  // namespace prefsync::push
