#include "connectors/file_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "connectors/table_sink.hpp"

namespace prefsync::connectors {

namespace {
[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw SinkError(what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

FileSink::FileSink(std::string path, std::int64_t resume_offset) : path_(std::move(path)) {
    std::error_code ec;
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    auto partial = partial_path();
    // 0600: pulled profiles are personal data.
    fd_ = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) fail("cannot open", partial);
    if (::ftruncate(fd_, resume_offset) != 0) fail("cannot truncate", partial);
    if (::lseek(fd_, resume_offset, SEEK_SET) < 0) fail("cannot seek in", partial);
    written_ = resume_offset;
}

FileSink::~FileSink() {
    int ignored = 0;
    syncer_.done(true, ignored);  // before the descriptor it syncs is closed
    if (fd_ >= 0) ::close(fd_);
}

void FileSink::append(std::string_view bytes) {
    buffer_.append(bytes);
    if (buffer_.size() >= (256u << 10)) write_buffer();
}

void FileSink::write_buffer() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
        auto n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("cannot write", partial_path());
        }
        done += static_cast<std::size_t>(n);
    }
    written_ += static_cast<std::int64_t>(buffer_.size());
    buffer_.clear();
}

std::int64_t FileSink::sync() {
    sync_done(true);
    write_buffer();
    sync_here();
    return written_;
}

void FileSink::sync_here() {
    if (::fdatasync(fd_) != 0) fail("cannot sync", partial_path());
}

std::int64_t FileSink::begin_sync() {
    sync_done(true);
    write_buffer();
    // fdatasync covers at least what was written before it began; later appends may go
    // to the same file meanwhile (they are the next sync's).
    syncer_.start(fd_);
    return written_;
}

bool FileSink::sync_done(bool wait) {
    int error = 0;
    if (!syncer_.done(wait, error)) return false;
    if (error != 0) {
        errno = error;
        fail("cannot sync", partial_path());
    }
    return true;
}

void FileSink::finish() {
    sync();
    ::close(fd_);
    fd_ = -1;
    auto partial = partial_path();
    if (std::rename(partial.c_str(), path_.c_str()) != 0) fail("cannot rename " + partial + " to", path_);
    auto dir = std::filesystem::path(path_).parent_path();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace prefsync::connectors
