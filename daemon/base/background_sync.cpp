#include "daemon/base/background_sync.hpp"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace prefsync::base {

BackgroundSync::~BackgroundSync() {
    if (thread_.joinable()) thread_.join();
}

namespace {
int sync_file(int fd) {
    while (::fdatasync(fd) != 0)
        if (errno != EINTR) return errno;
    return 0;
}
}  // namespace

void BackgroundSync::start(int fd) {
    if (thread_.joinable()) thread_.join();
    if (errno_ != 0) return;  // a failure not yet reported stays the one done() reports
    over_.store(false, std::memory_order_relaxed);
    try {
        thread_ = std::thread([this, fd] {
            errno_ = sync_file(fd);
            over_.store(true, std::memory_order_release);
        });
    } catch (...) {  // no thread to be had (a task limit, no memory): synced here
        errno_ = sync_file(fd);
        over_.store(true, std::memory_order_release);
    }
}

bool BackgroundSync::done(bool wait, int& error) {
    error = 0;
    if (!wait && !over_.load(std::memory_order_acquire)) return false;
    if (thread_.joinable()) thread_.join();
    error = std::exchange(errno_, 0);
    return true;
}

}  // namespace prefsync::base
