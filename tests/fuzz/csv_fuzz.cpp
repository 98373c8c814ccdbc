// CsvReader on any bytes. The first byte picks the delimiter, the second max_record_bytes;
// the rest is the file.
//
// Checked beyond "no crash": every record stays within the limits (bytes, fields, memory
// held), line numbers never go back, and a record read without error, written back as CSV,
// reads back to the same fields.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "connectors/csv/csv_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using prefsync::connectors::CsvOptions;
using prefsync::connectors::CsvReader;
using prefsync::connectors::CsvRecord;

std::size_t held(const CsvRecord& r) {
    std::size_t n = r.raw.capacity() + r.fields.capacity() * sizeof(std::string);
    for (const auto& f : r.fields) n += f.capacity();
    return n;
}

std::string write_back(const CsvRecord& r, char delimiter) {
    std::string out;
    for (std::size_t i = 0; i < r.field_count; ++i) {
        if (i > 0) out += delimiter;
        out += '"';
        for (char c : r.fields[i]) {
            if (c == '"') out += '"';
            out += c;
        }
        out += '"';
    }
    return out + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    CsvOptions options;
    // The delimiters config accepts: one byte, not a quote or a line end.
    char d = static_cast<char>(data[0]);
    options.delimiter = (d == '"' || d == '\n' || d == '\r') ? ',' : d;
    // 0: the default. Below 128: a few hundred bytes, so refusals are common. From 128: 1 to
    // 128 KiB, where max_fields (1,024 and up) binds before the byte limit does.
    std::size_t b = data[1];
    options.max_record_bytes = b == 0 ? std::size_t{1} << 20 : b < 128 ? b * 4 : (b - 127) * 1024;
    std::istringstream in(std::string(reinterpret_cast<const char*>(data) + 2, size - 2));
    CsvReader reader(in, options);
    CsvRecord r;
    std::size_t last_line = 0;
    while (reader.next(r)) {
        FUZZ_REQUIRE(r.line >= last_line && r.line >= 1);
        last_line = r.line;
        FUZZ_REQUIRE(r.field_count >= 1 && r.field_count <= r.fields.size());
        FUZZ_REQUIRE(r.field_count <= prefsync::connectors::max_fields(options));
        FUZZ_REQUIRE(r.raw.size() <= options.max_record_bytes);
        std::size_t content = 0;
        for (std::size_t i = 0; i < r.field_count; ++i) content += r.fields[i].size();
        FUZZ_REQUIRE(content <= r.raw.size());
        FUZZ_REQUIRE(held(r) <= prefsync::connectors::max_held_bytes(options));
        if (!r.error.empty()) continue;
        // No error: the record was stored whole, and reads back the same.
        std::istringstream again(write_back(r, options.delimiter));
        CsvOptions roomy = options;
        roomy.max_record_bytes = std::size_t{1} << 20;
        CsvReader reread(again, roomy);
        CsvRecord copy;
        FUZZ_REQUIRE(reread.next(copy));
        FUZZ_REQUIRE(copy.error.empty() && copy.field_count == r.field_count);
        for (std::size_t i = 0; i < r.field_count; ++i) FUZZ_REQUIRE(copy.fields[i] == r.fields[i]);
    }
    return 0;
}
