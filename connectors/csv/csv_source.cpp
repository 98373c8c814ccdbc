#include "connectors/csv/csv_source.hpp"

#include <simdjson.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

namespace prefsync::connectors {
namespace {

// The file as a stream that notices a change while it is read. A file written in place while
// a sync reads it (a drop rewritten, an export still being written) gave rows made of both
// versions: the row at a read's edge had the old bytes before it and the new ones after,
// kept its field count and was sent (an outside-in test: "71 Rue de la Paaix"). Its size and
// modification time, as at the open, are checked after every read of the file: read after
// the change, its bytes are never handed to the parser; the read stops with an error
// instead, and what was read before is as the file was at the open.
class WatchedFile final : public std::streambuf {
public:
    explicit WatchedFile(std::string path) : path_(std::move(path)) {
        do fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        while (fd_ < 0 && errno == EINTR);
        if (fd_ < 0) {
            auto error = errno;
            throw SourceError("cannot open " + path_ + ": " + std::strerror(error));
        }
        if (::fstat(fd_, &opened_) != 0) {
            auto error = errno;
            ::close(fd_);
            throw SourceError("cannot read " + path_ + ": " + std::strerror(error));
        }
    }
    ~WatchedFile() override { ::close(fd_); }
    // The file's metadata as opened: what every later read is checked against.
    const struct stat& opened() const { return opened_; }
    WatchedFile(const WatchedFile&) = delete;
    WatchedFile& operator=(const WatchedFile&) = delete;

protected:
    // The reader asks for large chunks (CsvReader::fill): read straight into them. Fewer
    // than `n` bytes only at the end (what istream::read takes a short count for): a pipe
    // or FIFO answers in smaller pieces.
    std::streamsize xsgetn(char* out, std::streamsize n) override {
        std::streamsize total = 0;
        // A byte underflow() put in the get area comes first.
        for (; total < n && gptr() < egptr(); gbump(1)) out[total++] = *gptr();
        while (total < n) {
            ssize_t got = ::read(fd_, out + total, static_cast<std::size_t>(n - total));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) fail_reading(errno);
            check_unchanged();
            if (got == 0) break;
            total += got;
        }
        return total;
    }
    int_type underflow() override {
        if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
        auto got = xsgetn(&byte_, 1);
        if (got == 0) return traits_type::eof();
        setg(&byte_, &byte_, &byte_ + 1);
        return traits_type::to_int_type(byte_);
    }

private:
    void check_unchanged() const {
        // A pipe's times change as it is written to; only a regular file has a version.
        if (!S_ISREG(opened_.st_mode)) return;
        struct stat now {};
        if (::fstat(fd_, &now) != 0) fail_reading(errno);
        if (now.st_size == opened_.st_size && now.st_mtim.tv_sec == opened_.st_mtim.tv_sec &&
            now.st_mtim.tv_nsec == opened_.st_mtim.tv_nsec)
            return;
        throw SourceChangedError(
            path_ + " changed while it was being read (" +
            (now.st_size == opened_.st_size
                 ? std::string("modified")
                 : std::to_string(opened_.st_size) + " bytes at the start, " + std::to_string(now.st_size) + " now") +
            "): the rows read before were as the file was at the start; the rest is not read, "
            "and is read again by the next run. Write the file under another name and rename it "
            "into place, so a sync reads one version whole");
    }
    [[noreturn]] void fail_reading(int error) const {
        throw SourceError("cannot read " + path_ + ": " + std::strerror(error));
    }

    std::string path_;
    int fd_ = -1;
    struct stat opened_ {};
    char byte_ = 0;
};

// The stream rethrows WatchedFile's SourceError (badbit) instead of reading as at an end.
class WatchedStream final : public std::istream {
public:
    explicit WatchedStream(std::string path) : std::istream(nullptr), file_(std::move(path)) {
        rdbuf(&file_);
        exceptions(std::ios::badbit);
    }
    const struct stat& opened() const { return file_.opened(); }

private:
    WatchedFile file_;
};

std::string seconds_text(std::int64_t ms) {
    auto text = std::to_string(ms / 1000);
    if (ms % 1000 != 0) {
        text += "." + std::to_string(ms % 1000 + 1000).substr(1);
        while (text.back() == '0') text.pop_back();
    }
    return text + " s";
}

// The file as opened, refused while it is written less than `settle` ago: a writer that
// pauses (an export between two of its chunks) left a premature end, read as the file's: its
// last record cut mid-field was sent, and the rows not yet written were taken for removed
// ones (an outside-in test: 1999 deactivations). Checked on the open file, so the version
// judged is the one read; one written to after that is WatchedFile's.
std::unique_ptr<std::istream> open_file(const CsvSourceConfig& config, std::optional<std::int64_t> now_ms) {
    auto file = std::make_unique<WatchedStream>(config.path);
    const auto& st = file->opened();
    auto settle = config.settle.count();
    if (!now_ms || settle <= 0 || !S_ISREG(st.st_mode)) return file;
    std::int64_t modified = std::int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    auto wait = settle_remaining(modified, *now_ms, settle);
    if (wait == 0) return file;
    throw SourceUnsettledError(config.path + " was modified " +
                                   seconds_text(std::max<std::int64_t>(0, *now_ms - modified)) +
                                   " ago, less than its settle time (" + seconds_text(settle) +
                                   "): it may still be being written, and is not read yet. Write the file under "
                                   "another name and rename it into place, so a sync reads one version whole",
                               wait);
}

bool valid_utf8(const std::string& s) {
    return simdjson::validate_utf8(s.data(), s.size());
}

}  // namespace

