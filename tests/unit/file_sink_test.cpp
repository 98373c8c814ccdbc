// A pull's output file: what sync() or a finished begin_sync() returns is on disk, appends
// go on while a sync runs, and a resumed sink starts at the size its journal recorded.
#include "connectors/file_sink.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.hpp"

namespace prefsync::connectors {
namespace {

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(FileSink, ABackgroundSyncCoversWhatWasAppendedBeforeItAndAppendsGoOnMeanwhile) {
    testing::TempDir dir;
    auto path = dir.file("out/p.jsonl");
    FileSink sink(path, 0);
    sink.append("{\"a\":1}\n");
    EXPECT_TRUE(sink.sync_done(false)) << "nothing started: nothing to wait for";
    EXPECT_EQ(sink.begin_sync(), 8);
    sink.append("{\"b\":2}\n");  // while the first sync may still run
    EXPECT_TRUE(sink.sync_done(true));
    EXPECT_EQ(contents(sink.partial_path()), "{\"a\":1}\n") << "the later append is still buffered";
    EXPECT_EQ(sink.begin_sync(), 16);
    EXPECT_EQ(sink.begin_sync(), 16) << "a second waits for the first, and covers the same bytes";
    EXPECT_EQ(sink.sync(), 16);
    sink.finish();
    EXPECT_EQ(contents(path), "{\"a\":1}\n{\"b\":2}\n");
    EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
}

TEST(FileSink, AResumedSinkDropsWhatWasWrittenAfterTheRecordedSize) {
    testing::TempDir dir;
    auto path = dir.file("p.jsonl");
    {
        FileSink sink(path, 0);
        sink.append("one\ntwo\n");
        EXPECT_EQ(sink.begin_sync(), 8);
        sink.append("three\n");
        // Destroyed with a sync running and bytes buffered: it waits for the sync, and the
        // buffered bytes are lost, as in a crash.
    }
    FileSink resumed(path, 4);
    EXPECT_EQ(resumed.size(), 4);
    resumed.append("2\n");
    EXPECT_EQ(resumed.sync(), 6);
    EXPECT_EQ(contents(resumed.partial_path()), "one\n2\n");
}

}  // namespace
}  // namespace prefsync::connectors
