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

    // Starts fdatasync(fd), which covers at least what was written to fd's file before this
    // call; without a thread to be had (a task limit) it runs here. A sync before it is waited
    // for first, and if it failed and done() has not reported that yet, nothing is started:
    // done() reports that failure next.
    void start(int fd);
    // Whether the last start()'s sync is over (waiting for it if `wait`); `error` is its errno
    // (0: durable), set once, when it is found over.
    bool done(bool wait, int& error);

private:
    std::thread thread_;
    std::atomic<bool> over_{true};  // nothing started: nothing to wait for
    int errno_ = 0;                 // the thread's; read after join
};

}  // namespace prefsync::base
