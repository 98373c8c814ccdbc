#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <new>
#include <sstream>

#include "connectors/csv/csv_config.hpp"
#include "connectors/csv/csv_reader.hpp"
#include "connectors/csv/csv_source.hpp"
#include "connectors/jsonl/jsonl_config.hpp"
#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "tests/support/config_section.hpp"
#include "tests/support/temp_dir.hpp"

// Heap accounting for the memory-bound tests: every allocation of this test binary goes
// through these, so a test can read the peak of live heap bytes over a stretch of code
// rather than the process's RSS, which allocators and the OS blur.
namespace {
std::atomic<std::size_t> g_live_bytes{0}, g_peak_bytes{0};

void* counted_alloc(std::size_t n) {
    void* p = std::malloc(n == 0 ? 1 : n);
    if (!p) throw std::bad_alloc();
    std::size_t live = g_live_bytes.fetch_add(malloc_usable_size(p)) + malloc_usable_size(p);
    for (std::size_t peak = g_peak_bytes.load(); live > peak && !g_peak_bytes.compare_exchange_weak(peak, live);) {}
    return p;
}

void counted_free(void* p) noexcept {
    if (!p) return;
    g_live_bytes.fetch_sub(malloc_usable_size(p));
    std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
    return counted_alloc(n);
}
void* operator new[](std::size_t n) {
    return counted_alloc(n);
}
void operator delete(void* p) noexcept {
    counted_free(p);
}
void operator delete[](void* p) noexcept {
    counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    counted_free(p);
}

namespace prefsync::connectors {
namespace {

// The most the heap grew, over what it held when constructed.
class PeakHeapGrowth {
public:
    PeakHeapGrowth() : base_(g_live_bytes.load()) { g_peak_bytes = base_; }
    std::size_t bytes() const { return g_peak_bytes.load() - base_; }

private:
    std::size_t base_;
};

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::parse_section;

struct Parsed {
    std::vector<std::string> fields;
    std::size_t line;
    std::string error;
    std::string raw;
};

CsvSource source_of(const std::string& text, CsvSourceConfig cfg = {});

std::vector<Parsed> parse(const std::string& text, CsvOptions options = {}) {
    std::istringstream in(text);
    CsvReader reader(in, options);
    CsvRecord r;
    std::vector<Parsed> out;
    while (reader.next(r))
        out.push_back(
            {std::vector<std::string>(r.fields.begin(), r.fields.begin() + r.field_count), r.line, r.error, r.raw});
    return out;
}

// --- csv-spectrum: every case of the public suite (tests/data/csv-spectrum, BSD-2-Clause) ---

TEST(CsvSpectrum, EveryCaseMatchesItsExpectedJson) {
    namespace fs = std::filesystem;
    fs::path root = PREFSYNC_SOURCE_DIR "/tests/data/csv-spectrum";
    int cases = 0;
    for (const auto& entry : fs::directory_iterator(root / "csvs")) {
        auto name = entry.path().stem().string();
        SCOPED_TRACE(name);
        auto expected = boost::json::parse(testing::read_file((root / "json" / (name + ".json")).string()));
        if (name == "location_coordinates") {
            // Upstream erratum in csv-spectrum 2.0.0: this expected file is a bare object (not an
            // array of rows) and its phone number is not the one in the CSV. Assert the CSV's
            // real content rather than skip the case.
            ASSERT_TRUE(expected.is_object());
            expected.as_object()["Contact Phone Number"] = "2095257564";
            expected = boost::json::array{expected};
        }
        CsvSourceConfig cfg;
        CsvSource source(std::make_unique<std::ifstream>(entry.path(), std::ios::binary), name, cfg);
        std::vector<Row> rows;
        boost::json::array actual;
        while (source.next_batch(rows, 7)) {
            for (const auto& row : rows) {
                ASSERT_FALSE(row.rejected()) << row.error;
                boost::json::object obj;
                for (std::size_t i = 0; i < row.values.size(); ++i) obj[source.columns()[i]] = *row.values[i];
                actual.push_back(obj);
            }
        }
        EXPECT_EQ(boost::json::serialize(actual), boost::json::serialize(expected));
        ++cases;
    }
    EXPECT_EQ(cases, 12) << "all twelve csv-spectrum cases are vendored";
}

// --- the reader ---------------------------------------------------------------------------

TEST(CsvReader, QuotesDoubledQuotesAndDelimitersInsideQuotes) {
    auto r = parse("a,\"b,c\",\"say \"\"hi\"\"\"\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_THAT(r[0].fields, ElementsAre("a", "b,c", "say \"hi\""));
}

TEST(CsvReader, EmptyFieldsAndTrailingDelimiter) {
    auto r = parse(",\"\",x,\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_THAT(r[0].fields, ElementsAre("", "", "x", ""));
}

TEST(CsvReader, LineNumbersCountNewlinesInsideQuotesAndBlankLines) {
    auto r = parse("h1,h2\r\n\"multi\r\nline\",2\r\n\r\nlast,3");
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].line, 1u);
    EXPECT_EQ(r[1].line, 2u);
    EXPECT_THAT(r[1].fields, ElementsAre("multi\r\nline", "2"));
    EXPECT_EQ(r[2].line, 5u) << "the blank line 4 is skipped but counted";
    EXPECT_THAT(r[2].fields, ElementsAre("last", "3")) << "no final newline";
}

TEST(CsvReader, ACarriageReturnAloneEndsALineAsCrlfAndLfDo) {
    auto r = parse("a,b\rc,d\r\re,f\r");
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].line, 1u);
    EXPECT_EQ(r[1].line, 2u);
    EXPECT_EQ(r[2].line, 4u) << "the blank line 3 is skipped but counted";
    EXPECT_THAT(r[2].fields, ElementsAre("e", "f"));
    r = parse("a,b\r\r\nc,d\n\rx,y");
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[1].line, 3u) << "a CR, then a blank CRLF line";
    EXPECT_EQ(r[2].line, 5u) << "an LF, then a blank CR line";
}

