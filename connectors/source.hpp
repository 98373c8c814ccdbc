#pragma once
// What every source connector yields: rows with their origin, in input order.
//
// Design constraints:
// - Every input record comes out as a Row, in input order; one that cannot be read carries
//   its reason in `error` (and no values): nothing is skipped silently.
// - Sources stream: memory is bounded by the batch size, never by the input size.
// - A problem with one record rejects that record; a problem with the source itself (cannot
//   open, bad header) throws SourceError, which aborts the run before anything is sent.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace prefsync::connectors {

struct Row {
    std::string origin;  // "path:line" or a query key: where a user finds this row
    // One value per column; nullopt is NULL (SQL), distinct from an empty string. A row
    // rejected for one of its values (invalid UTF-8, a NUL byte) keeps them: its identity may be readable.
    std::vector<std::optional<std::string>> values;
    std::string raw;    // the original bytes where the source has them (CSV), for rejects
    std::string error;  // non-empty: the record could not be read, and why

    bool rejected() const { return !error.empty(); }
};

// Where an incremental source stands: the incremental column and key of the last row it
// returned, as text (the source's own encoding; only that source reads it back).
struct Position {
    std::string value;
    std::string key;
};

class SourceError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
// The source is there, and its header can never be read as columns (named twice, unnamed,
// malformed): every run would stop on it, so `check-config` calls it an error, where a
// file missing or empty when it checks may still be dropped in time.
class SourceHeaderError : public SourceError {
public:
    using SourceError::SourceError;
};
// The source changed while it was read (a file written in place): read again later, it is
// likely whole. A run stops on it as interrupted, not failed (the daemon reads it again
// soon instead of parking the job until its next slot).
class SourceChangedError : public SourceError {
public:
    using SourceError::SourceError;
};
// The source is a file modified less than its `settle` ago (an export still being written,
// paused): not read yet, as one that changed while it was read. Its end read then, a row cut
// mid-field was sent and the rows not yet written were taken for removed ones.
class SourceUnsettledError : public SourceChangedError {
public:
    SourceUnsettledError(const std::string& what, std::int64_t wait) : SourceChangedError(what), wait_ms(wait) {}
    std::int64_t wait_ms;  // until it will have been quiet for `settle`, if it is not written again
};

class Source {
public:
    virtual ~Source() = default;
    // Column names, in order; fixed once the source is open.
    virtual const std::vector<std::string>& columns() const = 0;
    // Replaces `rows` with the next records (at most max_rows, at least one unless the input
    // is exhausted), in input order. Returns false when the input is exhausted.
    virtual bool next_batch(std::vector<Row>& rows, std::size_t max_rows) = 0;
    // "csv examples/profiles.csv", for messages (never a password).
    virtual std::string describe() const = 0;
    // Incremental sources: the position after the rows returned so far; nullopt before the
    // first row that has one, and for sources that are not incremental.
    virtual std::optional<Position> position() const { return std::nullopt; }
    // Once the input is exhausted: what a run should warn of about the read as a whole ("" for
    // nothing), e.g. a file whose last record has no line end. Names the place, never a value.
    virtual std::string end_warning() const { return {}; }
};

}  // namespace prefsync::connectors
