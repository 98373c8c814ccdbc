#include "daemon/journal/checkpointer.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

namespace prefsync::journal {

std::optional<Checkpointer::FileId> Checkpointer::file_at(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return FileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void Checkpointer::request() noexcept {
    try {
        std::lock_guard lock(mutex_);
        if (stopping_ || no_thread_) return;
        requested_ = true;
        if (!thread_.joinable()) {
            try {
                thread_ = std::thread([this] { run(); });
            } catch (...) {
                // No thread to be had: the writer's own fallback checkpoints (see the header).
                requested_ = false;
                no_thread_ = true;
                return;
            }
        }
        wake_.notify_one();
    } catch (...) {
        // A mutex that cannot be locked: this checkpoint is the writer's fallback's.
    }
}

void Checkpointer::stop() {
    {
        std::lock_guard lock(mutex_);
        no_thread_ = false;
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

std::optional<Checkpointer::FileId> Checkpointer::file_of(sqlite3* db, const std::string& path) {
    int moved = 1;
    auto file = file_at(path);
    if (!file || sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK || moved)
        return std::nullopt;
    return file;
}

void Checkpointer::run() {
    sqlite3* db = nullptr;
    // NOMUTEX: the connection is this thread's alone. Opening fails with the journal gone,
    // unreadable or no longer the writer's; the thread then checkpoints nothing until
    // stop(), and the writer's fallback does (see the header). The file is checked before
    // the first read transaction, which opens the log beside it (and closing the last
    // connection to a file checkpoints its log into it). That first read is made here: a
    // checkpoint alone would find no log to copy. The checkpoint syncs the log before it
    // copies and the database file after.
    if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK ||
        file_of(db, path_) != file_ ||
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