// A CR alone in a file whose lines end in LF or CRLF is a stray byte of a field (pasted
// text), not a line end: taken for one, "C00000002" cut in two made a row of its own whose
// id "0002" went to the API as another person. The row is refused, naming the field; the
// line numbers stay those an editor shows.
TEST(CsvReader, ACarriageReturnAloneInAFileOfLfLinesIsRefusedNotALineEnd) {
    for (std::string end : {"\n", "\r\n"}) {
        auto r = parse("id,name" + end + "C00000001,Ann" + end + "C0000\r0002,Bo" + end + "C00000003,Cy" + end +
                       "C00000004,D\ree" + end + "C00000005,Eve\r");
        ASSERT_EQ(r.size(), 6u) << "one record per line";
        EXPECT_EQ(r[2].line, 3u);
        EXPECT_THAT(r[2].error, HasSubstr("a carriage return (CR) alone in field 1"));
        EXPECT_EQ(r[3].line, 4u);
        EXPECT_TRUE(r[3].error.empty());
        EXPECT_THAT(r[3].fields, ElementsAre("C00000003", "Cy"));
        EXPECT_THAT(r[4].error, HasSubstr("alone in field 2"));
        EXPECT_EQ(r[5].line, 6u);
        EXPECT_TRUE(r[5].error.empty()) << "a CR at the very end ends the last line";
        EXPECT_THAT(r[5].fields, ElementsAre("C00000005", "Eve"));
    }
    // Before a quote: the quoted field's line end stays inside the refused record.
    auto quoted = parse("id,name\n1,\r\"x\ny\"\n2,z\n");
    ASSERT_EQ(quoted.size(), 3u) << "not a record made of the quoted field's second line";
    EXPECT_THAT(quoted[1].error, HasSubstr("alone in field 2"));
    EXPECT_THAT(quoted[2].fields, ElementsAre("2", "z"));
    EXPECT_EQ(quoted[2].line, 4u);
    auto r = parse("id,name\n\"a\rb\",x\n");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_TRUE(r[1].error.empty()) << "quoted, a CR is the field's";
    EXPECT_THAT(r[1].fields, ElementsAre("a\rb", "x"));
}

TEST(CsvReader, ByteOrderMarkIsDropped) {
    auto r = parse("\xEF\xBB\xBFid,name\n1,x\n");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].fields[0], "id");
}

TEST(CsvReader, OtherDelimiters) {
    auto r = parse("a;b\t;\"c;d\"\n", CsvOptions{';'});
    EXPECT_THAT(r[0].fields, ElementsAre("a", "b\t", "c;d"));
}

TEST(CsvReader, BareQuoteInsideAnUnquotedFieldIsKept) {
    auto r = parse("5\" screen,x\n");
    ASSERT_TRUE(r[0].error.empty());
    EXPECT_THAT(r[0].fields, ElementsAre("5\" screen", "x"));
}

TEST(CsvReader, CharacterAfterClosingQuoteIsAnErrorAndTheNextRecordIsFine) {
    auto r = parse("\"ab\"c,d\nok,1\n");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_THAT(r[0].error, HasSubstr("after the closing quote of field 1"));
    EXPECT_EQ(r[0].raw, "\"ab\"c,d");
    EXPECT_TRUE(r[1].error.empty());
    EXPECT_THAT(r[1].fields, ElementsAre("ok", "1"));
}

TEST(CsvReader, UnterminatedQuoteNamesTheLineItOpened) {
    auto r = parse("a,b\n1,\"never closed\n2,3\n");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_THAT(r[1].error, HasSubstr("the quote opened on line 2 is never closed"));
    EXPECT_EQ(r[1].line, 2u);
}

// A stray quote's field runs to the next quote in the file: the record it makes is refused,
// and the error says which lines it took (they are not read again as rows: they could be a
// quoted field's lines, whose text must not reach profiles as rows of their own).
TEST(CsvReader, ARefusedRecordOverSeveralLinesNamesThem) {
    auto r = parse("id,n\n1,\"stray\n2,x\n3,\"q\"z\n4,y\n");
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[1].line, 2u);
    EXPECT_THAT(r[1].error, HasSubstr("after the closing quote"));
    EXPECT_THAT(r[1].error, HasSubstr("this one record runs over lines 2 to 4, none of which is read as a row"));
    EXPECT_THAT(r[2].fields, ElementsAre("4", "y"));
    EXPECT_EQ(r[2].line, 5u);
    r = parse("id,n\n1,\"q\"z\n");
    ASSERT_EQ(r.size(), 2u);
    EXPECT_THAT(r[1].error, Not(HasSubstr("runs over"))) << "one line: nothing more to say";
}

