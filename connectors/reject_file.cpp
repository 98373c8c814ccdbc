#include "connectors/reject_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace prefsync::connectors {
namespace {

// Rejects are buffered up to this much before a write: a source of bad rows should not cost
// a system call per row, and each write still holds whole entries.
constexpr std::size_t kFlushBytes = 64 * 1024;

}  // namespace

RejectFile::RejectFile(std::string path, std::string job) : path_(std::move(path)), job_(std::move(job)) {}

RejectFile::~RejectFile() {
    if (fd_ < 0) return;
    try {
        flush();
    } catch (const SourceError&) {
        // A destructor cannot report it; every caller flushes before it relies on the file.
    }
    ::close(fd_);
}

void RejectFile::open() {
    std::error_code ec;
    auto dir = std::filesystem::path(path_).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        struct stat st {};
        if (errno == ELOOP && ::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
            throw SourceError("the reject file " + path_ +
                              " is a symbolic link: refusing to write rows (personal data) through it; remove "
                              "the link or set source.reject_file to the real file");
        throw SourceError("cannot write the reject file " + path_ + ": " + std::strerror(errno));
    }
    // A file an older version created with the umask's mode would go on collecting personal
    // data readable by others; one of ours is set back to 0600 (someone else's is left alone).
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) && st.st_uid == ::geteuid())
        (void)::fchmod(fd, S_IRUSR | S_IWUSR);
    fd_ = fd;
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    pending_ += "# prefsync rejects: job=" + job_ + " run=" + stamp + "\n";
}

void RejectFile::write(const std::string& origin, const std::string& why, const std::string& raw) {
    if (fd_ < 0) open();
    std::string reason = why;
    for (auto& c : reason)
        if (c == '"' || c == '\n' || c == '\r') c = '\'';
    pending_ += "--- " + origin + " reason=\"" + reason + "\" bytes=" + std::to_string(raw.size()) + "\n";
    pending_ += raw;
    pending_ += '\n';
    ++count_;
    if (pending_.size() >= kFlushBytes) flush();
}

void RejectFile::flush() {
    std::size_t done = 0;
    while (done < pending_.size()) {
        auto n = ::write(fd_, pending_.data() + done, pending_.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            pending_.erase(0, done);
            throw SourceError("cannot write the reject file " + path_ + ": " + std::strerror(n < 0 ? errno : EIO));
        }
        done += static_cast<std::size_t>(n);
    }
    pending_.clear();
}

}  // namespace prefsync::connectors
