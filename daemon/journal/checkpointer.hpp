#pragma once
// Checkpoints of a journal's write-ahead log on a thread of their own, through a connection
// of their own, so the writer's commits never wait for one. A checkpoint copies the log's
// pages into the database file and syncs it (24 ms of a 50 ms round trip at 512
// connections, measured), and SQLite's automatic checkpoint runs it inside the commit that
// crossed the threshold, on the request loop's thread.
//
// Design constraints:
// - Only the writer's WAL hook asks (request()), after each commit; asking never blocks.
// - PASSIVE: a checkpoint takes no lock a writer or reader waits for; what a reader still
//   needs, or what was committed while it ran, is copied by the next one. The log starts
//   over once a checkpoint has copied all of it and the writer begins its next transaction.
// - A checkpoint that fails (busy, an I/O error) is not an error of any run: the writer's
//   own commits report the journal's errors, and its WAL hook checkpoints in its own
//   thread once the log is four times the threshold (Database::on_log_commit).
// - stop() waits for a checkpoint in progress and closes the connection, so the writer can
//   cut the log to nothing (reclaim_space) and be the last connection to close; a later
//   request() opens it again.
// - The thread opens the journal by its path. A file there that is not the writer's (the
//   journal moved away or replaced under a running writer) is closed unread, and the thread
//   checkpoints nothing until stop(): the log at the path is still the writer's, and SQLite
//   would copy it into the other file and remove it (tested). The log is opened by name
//   just after the check: a journal and its log both swapped in that moment go unnoticed.
// - A thread that cannot be created is not tried again until stop(): the writer's fallback
//   checkpoints meanwhile. request() runs inside SQLite's WAL hook, so it throws nothing.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

struct sqlite3;

namespace prefsync::journal {

class Checkpointer {
public:
    // The writer's database file (file_of() its connection).
    struct FileId {
        std::uint64_t device = 0, inode = 0;
        bool operator==(const FileId&) const = default;
    };
    Checkpointer(std::string path, FileId writers_file) : path_(std::move(path)), file_(writers_file) {}
    ~Checkpointer() { stop(); }
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // A checkpoint soon, on the thread (started if need be); none if one is already asked for.
    void request() noexcept;
    // Waits for a checkpoint in progress, ends the thread and closes its connection.
    void stop();
    // Checkpoints that ran to the end of the log as it was when they began, once none is
    // asked for or running (for tests).
    std::uint64_t idle_and_completed();

    // The file at `path` now, if there is one.
    static std::optional<FileId> file_at(const std::string& path);
    // The file at `path`, if it is the one `db` has open (SQLite compares the inodes).
    static std::optional<FileId> file_of(sqlite3* db, const std::string& path);

private:
    void run();
    std::string path_;
    FileId file_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    bool requested_ = false, stopping_ = false, running_ = false;
    bool no_thread_ = false;  // creating the thread failed: not tried again until stop()
    std::uint64_t completed_ = 0;
    std::thread thread_;
};

}  // namespace prefsync::journal
