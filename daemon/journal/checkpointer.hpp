#pragma once
// Checkpoints of a journal's write-ahead log on a thread of their own, through a connection
// of their own, so the writer's commits never wait for one. A checkpoint copies the log's
// pages into the database file and syncs it (24 ms of a 50 ms round trip at 512
// connections, measured), and SQLite's automatic checkpoint runs it inside the commit that
// crossed the threshold, on the request loop's thread.
//
// Design constraints:
// - Only the writer's commit hook asks (request()); asking never blocks.
// - PASSIVE: a checkpoint takes no lock a writer or reader waits for; what a reader still
//   needs, or what was committed while it ran, is copied by the next one. The log starts
//   over once a checkpoint has copied all of it and the writer begins its next transaction.
// - A checkpoint that fails (busy, an I/O error) is not an error of any run: the writer's
//   own commits report the journal's errors, and its commit hook checkpoints in its own
//   thread once the log is four times the threshold (Database::on_log_commit).
// - stop() waits for a checkpoint in progress and closes the connection, so the writer can
//   cut the log to nothing (reclaim_space) and be the last connection to close; a later
//   request() opens it again.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace prefsync::journal {

class Checkpointer {
public:
    explicit Checkpointer(std::string path) : path_(std::move(path)) {}
    ~Checkpointer() { stop(); }
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;

    // A checkpoint soon, on the thread (started if need be); none if one is already asked for.
    void request();
    // Waits for a checkpoint in progress, ends the thread and closes its connection.
    void stop();
    // Checkpoints that ran to the end of the log as it was when they began, once none is
    // asked for or running (for tests).
    std::uint64_t idle_and_completed();

private:
    void run();
    std::string path_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    bool requested_ = false, stopping_ = false, running_ = false;
    std::uint64_t completed_ = 0;
    std::thread thread_;
};

}  // namespace prefsync::journal
