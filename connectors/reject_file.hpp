#pragma once
// The reject file: rows that could not be read or mapped, with where they came from, why,
// and their original bytes, so an operator can fix and re-feed them.
//
// Format (appended, one run after another; nothing from an earlier run is lost):
//   # prefsync rejects: job=JOB run=2026-11-28T02:00:00Z
//   --- ORIGIN reason="WHY" bytes=N
//   <exactly N original bytes>
// The byte count makes the format unambiguous whatever the row holds (newlines, bad UTF-8).
//
// Design constraints:
// - The rows are personal data: the file is created 0600 whatever the umask (and one an
//   older version left readable to others is set back to 0600), and a symbolic link at its
//   path is refused rather than followed, so nobody can point it at a file of their choosing.
// - Appended with O_APPEND in whole entries: a write never lands in the middle of another
//   one, and nothing already in the file is overwritten.
#include <cstddef>
#include <string>

#include "connectors/source.hpp"

namespace prefsync::connectors {

class RejectFile {
public:
    RejectFile(std::string path, std::string job);
    ~RejectFile();
    RejectFile(const RejectFile&) = delete;
    RejectFile& operator=(const RejectFile&) = delete;
    // Opens the file (and its directory) on the first reject, so a clean run leaves none.
    // Throws SourceError when it cannot be written: losing rejects silently is not an option.
    void write(const std::string& origin, const std::string& reason, const std::string& raw);
    // Hands everything written so far to the file (the kernel; not fsync). Throws SourceError.
    void flush();
    std::size_t count() const { return count_; }
    const std::string& path() const { return path_; }

private:
    void open();
    std::string path_;
    std::string job_;
    int fd_ = -1;
    std::string pending_;  // whole entries not yet written
    std::size_t count_ = 0;
};

}  // namespace prefsync::connectors