TEST(CsvReader, OverlongRecordIsRefusedWithBoundedMemoryAndReadingGoesOn) {
    std::string big(10000, 'x');
    auto r = parse("short\n" + big + "\nafter\n", CsvOptions{',', 1000});
    ASSERT_EQ(r.size(), 3u);
    EXPECT_THAT(r[1].error, HasSubstr("longer than 1000 bytes"));
    EXPECT_LE(r[1].raw.size(), 1000u);
    EXPECT_LE(r[1].fields[0].size(), 1000u);
    EXPECT_THAT(r[2].fields, ElementsAre("after"));
}

TEST(CsvReader, FieldsPerRecordAreLimitedByMaxRecordBytes) {
    EXPECT_EQ(max_fields(CsvOptions{}), 32768u) << "1 MiB / 32 bytes per field";
    EXPECT_EQ(max_fields(CsvOptions{',', 1000}), 1024u) << "never fewer than 1,024";
    std::string wide(3000, ';');
    auto r = parse(wide + "\nok;1\n", CsvOptions{';', 1u << 16});
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0].error, "record has more than 2048 fields (source.max_record_bytes / 32)");
    EXPECT_LE(r[0].fields.size(), 2048u);
    EXPECT_THAT(r[1].fields, ElementsAre("ok", "1"));
    EXPECT_EQ(r[1].line, 2u);
}

TEST(CsvReader, RecordsAtTheirLimitsAreCutWhereTheByteByByteReadingCutThem) {
    // Runs of unquoted text and their delimiters are taken in one piece only while the record
    // stays within its limits: at a limit, what is kept is what one byte at a time kept.
    auto r = parse("ab,cd,ef,ghi\nab,cd,ef,ghij\n\"q\",r,\"s\"\"t\"\nz\n", CsvOptions{',', 12});
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(r[0].error, "") << "exactly 12 bytes";
    EXPECT_EQ(r[0].raw, "ab,cd,ef,ghi");
    EXPECT_THAT(r[0].fields, ElementsAre("ab", "cd", "ef", "ghi"));
    EXPECT_THAT(r[1].error, HasSubstr("longer than 12 bytes"));
    EXPECT_EQ(r[1].raw, "ab,cd,ef,ghi");
    EXPECT_EQ(r[1].fields[3], "ghi");
    EXPECT_EQ(r[2].error, "");
    EXPECT_EQ(r[2].raw, "\"q\",r,\"s\"\"t\"");
    EXPECT_THAT(r[2].fields, ElementsAre("q", "r", "s\"t"));
    EXPECT_THAT(r[3].fields, ElementsAre("z"));

    std::string wide;
    for (int i = 0; i < 2049; ++i) wide += "a;";
    auto w = parse(wide + "a\nok;1\n", CsvOptions{';', 1u << 16});
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0].error, "record has more than 2048 fields (source.max_record_bytes / 32)");
    EXPECT_EQ(w[0].raw, wide.substr(0, 2 * 2048));
    EXPECT_THAT(w[1].fields, ElementsAre("ok", "1"));
}

TEST(CsvReader, EveryFieldLengthEndsAtItsDelimiterOrLineEnd) {
    // Runs of unquoted text and the delimiter after them are taken in one piece: fields of
    // every length up to 20 bytes end at their delimiter, CR LF or LF, whatever precedes it
    // (ASCII text, the other delimiters, UTF-8).
    for (char delimiter : {',', ';', '\t', '|'}) {
        for (std::string filler :
             {std::string("ab,c;d|e\tfghijklmnopqrstuvwxyz0123"),
              std::string("\xc3\xa9\xe4\xbc\x9f\xc3\xbc\xc3\x9f\xe6\x9d\x8e\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9")}) {
            filler.erase(std::remove(filler.begin(), filler.end(), delimiter), filler.end());
            for (std::size_t length = 0; length <= 20; ++length) {
                std::string a = filler.substr(0, length), d(1, delimiter);
                auto r = parse(a + d + a + d + "x\n" + "y" + a + "\r\n" + a + d + "\n" + "last", CsvOptions{delimiter});
                ASSERT_EQ(r.size(), 4u) << "length " << length;
                EXPECT_THAT(r[0].fields, ElementsAre(a, a, "x")) << "length " << length;
                EXPECT_EQ(r[0].raw, a + d + a + d + "x");
                EXPECT_THAT(r[1].fields, ElementsAre("y" + a)) << "length " << length;
                EXPECT_THAT(r[2].fields, ElementsAre(a, "")) << "length " << length;
                EXPECT_THAT(r[3].fields, ElementsAre("last"));
                for (const auto& record : r) EXPECT_EQ(record.error, "") << "length " << length;
            }
        }
    }
}

TEST(CsvReader, LineOfDelimitersIsRefusedWithBoundedMemoryAndReadingGoesOn) {
    // 4 MiB of delimiters is 4 Mi empty fields: 128 MiB of std::string (and a vector that
    // doubles past it) unless fields count against the limit too. At 30 MiB it was 1 GiB.
    std::string text(4u << 20, ',');
    text += "\nok,1\n";
    std::istringstream in(text);
    CsvOptions options;
    CsvReader reader(in, options);
    CsvRecord r;
    PeakHeapGrowth heap;
    ASSERT_TRUE(reader.next(r));
    EXPECT_THAT(r.error, HasSubstr("more than 32768 fields"));
    EXPECT_EQ(r.line, 1u);
    ASSERT_TRUE(reader.next(r));
    EXPECT_EQ(r.error, "");
    EXPECT_EQ(r.line, 2u);
    ASSERT_EQ(r.field_count, 2u);
    EXPECT_EQ(r.fields[0], "ok");
    std::size_t grew = heap.bytes();
    EXPECT_LE(grew, max_held_bytes(options)) << "peak heap growth " << grew << " bytes";
}

