// The reject file holds source rows (personal data): private whatever the umask, never written
// through a symbolic link, appended in whole entries.
#include "connectors/reject_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/support/temp_dir.hpp"

namespace prefsync::connectors {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kPrivate = fs::perms::owner_read | fs::perms::owner_write;

// The umask most shells run with, which would make a plain fopen() file world-readable.
struct Umask {
    explicit Umask(mode_t mask) : old_(::umask(mask)) {}
    ~Umask() { ::umask(old_); }
    mode_t old_;
};

TEST(RejectFile, IsCreatedPrivateWhateverTheUmask) {
    Umask umask(022);
    testing::TempDir dir;
    auto path = dir.file("rejects/crm.rejects.txt");
    RejectFile f(path, "crm");
    f.write("in.csv:2", "bad", "raw row");
    f.flush();
    EXPECT_EQ(fs::status(path).permissions(), kPrivate);
}

TEST(RejectFile, OneLeftReadableByOthersIsMadePrivateWhenAppendedTo) {
    Umask umask(022);
    testing::TempDir dir;
    auto path = dir.write("crm.rejects.txt", "# prefsync rejects: job=crm run=2026-01-01T00:00:00Z\n");
    fs::permissions(path,
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
    {
        RejectFile f(path, "crm");
        f.write("in.csv:2", "bad", "raw row");
    }
    EXPECT_EQ(fs::status(path).permissions(), kPrivate);
    EXPECT_THAT(testing::read_file(path), AllOf(HasSubstr("run=2026-01-01T00:00:00Z\n# prefsync rejects: job=crm"),
                                                HasSubstr("--- in.csv:2 reason=\"bad\" bytes=7\nraw row\n")))
        << "appended, nothing overwritten";
}

TEST(RejectFile, ASymlinkAtThePathIsRefusedAndItsTargetUntouched) {
    testing::TempDir dir;
    auto target = dir.write("target.txt", "untouched\n");
    auto path = dir.file("crm.rejects.txt");
    fs::create_symlink(target, path);
    RejectFile f(path, "crm");
    try {
        f.write("in.csv:2", "bad", "raw row");
        FAIL() << "a reject file that is a symbolic link was written through";
    } catch (const SourceError& e) {
        EXPECT_THAT(e.what(),
                    AllOf(HasSubstr("the reject file " + path + " is a symbolic link"), HasSubstr("refusing")));
    }
    EXPECT_EQ(testing::read_file(target), "untouched\n");
    EXPECT_TRUE(fs::is_symlink(path));
}

// Entries are buffered and written in whole: many large rows come out intact and in order.
TEST(RejectFile, ManyEntriesLargerThanTheBufferArriveWholeAndInOrder) {
    testing::TempDir dir;
    auto path = dir.file("crm.rejects.txt");
    std::string expected;
    {
        RejectFile f(path, "crm");
        for (int i = 0; i < 200; ++i) {
            std::string raw(1000 + i, static_cast<char>('a' + i % 26));
            f.write("in.csv:" + std::to_string(i), "r", raw);
            expected += "--- in.csv:" + std::to_string(i) + " reason=\"r\" bytes=" + std::to_string(raw.size()) + "\n" +
                        raw + "\n";
        }
        EXPECT_EQ(f.count(), 200u);
    }
    auto text = testing::read_file(path);
    ASSERT_TRUE(text.starts_with("# prefsync rejects: job=crm run="));
    EXPECT_EQ(text.substr(text.find('\n') + 1), expected);
}

}  // namespace
}  // namespace prefsync::connectors
