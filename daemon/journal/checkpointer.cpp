#include "daemon/journal/checkpointer.hpp"

#include <sqlite3.h>

namespace prefsync::journal {

void Checkpointer::request() {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    requested_ = true;
    if (!thread_.joinable()) {
        try {
            thread_ = std::thread([this] { run(); });
        } catch (...) {
            // No thread to be had: the writer's own fallback checkpoints (see the header).
            requested_ = false;
            return;
        }
    }
    wake_.notify_one();
}

void Checkpointer::stop() {
    {
        std::lock_guard lock(mutex_);
        if (!thread_.joinable()) return;
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    std::lock_guard lock(mutex_);
    thread_ = std::thread();
    stopping_ = requested_ = false;
    idle_.notify_all();
}

std::uint64_t Checkpointer::idle_and_completed() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return !thread_.joinable() || (!requested_ && !running_); });
    return completed_;
}

void Checkpointer::run() {
    sqlite3* db = nullptr;
    // NOMUTEX: the connection is this thread's alone. Opening fails only with the journal
    // gone or unreadable, which the writer finds out on its own.
    // A first read opens the log (a checkpoint alone would find no log to copy), and the
    // checkpoint syncs the log before it copies and the database file after.
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA synchronous=FULL; SELECT count(*) FROM sqlite_schema", nullptr, nullptr, nullptr) !=
            SQLITE_OK) {
        sqlite3_close(db);
        db = nullptr;
    }
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [this] { return requested_ || stopping_; });
        if (stopping_) break;
        requested_ = false;
        if (db) {
            running_ = true;
            lock.unlock();
            int log_frames = -1, copied = -2;
            int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
            lock.lock();
            running_ = false;
            if (rc == SQLITE_OK && log_frames == copied) ++completed_;
        }
        if (!requested_) idle_.notify_all();
    }
    lock.unlock();
    sqlite3_close(db);
    idle_.notify_all();
}

}  // namespace prefsync::journal
