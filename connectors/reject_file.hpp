#pragma once
// The reject file: rows that could not be read or mapped, with where they came from, why,
// and their original bytes, so an operator can fix and re-feed them.
//
// Format (appended, one run after another; nothing from an earlier run is lost):
//   # prefsync rejects: job=JOB run=2026-11-28T02:00:00Z
//   --- ORIGIN reason="WHY" bytes=N
//   <exactly N original bytes>
// The byte count makes the format unambiguous whatever the row holds (newlines, bad UTF-8).
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>

#include "connectors/source.hpp"

namespace prefsync::connectors {

class RejectFile {
public:
    RejectFile(std::string path, std::string job);
    // Opens the file (and its directory) on the first reject, so a clean run leaves none.
    // Throws SourceError when it cannot be written: losing rejects silently is not an option.
    void write(const std::string& origin, const std::string& reason, const std::string& raw);
    void flush();
    std::size_t count() const { return count_; }
    const std::string& path() const { return path_; }

private:
    struct Closer {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::string path_;
    std::string job_;
    std::unique_ptr<std::FILE, Closer> file_;
    std::size_t count_ = 0;
};

}  // namespace prefsync::connectors
