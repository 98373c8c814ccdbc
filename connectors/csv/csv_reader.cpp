#include "connectors/csv/csv_reader.hpp"

namespace prefsync::connectors {

CsvReader::CsvReader(std::istream& in, CsvOptions options) : in_(in), options_(options) {}

bool CsvReader::fill() {
    if (eof_) return false;
    in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    end_ = static_cast<std::size_t>(in_.gcount());
    pos_ = 0;
    if (end_ == 0) eof_ = true;
    if (at_start_ && end_ > 0) {
        at_start_ = false;
        if (end_ >= 3 && static_cast<unsigned char>(buffer_[0]) == 0xEF &&
            static_cast<unsigned char>(buffer_[1]) == 0xBB &&
            static_cast<unsigned char>(buffer_[2]) == 0xBF)
            pos_ = 3;
    }
    return end_ > 0;
}

void CsvReader::begin_field(CsvRecord& r) {
    if (r.field_count == r.fields.size()) r.fields.emplace_back();
    r.fields[r.field_count++].clear();
}

bool CsvReader::next(CsvRecord& r) {
    enum class State { FieldStart, Unquoted, Quoted, QuoteInQuoted };
    r.field_count = 0;
    r.raw.clear();
    r.error.clear();

    State state = State::FieldStart;
    std::size_t quote_line = 0;
    bool started = false;     // the record has at least one byte
    bool overflow = false;    // past max_record_bytes: stop storing, keep parsing to the end
    bool pending_cr = false;  // a CR ended the previous record; swallow a following LF

    for (;;) {
        if (pos_ == end_ && !fill()) break;
        if (started && !overflow && !pending_cr &&
            (state == State::Unquoted || state == State::Quoted)) {
            // Fast path: copy the run of ordinary bytes up to the next byte that matters.
            const char* data = buffer_.data();
            std::size_t start = pos_, stop = pos_;
            if (state == State::Unquoted) {
                while (stop < end_ && data[stop] != options_.delimiter && data[stop] != '\n' &&
                       data[stop] != '\r')
                    ++stop;
            } else {
                while (stop < end_ && data[stop] != '"' && data[stop] != '\n') ++stop;
            }
            std::size_t n = stop - start;
            if (n > 0 && r.raw.size() + n <= options_.max_record_bytes) {
                r.fields[r.field_count - 1].append(data + start, n);
                r.raw.append(data + start, n);
                pos_ = stop;
                continue;
            }
        }
        char c = buffer_[pos_++];
        if (pending_cr) {
            pending_cr = false;
            if (c == '\n') {
                ++line_;
                continue;
            }
        }
        bool line_end = (c == '\n' || c == '\r') && state != State::Quoted;
        if (line_end) {
            if (!started) {  // blank line: nothing to return
                if (c == '\n') ++line_;
                else pending_cr = true;
                r.line = line_;
                continue;
            }
            if (c == '\n') ++line_;
            else {
                // Peek for the LF of a CRLF so the next record starts on the right line.
                if (pos_ == end_) fill();
                if (pos_ < end_ && buffer_[pos_] == '\n') {
                    ++pos_;
                    ++line_;
                }
            }
            return true;
        }
        if (!started) {
            started = true;
            r.line = line_;
            begin_field(r);
        }
        if (c == '\n') ++line_;  // inside quotes
        if (!overflow) {
            if (r.raw.size() >= options_.max_record_bytes) {
                overflow = true;
                r.error = "record is longer than " + std::to_string(options_.max_record_bytes) +
                          " bytes (source.max_record_bytes)";
            } else {
                r.raw += c;
            }
        }
        std::string& field = r.fields[r.field_count - 1];
        switch (state) {
            case State::FieldStart:
                if (c == '"') {
                    state = State::Quoted;
                    quote_line = line_;
                } else if (c == options_.delimiter) {
                    begin_field(r);
                } else {
                    if (!overflow) field += c;
                    state = State::Unquoted;
                }
                break;
            case State::Unquoted:
                if (c == options_.delimiter) {
                    begin_field(r);
                    state = State::FieldStart;
                } else if (!overflow) {
                    field += c;
                }
                break;
            case State::Quoted:
                if (c == '"') state = State::QuoteInQuoted;
                else if (!overflow) field += c;
                break;
            case State::QuoteInQuoted:
                if (c == '"') {
                    if (!overflow) field += '"';
                    state = State::Quoted;
                } else if (c == options_.delimiter) {
                    begin_field(r);
                    state = State::FieldStart;
                } else {
                    if (r.error.empty())
                        r.error = "unexpected character after the closing quote of field " +
                                  std::to_string(r.field_count) + " (quotes inside a quoted "
                                  "field must be doubled)";
                    if (!overflow) field += c;
                    state = State::Unquoted;
                }
                break;
        }
    }
    if (!started) return false;
    if (state == State::Quoted)
        r.error = "unterminated quoted field (the quote opened on line " +
                  std::to_string(quote_line) + " is never closed)";
    return true;
}

}  // namespace prefsync::connectors
