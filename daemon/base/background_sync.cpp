#include "daemon/base/background_sync.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace prefsync::base {

BackgroundSync::~BackgroundSync() {
    if (thread_.joinable()) thread_.join();
}

int BackgroundSync::start(int fd) {
    int before = 0;
    done(true, before);
    over_.store(false, std::memory_order_relaxed);
    try {
        thread_ = std::thread([this, fd] {
            errno_ = ::fdatasync(fd) == 0 ? 0 : errno;
            over_.store(true, std::memory_order_release);
        });
    } catch (const std::system_error&) {
        errno_ = ::fdatasync(fd) == 0 ? 0 : errno;
        over_.store(true, std::memory_order_release);
    }
    return before;
}

bool BackgroundSync::done(bool wait, int& error) {
    error = 0;
    if (!wait && !over_.load(std::memory_order_acquire)) return false;
    if (thread_.joinable()) thread_.join();
    error = std::exchange(errno_, 0);
    return true;
}

}  // namespace prefsync::base
