#include "connectors/csv/csv_reader.hpp"

#include <algorithm>
#include <limits>

namespace prefsync::connectors {

CsvReader::CsvReader(std::istream& in, CsvOptions options)
    : in_(in), options_(options), max_fields_(max_fields(options)) {
    stops_[static_cast<unsigned char>(options_.delimiter)] = true;
    stops_['\n'] = true;
    stops_['\r'] = true;
}

bool CsvReader::fill() {
    // Loops because a first chunk can be all byte order mark (a file that is only a BOM):
    // true must mean there is a byte to read.
    while (!eof_) {
        in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        end_ = static_cast<std::size_t>(in_.gcount());
        pos_ = 0;
        if (end_ == 0) eof_ = true;
        if (at_start_ && end_ > 0) {
            at_start_ = false;
            if (end_ >= 3 && static_cast<unsigned char>(buffer_[0]) == 0xEF &&
                static_cast<unsigned char>(buffer_[1]) == 0xBB && static_cast<unsigned char>(buffer_[2]) == 0xBF)
                pos_ = 3;
        }
        if (pos_ < end_) return true;
    }
    return false;
}

std::size_t max_fields(const CsvOptions& options) {
    return std::max<std::size_t>(1024, options.max_record_bytes / sizeof(std::string));
}

namespace {

// max_record_bytes may be anything up to SIZE_MAX: the bounds below must not wrap.
std::size_t bounded_record_bytes(const CsvOptions& options) {
    return std::min(options.max_record_bytes, std::numeric_limits<std::size_t>::max() / 16);
}

}  // namespace

std::size_t max_held_bytes(const CsvOptions& options) {
    // Kept for reuse: at most 2 x max_record_bytes + 16 KiB (release_excess). The record being
    // read: raw and the field strings hold at most max_record_bytes each, which growth may
    // double, and the field vector at most max_fields entries, likewise.
    CsvOptions bounded = options;
    bounded.max_record_bytes = bounded_record_bytes(options);
    return 6 * bounded.max_record_bytes + 2 * max_fields(bounded) * sizeof(std::string) + (64u << 10);
}

void CsvReader::release_excess(CsvRecord& r) const {
    // Field strings keep their capacity from one record to the next, so the usual record costs
    // no allocation. But what a wide record, or a long field in a different column of each of
    // many rejected records, leaves behind would pile up: keep the previous record's fields
    // only, and nothing at all once they hold more than a record's worth.
    if (r.fields.size() > r.field_count) r.fields.resize(r.field_count);
    std::size_t held = r.raw.capacity() + r.fields.capacity() * sizeof(std::string);
    for (const auto& f : r.fields) held += f.capacity();
    if (held > 2 * bounded_record_bytes(options_) + (16u << 10)) {
        std::vector<std::string>().swap(r.fields);
        std::string().swap(r.raw);
    }
}

bool CsvReader::begin_new_field(CsvRecord& r) {
    if (r.field_count == max_fields_) return false;
    if (r.field_count == r.fields.size()) r.fields.emplace_back();
    r.fields[r.field_count++].clear();
    return true;
}

bool CsvReader::next(CsvRecord& r) {
    enum class State { FieldStart, Unquoted, Quoted, QuoteInQuoted };
    release_excess(r);
    r.field_count = 0;
    r.raw.clear();
    r.error.clear();
    r.error_field = 0;
    r.unterminated = false;

    State state = State::FieldStart;
    std::size_t quote_line = 0;
    bool started = false;         // the record has at least one byte
    bool overflow = false;        // past a limit: stop storing, keep parsing to the record's end
    std::size_t inner_lines = 0;  // line ends inside its quotes

    for (;;) {
        if (pos_ == end_ && !fill()) break;
        if (started && !overflow) {
            // Fast paths: copy the run of ordinary bytes up to the next byte that matters, in
            // one append to the field and one to the raw record, where the byte-by-byte path
            // below costs a few hundred instructions per field.
            const char* data = buffer_.data();
            const std::size_t start = pos_;
            if (state == State::Quoted) {
                std::size_t stop = start;
                while (stop < end_ && data[stop] != '"' && data[stop] != '\n') ++stop;
                std::size_t n = stop - start;
                if (n > 0 && r.raw.size() + n <= options_.max_record_bytes) {
                    r.fields[r.field_count - 1].append(data + start, n);
                    r.raw.append(data + start, n);
                    pos_ = stop;
                    continue;
                }
            } else if (state == State::Unquoted || (state == State::FieldStart && data[start] != '"')) {
                // Unquoted text (or a field that starts with it), and the delimiter that ends
                // it: taken here as the byte-by-byte path would, as long as the record stays
                // within its limits (at a limit, that path refuses the record).
                std::size_t stop = start;
                while (stop < end_ && !stops_[static_cast<unsigned char>(data[stop])]) ++stop;
                std::size_t n = stop - start;
                bool delimiter = stop < end_ && data[stop] == options_.delimiter;
                std::size_t take = n + (delimiter ? 1 : 0);
                if (take > 0 && r.raw.size() + take <= options_.max_record_bytes &&
                    (!delimiter || r.field_count < max_fields_)) {
                    r.fields[r.field_count - 1].append(data + start, n);
                    r.raw.append(data + start, take);
                    pos_ = stop + (delimiter ? 1 : 0);
                    if (delimiter) {
                        begin_field(r);
                        state = State::FieldStart;
                    } else {
                        state = State::Unquoted;
                    }
                    continue;
                }
            }
        }
        char c = buffer_[pos_++];
        bool line_end = (c == '\n' || c == '\r') && state != State::Quoted;
        bool lone_cr = false;
        if (line_end && c == '\r') {
            // Peek for the LF of a CRLF, taken with it: either way one line ends here.
            if (pos_ == end_) fill();
            if (pos_ < end_ && buffer_[pos_] == '\n') {
                ++pos_;
                if (line_ends_ == LineEnds::Unknown) line_ends_ = LineEnds::Lf;
            } else if (line_ends_ == LineEnds::Lf && pos_ < end_) {
                // A CR alone where lines end in LF or CRLF: a stray byte of the field (pasted
                // text, say), not a line end. Taken for one, it made two records of one row,
                // the second with another identity (its id cut in two) that went to the API.
                line_end = false;
                lone_cr = true;
            } else {
                line_ends_ = LineEnds::Cr;  // old Mac files: a CR alone ends every line
            }
        } else if (line_end && line_ends_ == LineEnds::Unknown) {
            line_ends_ = LineEnds::Lf;
        }
        if (line_end) {
            ++line_;
            if (!started) {  // blank line: nothing to return
                r.line = line_;
                continue;
            }
            return refused_lines(r, inner_lines);
        }
        if (!started) {
            started = true;
            r.line = line_;
            begin_field(r);
        }
        if (c == '\n') {  // inside quotes
            ++line_;
            ++inner_lines;
        }
        if (lone_cr && r.error.empty()) {
            r.error_field = r.field_count;
            r.error = "a carriage return (CR) alone in field " + std::to_string(r.field_count) +
                      ", where this file's lines end in LF or CRLF: a line break inside a field must be quoted";
        }
        if (lone_cr && state == State::FieldStart) {
            // Before the field's first byte it leaves the field unstarted: a quote after it
            // still opens a quoted field, whose line ends stay inside this (refused) record
            // rather than ending it and making a record of the field's next line.
            if (!overflow && r.raw.size() < options_.max_record_bytes) r.raw += c;
            continue;
        }
        if (!overflow) {
            if (r.raw.size() >= options_.max_record_bytes) {
                overflow = true;
                r.error = "record is longer than " + std::to_string(options_.max_record_bytes) +
                          " bytes (source.max_record_bytes)";
            } else {
                r.raw += c;
            }
        }
        // Past max_fields the record is refused like an overlong one: a line of delimiters
        // must not become millions of (empty) fields.
        auto next_field = [&] {
            if (overflow || begin_field(r)) return;
            overflow = true;
            r.error = "record has more than " + std::to_string(max_fields_) + " fields (source.max_record_bytes / " +
                      std::to_string(sizeof(std::string)) + ")";
        };
        std::string& field = r.fields[r.field_count - 1];
        switch (state) {
            case State::FieldStart:
                if (c == '"') {
                    state = State::Quoted;
                    quote_line = line_;
                } else if (c == options_.delimiter) {
                    next_field();
                } else {
                    if (!overflow) field += c;
                    state = State::Unquoted;
                }
                break;
            case State::Unquoted:
                if (c == options_.delimiter) {
                    next_field();
                    state = State::FieldStart;
                } else if (!overflow) {
                    field += c;
                }
                break;
            case State::Quoted:
                if (c == '"')
                    state = State::QuoteInQuoted;
                else if (!overflow)
                    field += c;
                break;
            case State::QuoteInQuoted:
                if (c == '"') {
                    if (!overflow) field += '"';
                    state = State::Quoted;
                } else if (c == options_.delimiter) {
                    next_field();
                    state = State::FieldStart;
                } else {
                    if (r.error.empty())
                        r.error = "unexpected character after the closing quote of field " +
                                  std::to_string(r.field_count) +
                                  " (quotes inside a quoted "
                                  "field must be doubled)";
                    if (!overflow) field += c;
                    state = State::Unquoted;
                }
                break;
        }
    }
    if (!started) return false;
    r.unterminated = true;
    if (state == State::Quoted)
        r.error =
            "unterminated quoted field (the quote opened on line " + std::to_string(quote_line) + " is never closed)";
    if (inner_lines > 0 && !r.raw.empty() && r.raw.back() == '\n') --inner_lines;  // the file's last line end
    return refused_lines(r, inner_lines);
}

bool CsvReader::refused_lines(CsvRecord& r, std::size_t inner_lines) const {
    // A refused record over many lines is most often a stray quote, whose field ran to the
    // next quote in the file (or its end): say which lines it took, none of which is read
    // as a row. Not read again as rows of their own: they may be the lines of a quoted
    // field, and sent as rows they would write its text into profiles.
    if (!r.error.empty() && inner_lines > 0)
        r.error += "; this one record runs over lines " + std::to_string(r.line) + " to " +
                   std::to_string(r.line + inner_lines) + ", none of which is read as a row (a stray quote?)";
    return true;
}

}  // namespace prefsync::connectors