std::int64_t settle_remaining(std::int64_t modified_ms, std::int64_t now_ms, std::int64_t settle_ms) {
    if (settle_ms <= 0) return 0;
    // A clock a little ahead of ours: quiet since now, at the most. Far ahead (a share whose
    // clock is wrong), the time says nothing of when the file was written: waiting on it
    // would refuse the file until our clock passed it, so it is read.
    if (modified_ms > now_ms + kSettleClockSkewMs) return 0;
    if (modified_ms > now_ms) return settle_ms;
    return std::max<std::int64_t>(0, modified_ms + settle_ms - now_ms);
}

CsvSource::CsvSource(const CsvSourceConfig& config, std::optional<std::int64_t> now_ms)
    : CsvSource(open_file(config, now_ms), config.path, config) {}

CsvSource::CsvSource(std::unique_ptr<std::istream> in, std::string name, const CsvSourceConfig& config)
    : in_(std::move(in)), name_(std::move(name)), reader_(*in_, CsvOptions{config.delimiter, config.max_record_bytes}) {
    read_header(config);
}

void CsvSource::read_header(const CsvSourceConfig& config) {
    if (!config.header) {
        columns_ = config.columns;
        return;
    }
    if (!reader_.next(record_)) throw SourceError(name_ + ": the file is empty (no header row)");
    if (record_.unterminated) unterminated_line_ = record_.line;
    auto where = origin(record_.line);
    if (!record_.error.empty()) throw SourceHeaderError(where + ": header row: " + record_.error);
    if (!valid_utf8(record_.raw)) throw SourceHeaderError(where + ": header row is not valid UTF-8");
    std::set<std::string> seen;
    for (std::size_t i = 0; i < record_.field_count; ++i) {
        std::string name = record_.fields[i];
        // Headers written by hand often carry stray spaces; columns are named without them.
        while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
        while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.erase(0, 1);
        if (name.empty()) throw SourceHeaderError(where + ": header column " + std::to_string(i + 1) + " has no name");
        if (!seen.insert(name).second) throw SourceHeaderError(where + ": header names column \"" + name + "\" twice");
        columns_.push_back(std::move(name));
    }
}

std::string CsvSource::origin(std::size_t line) const {
    // Built for every row read: one allocation, not the three of name_ + ":" + to_string().
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, line).ptr;
    std::string out;
    out.reserve(name_.size() + 1 + static_cast<std::size_t>(end - digits));
    out.append(name_).append(1, ':').append(digits, end);
    return out;
}

bool CsvSource::next_batch(std::vector<Row>& rows, std::size_t max_rows) {
    rows.clear();
    while (rows.size() < max_rows && reader_.next(record_)) {
        if (record_.unterminated) unterminated_line_ = record_.line;
        Row& row = rows.emplace_back();
        row.origin = origin(record_.line);
        row.raw = record_.raw;
        if (!record_.error.empty()) {
            row.error = record_.error;
            if (record_.error_field > 0 && record_.error_field <= columns_.size())
                row.error += " (column \"" + columns_[record_.error_field - 1] + "\")";
            continue;
        }
        if (record_.field_count != columns_.size()) {
            row.error = "wrong number of fields: expected " + std::to_string(columns_.size()) + ", got " +
                        std::to_string(record_.field_count);
            continue;
        }
        if (!valid_utf8(record_.raw)) {
            std::size_t bad = 0;
            while (bad + 1 < record_.field_count && valid_utf8(record_.fields[bad])) ++bad;
            row.error = "invalid UTF-8 in column \"" + columns_[bad] + "\"";
            // Its values all the same: the row's identity may be readable (intake.cpp).
        } else if (record_.raw.find('\0') != std::string::npos) {
            // Valid UTF-8, but no text: an export of binary data, or a broken file.
            std::size_t bad = 0;
            while (bad + 1 < record_.field_count && record_.fields[bad].find('\0') == std::string::npos) ++bad;
            row.error = "a NUL byte in column \"" + columns_[bad] + "\"";
        }
        row.values.resize(record_.field_count);
        for (std::size_t i = 0; i < record_.field_count; ++i) row.values[i] = std::move(record_.fields[i]);
    }
    return !rows.empty();
}

std::string CsvSource::end_warning() const {
    if (unterminated_line_ == 0) return {};
    // Many tools leave the final newline out, so the record is read; but a file still being
    // written ends the same way, in the middle of a value.
    return origin(unterminated_line_) +
           ": the last record has no line end: it may have been cut if the file was still being written "
           "(write the file under another name and rename it into place)";
}

}  // namespace prefsync::connectors
