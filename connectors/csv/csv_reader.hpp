#pragma once
// A streaming RFC 4180 reader: quoted fields, doubled quotes, CRLF or LF line ends, newlines
// inside quotes, a leading UTF-8 BOM. It reads in fixed-size chunks and holds one record at a
// time, so memory stays flat whatever the file size.
//
// Tolerated: a bare quote inside an unquoted field (kept as a character, as spreadsheet
// exports do); blank lines (skipped, still counted for line numbers).
// Refused (the record is returned with `error` set, and reading goes on with the next one):
// characters after a closing quote, an unterminated quoted field, records over
// max_record_bytes or with more than max_fields() fields.
//
// Memory: the reader and the record it fills hold at most max_held_bytes() (plus the fixed
// read buffer), whatever the input: a refused record's bytes past the limit are parsed (to
// find where the next record starts) but not stored.
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

// Fields per record: max_record_bytes / sizeof(std::string) (32,768 at the default 1 MiB),
// at least 1,024, so the field vector weighs about as much as the bytes allowed.
std::size_t max_fields(const CsvOptions& options);
// The bound on what a CsvReader and the CsvRecord it fills hold (about 8 x max_record_bytes).
std::size_t max_held_bytes(const CsvOptions& options);

struct CsvRecord {
    std::vector<std::string> fields;  // only the first field_count are this record's
    std::size_t field_count = 0;
    std::string raw;              // the record's bytes, without its line end
    std::size_t line = 0;         // 1-based line where the record starts
    std::string error;            // non-empty: the record is malformed
    std::size_t error_field = 0;  // 1-based: the field the error is in, if one is (0: none)
    bool unterminated = false;    // the input ended in it, without a line end (cut, or no final newline)
};

class CsvReader {
public:
    CsvReader(std::istream& in, CsvOptions options);
    // Reads the next record into `record` (reusing its storage, pass the same one each time
    // for the memory bound to hold). False at end of input.
    bool next(CsvRecord& record);

private:
    bool fill();
    // true, after naming in a refused record's error the lines it runs over (if several).
    bool refused_lines(CsvRecord& r, std::size_t inner_lines) const;
    // false: the record already has max_fields. Inline for the usual case, a field the
    // record's storage has room for (one per field read).
    bool begin_field(CsvRecord& r) {
        if (r.field_count < r.fields.size() && r.field_count < max_fields_) {
            r.fields[r.field_count++].clear();
            return true;
        }
        return begin_new_field(r);
    }
    bool begin_new_field(CsvRecord& r);  // begin_field() when it needs a new string
    void release_excess(CsvRecord& r) const;

    std::istream& in_;
    CsvOptions options_;
    std::size_t max_fields_;
    // The bytes that end a run of unquoted text: the delimiter and the line ends (one table
    // look-up per byte instead of three comparisons).
    std::array<bool, 256> stops_{};
    std::array<char, 1 << 16> buffer_{};
    std::size_t pos_ = 0, end_ = 0;
    std::size_t line_ = 1;
    // How the file's lines end, from its first line end: after an LF or a CRLF, a CR alone
    // is refused as a stray byte in a field; after a CR alone, CR ends every line.
    enum class LineEnds { Unknown, Lf, Cr } line_ends_ = LineEnds::Unknown;
    bool at_start_ = true;  // before the first byte: a BOM may follow
    bool eof_ = false;
};

}  // namespace prefsync::connectors
