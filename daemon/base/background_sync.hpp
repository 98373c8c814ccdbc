#pragma once
// An fdatasync on a thread of its own, so the caller goes on (sending, fetching) while the
// disk works instead of stopping for it. One at a time: start() waits for the one before.
// Used where what must be durable is known before it is relied on: a pull's output before
// the journal records what it holds, a push's claims before their requests leave.
#include <atomic>
#include <thread>

namespace prefsync::base {

class BackgroundSync {
public:
    BackgroundSync() = default;
    ~BackgroundSync();  // waits for a sync still running
    BackgroundSync(const BackgroundSync&) = delete;
    BackgroundSync& operator=(const BackgroundSync&) = delete;

    // Waits for the sync before (its errno is returned: 0 when it made its bytes durable, or
    // when there was none), then starts fdatasync(fd), which covers at least what was written
    // to fd's file before this call. Without a thread to be had (a task limit) the sync runs
    // here, and its errno is what done() returns next.
    int start(int fd);
    // Whether the last start()'s sync is over (waiting for it if `wait`); `error` is its errno
    // (0: durable), set once, when it is found over.
    bool done(bool wait, int& error);

private:
    std::thread thread_;
    std::atomic<bool> over_{true};  // nothing started: nothing to wait for
    int errno_ = 0;                 // the thread's; read after join
};

}  // namespace prefsync::base
