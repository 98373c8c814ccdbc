#pragma once
// An output file a reader never sees half-written: bytes go to "<path>.partial", which is
// renamed to <path> when the run completes. sync() makes what was appended durable and
// returns the size that is; a resumed run reopens the partial file truncated to the size
// its journal recorded, so lines written after the last journal commit are dropped and
// written again once, never twice.
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/background_sync.hpp"

namespace prefsync::connectors {

class FileSink {
public:
    // Throws SinkError. resume_offset 0 starts an empty file.
    FileSink(std::string path, std::int64_t resume_offset);
    ~FileSink();
    FileSink(const FileSink&) = delete;
    FileSink& operator=(const FileSink&) = delete;

    void append(std::string_view bytes);
    // Writes what is buffered, fsyncs; the durable size.
    std::int64_t sync();
    // sync() without waiting: writes what is buffered and fsyncs on a thread of its own,
    // while appends go on; the size that is durable once sync_done(). One at a time: a
    // second waits for the first.
    std::int64_t begin_sync();
    // Whether the last begin_sync() is durable, waiting for it if `wait`; throws SinkError
    // when it could not be made so (as sync() would).
    bool sync_done(bool wait);
    // sync(), then renames the partial file over `path` (and fsyncs the directory).
    void finish();
    std::int64_t size() const { return written_ + static_cast<std::int64_t>(buffer_.size()); }
    const std::string& path() const { return path_; }
    std::string partial_path() const { return path_ + ".partial"; }

private:
    void write_buffer();
    void sync_here();  // fdatasync on this thread, or SinkError

    std::string path_;
    int fd_ = -1;
    std::string buffer_;
    std::int64_t written_ = 0;
    base::BackgroundSync syncer_;
};

}  // namespace prefsync::connectors
