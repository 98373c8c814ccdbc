#include "daemon/journal/job_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "daemon/base/clock.hpp"
#include "daemon/journal/database.hpp"

namespace prefsync::journal {
namespace {

std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "?";
    return name;
}

// A job name as a file name: letters, digits, '.', '_' and '-' as they are, others %XX.
std::string file_name(const std::string& job) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : job) {
        if (std::isalnum(c) || c == '_' || c == '-' || (c == '.' && !out.empty())) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out + ".lock";
}

}  // namespace

JobLock::JobLock(const std::string& journal_path, const std::string& job, const std::string& owner) {
    auto dir = std::filesystem::path(journal_path).parent_path() / "locks";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    auto path = (dir / file_name(job)).string();
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) throw JournalError("job lock " + path + ": cannot open: " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        char buf[512] = {};
        auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
        ::close(fd_);
        fd_ = -1;
        if (error != EWOULDBLOCK) throw JournalError("job lock " + path + ": " + std::strerror(error));
        // "<pid> <host> <owner> <unix seconds>"
        long long pid = 0, since = 0;
        char host[256] = {}, who[64] = {};
        std::string holder = "another prefsync process";
        if (n > 0 && std::sscanf(buf, "%lld %255s %63s %lld", &pid, host, who, &since) == 4)
            holder = (std::string(who) == "daemon" ? "the daemon" : "`" + std::string(who) + "`") + " (pid " +
                     std::to_string(pid) + " on " + host + ") since " +
                     base::iso_utc(static_cast<base::Millis>(since) * 1000);
        refusal_ = "job " + job + " is being run by " + holder + "; wait for that run to finish, or stop it";
        return;
    }
    auto line =
        std::to_string(::getpid()) + " " + host_name() + " " + owner + " " + std::to_string(std::time(nullptr)) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, line.data(), line.size(), 0) < 0) {
        // The holder's description is for messages only; the lock itself is held.
    }
}

JobLock::~JobLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace prefsync::journal