TEST(CsvReader, MemoryHeldStaysBoundedOverManyRecordsWhoseFieldsAreNotTaken) {
    // Record i has its 60 KiB field in column i. Fields keep their capacity for reuse, and a
    // rejected row's fields are not moved out: without a bound, every column would end up
    // holding 60 KiB (12 MiB here).
    CsvOptions options{',', 64u << 10};
    std::string text;
    for (int i = 0; i < 200; ++i)
        text += std::string(static_cast<std::size_t>(i), ',') + std::string(60u << 10, 'x') + "\n";
    std::istringstream in(text);
    CsvReader reader(in, options);
    CsvRecord r;
    PeakHeapGrowth heap;
    std::size_t records = 0;
    while (reader.next(r)) {
        ASSERT_EQ(r.error, "");
        ASSERT_EQ(r.fields[records].size(), 60u << 10);
        ++records;
    }
    EXPECT_EQ(records, 200u);
    std::size_t grew = heap.bytes();
    EXPECT_LE(grew, max_held_bytes(options)) << "peak heap growth " << grew << " bytes";
}

TEST(CsvReader, FileOfOnlyAByteOrderMarkHasNoRecords) {
    // Found by fuzzing: the reader then read on past its buffer.
    EXPECT_TRUE(parse("\xEF\xBB\xBF").empty());
    EXPECT_TRUE(parse("\xEF\xBB\xBF\n\n").empty());
    EXPECT_THROW(source_of("\xEF\xBB\xBF"), SourceError) << "no header row";
}

TEST(CsvReader, RecordsSpanningTheReadBufferAreWhole) {
    // 64 KiB chunks: make records cross chunk boundaries, including a CR/LF split.
    std::string text;
    std::vector<std::string> expected;
    for (int i = 0; i < 5000; ++i) {
        std::string v = "row" + std::to_string(i) + std::string(i % 37, 'q');
        expected.push_back(v);
        text += "\"" + v + "\",z\r\n";
    }
    auto r = parse(text);
    ASSERT_EQ(r.size(), expected.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
        ASSERT_EQ(r[i].fields[0], expected[i]);
        ASSERT_EQ(r[i].line, i + 1);
    }
}

// --- the source: header, rejects, origins ---------------------------------------------------

CsvSource source_of(const std::string& text, CsvSourceConfig cfg) {
    return CsvSource(std::make_unique<std::istringstream>(text), "in.csv", cfg);
}

TEST(CsvSource, ColumnsFromTheHeaderTrimmed) {
    auto s = source_of("id, name ,email\n1,a,b\n");
    EXPECT_THAT(s.columns(), ElementsAre("id", "name", "email"));
    EXPECT_EQ(s.describe(), "csv in.csv");
}

TEST(CsvSource, ColumnsFromConfigWhenThereIsNoHeader) {
    CsvSourceConfig cfg;
    cfg.header = false;
    cfg.columns = {"id", "name"};
    auto s = source_of("1,a\n2,b\n", cfg);
    std::vector<Row> rows;
    ASSERT_TRUE(s.next_batch(rows, 10));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].origin, "in.csv:1");
    EXPECT_EQ(*rows[1].values[1], "b");
}

TEST(CsvSource, BadHeadersAreFatal) {
    EXPECT_THROW(source_of(""), SourceError);
    try {
        source_of("id,name,id\n");
        FAIL();
    } catch (const SourceError& e) {
        EXPECT_THAT(e.what(), HasSubstr("in.csv:1: header names column \"id\" twice"));
    }
    EXPECT_THROW(source_of("id,,x\n"), SourceError);
    CsvSourceConfig missing;
    missing.path = "/nonexistent.csv";
    EXPECT_THROW(CsvSource{missing}, SourceError);
}

// A file written in place while it is read: the read stops with an error naming the file
// before any byte read after the change reaches a row (a row at a read's edge was made of
// both versions and sent). The rows before are whole, as the file was at the open.
TEST(CsvSource, AFileChangedWhileItIsReadStopsTheReadBeforeARowMixesTwoVersions) {
    testing::TempDir dir;
    auto text = [](char letter) {
        std::string out = "id,name\n";
        for (int i = 0; i < 20'000; ++i) out += std::to_string(i) + "," + std::string(20, letter) + "\n";
        return out;
    };
    for (bool same_size : {false, true}) {
        auto path = dir.write("in.csv", text('a'));
        CsvSourceConfig cfg;
        cfg.path = path;
        CsvSource source(cfg);
        std::vector<Row> rows;
        ASSERT_TRUE(source.next_batch(rows, 100));
        for (const auto& r : rows) EXPECT_EQ(r.values.at(1), std::string(20, 'a'));
        {
            std::ofstream out(path, std::ios::binary | std::ios::trunc);  // in place: the same file
            out << (same_size ? text('b') : text('b') + "20000,more\n");
        }
        if (same_size) {
            // Rewritten within the clock's tick, the time may not move: set it apart.
            struct timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 0}};
            ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
        }
        std::string error;
        try {
            while (source.next_batch(rows, 100))
                for (const auto& r : rows) ASSERT_EQ(r.values.at(1), std::string(20, 'a')) << r.origin;
        } catch (const SourceChangedError& e) {  // read again later, not a failure
            error = e.what();
        }
        EXPECT_THAT(error, ::testing::HasSubstr("changed while it was being read")) << same_size;
        EXPECT_THAT(error, ::testing::HasSubstr("rename it into place"));
    }
}

