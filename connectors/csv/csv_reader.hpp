#pragma once
// A streaming RFC 4180 reader: quoted fields, doubled quotes, CRLF or LF line ends, newlines
// inside quotes, a leading UTF-8 BOM. It reads in fixed-size chunks and holds one record at a
// time, so memory stays flat whatever the file size.
//
// Tolerated: a bare quote inside an unquoted field (kept as a character, as spreadsheet
// exports do); blank lines (skipped, still counted for line numbers).
// Refused (the record is returned with `error` set, and reading goes on with the next one):
// characters after a closing quote, an unterminated quoted field, records over
// max_record_bytes.
#include <array>
#include <cstddef>
#include <istream>
#include <string>
#include <vector>

namespace prefsync::connectors {

struct CsvOptions {
    char delimiter = ',';
    std::size_t max_record_bytes = 1u << 20;
};

struct CsvRecord {
    std::vector<std::string> fields;  // only the first field_count are this record's
    std::size_t field_count = 0;
    std::string raw;                  // the record's bytes, without its line end
    std::size_t line = 0;             // 1-based line where the record starts
    std::string error;                // non-empty: the record is malformed
};

class CsvReader {
public:
    CsvReader(std::istream& in, CsvOptions options);
    // Reads the next record into `record` (reusing its storage). False at end of input.
    bool next(CsvRecord& record);

private:
    bool fill();
    void begin_field(CsvRecord& r);

    std::istream& in_;
    CsvOptions options_;
    std::array<char, 1 << 16> buffer_{};
    std::size_t pos_ = 0, end_ = 0;
    std::size_t line_ = 1;
    bool at_start_ = true;  // before the first byte: a BOM may follow
    bool eof_ = false;
};

}  // namespace prefsync::connectors