// A FIFO hands the reader its bytes in pieces: all of them are read, none taken for an end.
TEST(CsvSource, AFifoIsReadWholeAsItsWriterWritesIt) {
    testing::TempDir dir;
    auto path = dir.file("in.fifo");
    ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
    std::thread writer([&] {
        std::ofstream out(path, std::ios::binary);
        out << "id,name\n";
        for (int i = 0; i < 5'000; ++i) {
            out << i << ",n" << i << "\n";
            if (i % 100 == 0) out.flush();
        }
    });
    CsvSourceConfig cfg;
    cfg.path = path;
    CsvSource source(cfg);
    std::vector<Row> rows;
    std::size_t count = 0;
    while (source.next_batch(rows, 1000)) count += rows.size();
    writer.join();
    EXPECT_EQ(count, 5'000u);
}

// --- settle: a file still being written is not read to a premature end ----------------

// The file's modification time, ms since the epoch (what the settle check reads).
std::int64_t mtime_ms(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return std::int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}
void set_mtime_ms(const std::string& path, std::int64_t ms) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {ms / 1000, (ms % 1000) * 1'000'000}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(CsvSettle, AFileIsSettledOnceUnchangedForSettleAndATimeAheadCountsAsNow) {
    EXPECT_EQ(settle_remaining(10'000, 12'000, 2'000), 0);      // quiet exactly settle: read
    EXPECT_EQ(settle_remaining(10'000, 99'000, 2'000), 0);      // long quiet
    EXPECT_EQ(settle_remaining(10'000, 10'500, 2'000), 1'500);  // written half a second ago
    EXPECT_EQ(settle_remaining(10'000, 10'000, 2'000), 2'000);
    EXPECT_EQ(settle_remaining(50'000, 10'000, 2'000), 2'000) << "a clock ahead: quiet since now at the most";
    EXPECT_EQ(settle_remaining(10'000 + 61'000, 10'000, 2'000), 0) << "over a minute ahead: the time says nothing";
    EXPECT_EQ(settle_remaining(10'000, 10'000, 0), 0) << "settle 0s: read at once";
}

// The check is of the file as opened, against the clock given; without a clock (check-config
// and init read only the header) there is none.
TEST(CsvSettle, AFileModifiedLessThanSettleAgoIsNotOpenedForARun) {
    testing::TempDir dir;
    auto path = dir.write("in.csv", "id,name\n1,a\n2,b");
    CsvSourceConfig cfg;
    cfg.path = path;
    auto modified = mtime_ms(path);
    try {
        CsvSource source(cfg, modified + 500);
        ADD_FAILURE() << "opened a file written 0.5 s ago";
    } catch (const SourceUnsettledError& e) {
        EXPECT_EQ(e.wait_ms, 1'500);
        EXPECT_THAT(e.what(), HasSubstr(path + " was modified 0.5 s ago, less than its settle time (2 s)"));
        EXPECT_THAT(e.what(), HasSubstr("rename it into place"));
        EXPECT_THAT(e.what(), Not(HasSubstr("1,a")));
    }
    EXPECT_THROW((CsvSource{cfg, modified + 1'999}), SourceChangedError) << "read again later, as a changed file is";
    EXPECT_NO_THROW((CsvSource{cfg, modified + 2'000}));
    EXPECT_NO_THROW(CsvSource{cfg}) << "no clock: not checked";
    cfg.settle = std::chrono::milliseconds(0);
    EXPECT_NO_THROW((CsvSource{cfg, modified})) << "settle: 0s";
}

SourceConfig csv_source_config(const std::string& path, std::chrono::milliseconds settle) {
    CsvSourceConfig c;
    c.path = path;
    c.settle = settle;
    return SourceConfig{{}, "jobs.crm.source", "", c};
}

// One-shot commands wait, on the clock they are given: until the file has been quiet for
// `settle`, then it is read whole.
TEST(CsvSettle, ARunWaitsForAFreshFileToSettleThenReadsIt) {
    testing::TempDir dir;
    auto path = dir.write("in.csv", "id,name\n1,a\n2,b\n");
    std::int64_t now = mtime_ms(path) + 300;
    std::vector<std::int64_t> sleeps;
    SettleWait wait{.check = true, .wait = true, .stop = nullptr, .now = [&] { return now; }, .sleep = {}};
    wait.sleep = [&](std::chrono::milliseconds ms, const std::string& why) {
        EXPECT_THAT(why, HasSubstr(path));
        sleeps.push_back(ms.count());
        now += ms.count();
    };
    auto source = open_source(csv_source_config(path, std::chrono::seconds(2)), std::nullopt, wait);
    EXPECT_THAT(sleeps, ElementsAre(1'700));
    std::vector<Row> rows;
    ASSERT_TRUE(source->next_batch(rows, 10));
    EXPECT_EQ(rows.size(), 2u);

    // A settled file is opened at once; the daemon (no waiting) is refused at once.
    sleeps.clear();
    EXPECT_NO_THROW(open_source(csv_source_config(path, std::chrono::seconds(2)), std::nullopt, wait));
    EXPECT_THAT(sleeps, IsEmpty());
    now = mtime_ms(path) + 300;
    wait.wait = false;
    EXPECT_THROW(open_source(csv_source_config(path, std::chrono::seconds(2)), std::nullopt, wait),
                 SourceUnsettledError);
    EXPECT_THAT(sleeps, IsEmpty());
}

// A writer that goes on writing while the run waits: each wait starts anew from its last
// write, and the run gives up after a bounded wait, as a source that changed while read
// (nothing of it read), naming the file.
TEST(CsvSettle, ARunGivesUpOnAFileStillBeingWrittenAfterABoundedWait) {
    testing::TempDir dir;
    auto path = dir.write("in.csv", "id,name\n1,a\n");
    std::int64_t now = mtime_ms(path) + 100;
    std::int64_t slept = 0;
    int writes = 0;
    SettleWait wait{.check = true, .wait = true, .stop = nullptr, .now = [&] { return now; }, .sleep = {}};
    wait.sleep = [&](std::chrono::milliseconds ms, const std::string&) {
        slept += ms.count();
        now += ms.count() - 200;  // the writer writes 200 ms before the wait is over
        {
            std::ofstream out(path, std::ios::binary | std::ios::app);
            out << ++writes << ",more\n";
        }
        set_mtime_ms(path, now);
        now += 200;
    };
    std::string error;
    try {
        open_source(csv_source_config(path, std::chrono::seconds(2)), std::nullopt, wait);
    } catch (const SourceUnsettledError& e) {
        error = e.what();
    }
    EXPECT_THAT(error, HasSubstr("after waiting "));
    EXPECT_THAT(error, HasSubstr(path + " was modified 0.2 s ago"));
    EXPECT_GT(writes, 10);
    EXPECT_LE(slept, (std::chrono::seconds(2) + kMostSettleWait).count());
    EXPECT_GE(slept, kMostSettleWait.count());

    // A stop (a signal) ends the wait at once.
    std::atomic<bool> stop{false};
    wait.stop = &stop;
    slept = 0;
    wait.sleep = [&](std::chrono::milliseconds ms, const std::string&) {
        slept += ms.count();
        now += 100;
        stop = true;
    };
    now = mtime_ms(path) + 100;
    EXPECT_THROW(open_source(csv_source_config(path, std::chrono::seconds(2)), std::nullopt, wait),
                 SourceUnsettledError);
    EXPECT_EQ(slept, 1'900);
}

// Many tools leave the final newline out, so such a record is read; but a file still being
// written ends so too, in the middle of a value ("de_D" of "de_DE"): the run is told where,
// never what.
TEST(CsvSource, ALastRecordWithoutALineEndIsReadAndWarnedOfByPlaceNotContent) {
    auto s = source_of("id,locale\n1,de_DE\n2,de_D");
    std::vector<Row> rows;
    ASSERT_TRUE(s.next_batch(rows, 10));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1].values[1], "de_D");
    EXPECT_FALSE(s.next_batch(rows, 10));
    EXPECT_THAT(s.end_warning(), HasSubstr("in.csv:3: the last record has no line end"));
    EXPECT_THAT(s.end_warning(), HasSubstr("may have been cut if the file was still being written"));
    EXPECT_THAT(s.end_warning(), Not(HasSubstr("de_D")));

    for (const char* whole : {"id,locale\n1,de_DE\n2,de_DE\n", "id,locale\r\n1,de_DE\r\n", "id,locale\n1,de_DE\n\n"}) {
        auto t = source_of(whole);
        while (t.next_batch(rows, 10)) {}
        EXPECT_EQ(t.end_warning(), "") << whole;
    }
    // A quoted field the input ends in is refused, and warned of all the same.
    auto q = source_of("id,locale\n1,\"de_D");
    ASSERT_TRUE(q.next_batch(rows, 10));
    EXPECT_TRUE(rows[0].rejected());
    EXPECT_FALSE(q.next_batch(rows, 10));
    EXPECT_THAT(q.end_warning(), HasSubstr("in.csv:2: the last record has no line end"));
}

// The file is checked once more as its end is read (a read that returns nothing): a file
// rewritten after its last bytes were read, and before the end was seen, stops the read
// before the end is declared, so no removal is judged on a version that is gone.
TEST(CsvSource, AFileChangedAfterItsLastBytesWereReadStopsTheReadBeforeItsEnd) {
    testing::TempDir dir;
    // Exactly one read buffer's worth (CsvReader reads 64 KiB at a time): its last record is
    // whole in the first read, and only the next read finds the end.
    std::string text = "id,name\n";
    std::size_t records = 0;
    while (text.size() + 16 <= (1u << 16)) {
        text += std::to_string(10'000 + records) + ",abcdefghi\n";  // 16 bytes
        ++records;
    }
    text += std::to_string(10'000 + records) + "," + std::string((1u << 16) - text.size() - 7, 'z') + "\n";
    ++records;
    ASSERT_EQ(text.size(), 1u << 16);
    auto path = dir.write("in.csv", text);
    CsvSourceConfig cfg;
    cfg.path = path;
    CsvSource source(cfg);
    std::vector<Row> rows;
    ASSERT_TRUE(source.next_batch(rows, records));
    ASSERT_EQ(rows.size(), records);
    // Rewritten in place, as long as before: the next read finds the end all the same.
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        std::replace(text.begin(), text.end(), 'a', 'b');
        out << text;
    }
    set_mtime_ms(path, mtime_ms(path) + 5'000);  // within the clock's tick the time may not move
    EXPECT_THROW(source.next_batch(rows, records), SourceChangedError);
}

TEST(CsvSource, BadRowsAreRejectedWithLineAndReasonAndGoodRowsAllCome) {
    std::string text =
        "id,name\n"
        "1,good\n"
        "2,too,many\n"
        "3,\"bad\"quote\n"
        "4,caf\xC3\n"
        "5,fi\rne\n"
        "6\n" +
        std::string("8,nul\0byte\n", 11) +
        "7,\"unterminated\n"
        "9,swallowed\n";
    auto s = source_of(text);
    std::vector<Row> all, rows;
    while (s.next_batch(rows, 2)) all.insert(all.end(), rows.begin(), rows.end());
    ASSERT_EQ(all.size(), 8u) << "every record comes out, in order";
    std::vector<std::string> good;
    for (auto& r : all)
        if (!r.rejected()) good.push_back(*r.values[0]);
    EXPECT_THAT(good, ElementsAre("1"));
    EXPECT_EQ(all[4].origin, "in.csv:6");
    EXPECT_THAT(all[4].error, HasSubstr("a carriage return (CR) alone in field 2"));
    EXPECT_THAT(all[4].error, HasSubstr("(column \"name\")"));
    EXPECT_EQ(all[1].origin, "in.csv:3");
    EXPECT_EQ(all[1].error, "wrong number of fields: expected 2, got 3");
    EXPECT_EQ(all[1].raw, "2,too,many");
    EXPECT_THAT(all[2].error, HasSubstr("closing quote"));
    EXPECT_EQ(all[3].error, "invalid UTF-8 in column \"name\"");
    EXPECT_EQ(all[3].raw, "4,caf\xC3") << "original bytes kept";
    EXPECT_EQ(all[5].error, "wrong number of fields: expected 2, got 1");
    EXPECT_EQ(all[6].origin, "in.csv:8");
    EXPECT_EQ(all[6].error, "a NUL byte in column \"name\"");
    ASSERT_EQ(all[6].values.size(), 2u) << "values kept: its identity may be readable";
    EXPECT_EQ(*all[6].values[0], "8");
    EXPECT_EQ(all[7].origin, "in.csv:9");
    EXPECT_EQ(all[7].error,
              "unterminated quoted field (the quote opened on line 9 is never closed); this one record runs over "
              "lines 9 to 10, none of which is read as a row (a stray quote?)");
}

// The batch vector is the caller's and may be reused between calls (a source may reuse its
// rows' buffers): each row must hold its own record only.
TEST(CsvSource, EachRowOfTheNextBatchHoldsOnlyItsOwnRecord) {
    auto s = source_of("id,name\n1,a long name\n2,too,many\n3,x\n4,\n");
    std::vector<Row> rows;
    ASSERT_TRUE(s.next_batch(rows, 2));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_THAT(rows[1].error, HasSubstr("wrong number of fields"));
    ASSERT_TRUE(s.next_batch(rows, 2));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(*rows[0].values[1], "x") << "no bytes of the longer value this row held before";
    EXPECT_EQ(rows[0].origin, "in.csv:4");
    EXPECT_EQ(rows[1].error, "") << "the slot's earlier error is gone";
    EXPECT_EQ(rows[1].raw, "4,");
    ASSERT_EQ(rows[1].values.size(), 2u);
    EXPECT_EQ(*rows[1].values[0], "4");
    EXPECT_EQ(*rows[1].values[1], "");
    EXPECT_FALSE(s.next_batch(rows, 2));
    EXPECT_TRUE(rows.empty());
}

TEST(CsvSource, LongRecordsAreNotHeldOnceShortRowsFollow) {
    // A batch of 100 rows with a 60 KiB value each, then short rows: the long buffers must
    // be let go of, not kept (by rows reused for the short ones, say) for the rest of the
    // run (12 MiB here: each row's raw bytes and its value).
    std::string text = "id,note\n";
    for (int i = 0; i < 100; ++i) text += std::to_string(i) + "," + std::string(60u << 10, 'x') + "\n";
    for (int i = 0; i < 1000; ++i) text += std::to_string(i) + ",short\n";
    auto s = source_of(text);
    std::vector<Row> rows;
    std::size_t before = g_live_bytes.load(), read = 0, after = 0;
    while (s.next_batch(rows, 100)) {
        read += rows.size();
        after = g_live_bytes.load();  // with the rows of the last batch
    }
    EXPECT_EQ(read, 1100u);
    EXPECT_LT(after, before + (1u << 20)) << "heap held after the run: " << (after - before) << " bytes more";
}

// --- the csv connector's config sections ----------------------------------------------------

TEST(CsvConfig, SourceSectionReadsItsKeysAndResolvesThePath) {
    auto s = parse_section(
        "{ type: csv, path: data/a.tsv, delimiter: \"\\t\", header: false, columns: [id, name],"
        " reject_file: r.txt, max_record_bytes: 64KiB }",
        parse_csv_source);
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_EQ(s.value.path, "/etc/prefsync/data/a.tsv");
    EXPECT_EQ(s.value.delimiter, '\t');
    EXPECT_FALSE(s.value.header);
    EXPECT_THAT(s.value.columns, ElementsAre("id", "name"));
    EXPECT_EQ(s.value.max_record_bytes, 64u << 10);
}

TEST(CsvConfig, SourceSectionRefusesAnotherTypesKeyNamingItsPosition) {
    auto s = parse_section("type: csv\npath: a.csv\ntable: customers\n", parse_csv_source);
    EXPECT_THAT(s.errors,
                ElementsAre("/etc/prefsync/section.yaml:3:1: jobs.j.source.table: unknown key; valid keys here: "
                            "type, path, delimiter, header, columns, reject_file, max_record_bytes, settle"));
}

TEST(CsvConfig, SourceSectionNeedsAPathAndColumnsWithoutAHeader) {
    auto s = parse_section("{ type: csv, header: false, delimitr: \";\" }", parse_csv_source);
    EXPECT_THAT(s.errors,
                Contains("/etc/prefsync/section.yaml:1:1: jobs.j.source.path: is required (the CSV file to read)"));
    EXPECT_THAT(s.errors, Contains(HasSubstr("jobs.j.source.columns: is required when header: false")));
    EXPECT_THAT(s.errors, Contains(HasSubstr("jobs.j.source.delimitr: unknown key (did you mean \"delimiter\"?)")));
}

TEST(CsvConfig, SinkSectionNeedsPathAndColumnsAndTakesEach) {
    auto s = parse_section("{ type: csv, path: out.csv, each: Consents, columns: { id: ProfileId, when: \"@.Date\" } }",
                           parse_csv_sink, "jobs.x.sink");
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_EQ(s.value.path, "/etc/prefsync/out.csv");
    EXPECT_EQ(s.value.each, "Consents");
    ASSERT_EQ(s.value.columns.size(), 2u);
    EXPECT_EQ(s.value.columns[1].name, "when");
    EXPECT_EQ(s.value.columns[1].path, "@.Date");
    EXPECT_EQ(s.value.columns[1].pos.to_string(), "/etc/prefsync/section.yaml:1:77");

    auto bad = parse_section("{ type: csv, key: id }", parse_csv_sink, "jobs.x.sink");
    EXPECT_THAT(bad.errors, Contains(HasSubstr("jobs.x.sink.key: unknown key")));
    EXPECT_THAT(bad.errors, Contains(HasSubstr("jobs.x.sink.path: is required (the file to write)")));
    EXPECT_THAT(bad.errors, Contains(HasSubstr("jobs.x.sink.columns: is required")));
}

TEST(JsonlConfig, SinkSectionIsAPathOnly) {
    auto s = parse_section("{ type: jsonl, path: out/p.jsonl }", parse_jsonl_sink, "jobs.x.sink");
    EXPECT_THAT(s.errors, IsEmpty());
    EXPECT_EQ(s.value.path, "/etc/prefsync/out/p.jsonl");
    auto bad =
        parse_section("type: jsonl\npath: p.jsonl\ncolumns: { id: ProfileId }\n", parse_jsonl_sink, "jobs.x.sink");
    EXPECT_THAT(
        bad.errors,
        ElementsAre("/etc/prefsync/section.yaml:3:1: jobs.x.sink.columns: unknown key; valid keys here: type, path"))
        << "profiles are written as received: columns would be silently ignored";
}

TEST(CsvSource, RecordWithTooManyFieldsIsARowErrorNamingFileAndLine) {
    auto s = source_of("id,name\n" + std::string(2u << 20, ',') + "\n1,a\n");
    std::vector<Row> rows;
    ASSERT_TRUE(s.next_batch(rows, 10));
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].origin, "in.csv:2");
    EXPECT_THAT(rows[0].error, HasSubstr("record has more than 32768 fields"));
    EXPECT_FALSE(rows[1].rejected()) << rows[1].error;
    EXPECT_EQ(rows[1].origin, "in.csv:3");
    EXPECT_EQ(*rows[1].values[1], "a");
}

TEST(RejectFile, WritesOriginReasonAndExactBytesAndAppendsAcrossRuns) {
    testing::TempDir dir;
    auto path = dir.file("sub/dir/job.rejects.txt");
    {
        RejectFile f(path, "crm");
        EXPECT_FALSE(std::filesystem::exists(path)) << "no file until there is a reject";
        f.write("in.csv:3", "wrong number of fields", "2,\"multi\nline\"");
        f.flush();
        EXPECT_EQ(f.count(), 1u);
    }
    {
        RejectFile f(path, "crm");
        f.write("in.csv:9", "bad \"quote\"", "x\xC3");
    }
    auto text = testing::read_file(path);
    EXPECT_THAT(text, HasSubstr("# prefsync rejects: job=crm run="));
    EXPECT_THAT(text, HasSubstr("--- in.csv:3 reason=\"wrong number of fields\" bytes=14\n2,\"multi\nline\"\n"));
    EXPECT_THAT(text, HasSubstr("--- in.csv:9 reason=\"bad 'quote'\" bytes=2\nx\xC3\n"));
}

TEST(RejectFile, UnwritablePathIsAnError) {
    RejectFile f("/proc/nope/rejects.txt", "crm");
    EXPECT_THROW(f.write("a:1", "r", "raw"), SourceError);
}

}  // namespace
}  // namespace prefsync::connectors
