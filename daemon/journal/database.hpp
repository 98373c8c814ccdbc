#pragma once
// The journal's database: one SQLite file per deployment, opened by every store of the
// journal through one handle. This file is the only place that knows it is SQLite; the
// stores' public interfaces speak values, so a PostgreSQL journal can replace it.
//
// Design constraints:
// - Created 0600 (it holds personal data), never through a symlink.
// - WAL with synchronous=FULL: a committed transaction survives a power loss, so a claim
//   (the "outcome unknown" mark of a create) is never rolled back after its request left.
//   The cost is one fsync per commit, which is why writers batch (claims of hundreds of
//   rows, completions flushed once per request-loop tick).
// - A file that is not a journal (corrupted, or some other database) is refused with an
//   error naming it; the journal never starts afresh silently.
// - Errors are exceptions (JournalError) naming the file: a journal that cannot be
//   written stops the run, and the message says which file and why (a full disk, say).
// - One handle per thread: no SQLite mutex (SQLITE_OPEN_NOMUTEX).
// - Read-only handles (Access::read_only, for the commands that only look: status,
//   failures, plan, explain) need only read access to the journal and never write to it or
//   beside it: no migration, no pragma that writes, no -wal or -shm created, and the -shm a
//   writer shares is opened read-only (SQLite then reads the log into its own memory where
//   it cannot take part in the shared index). A journal whose writer is running (its -wal
//   and -shm exist) is read under SQLite's locks; an idle one (no -wal) as an immutable
//   file, whose change under the reader (a writer that started and wrote back into it) is
//   detected: JournalChanged, to read again. An older schema is not read (it would need the
//   migration): JournalAccessError, saying to run a writing command once.
#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/base/background_sync.hpp"
#include "daemon/journal/checkpointer.hpp"

namespace prefsync::journal {

class JournalError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// What the user reading the journal can set right, before anything was read: a journal it
// may not read, or one a writing command must upgrade first.
class JournalAccessError : public JournalError {
public:
    using JournalError::JournalError;
};

// A read-only handle's journal was written back to while it was read: read it again.
class JournalChanged : public JournalError {
public:
    using JournalError::JournalError;
};

enum class Access { read_write, read_only };

using Millis = std::int64_t;  // milliseconds since the Unix epoch

// A row hash is this many bytes of SHA-256 (32 hex digits): 128 bits keep collisions out of
// reach (about 1 in 10^19 among 10^9 rows) at half the size.
constexpr std::size_t kHashBytes = 16;

class Database;

// A prepared statement, reset when it goes out of scope so the cached handle is reusable.
class Statement {
public:
    Statement(Database& db, sqlite3_stmt* s) : db_(db), s_(s) {}
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Text and blobs are bound by reference, not copied (a copy was an allocation per value
    // on the push's hot path): the string must live until the statement is stepped, which
    // a temporary would not, so binding one does not compile.
    Statement& bind(int i, const std::string& v);
    Statement& bind(int i, std::string&& v) = delete;
    Statement& bind(int i, const std::string&& v) = delete;
    Statement& bind(int i, std::int64_t v);
    Statement& bind(int i, std::optional<std::int64_t> v);
    Statement& bind_double(int i, double v);
    // A row hash (kHashBytes as hex digits) is stored as raw bytes, anything else as text;
    // hash() reads either back as text.
    Statement& bind_hash(int i, const std::string& hash);
    Statement& bind_hash(int i, std::string&& hash) = delete;
    Statement& bind_hash(int i, const std::string&& hash) = delete;
    std::string hash(int c);
    Statement& bind_null(int i);
    Statement& bind_blob(int i, const std::string& bytes);
    Statement& bind_blob(int i, std::string&& bytes) = delete;
    Statement& bind_blob(int i, const std::string&& bytes) = delete;
    std::string blob(int c);
    // True while a row is available.
    bool step();
    void run() {
        while (step()) {}
    }
    std::int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
    double f64(int c) { return sqlite3_column_double(s_, c); }
    std::optional<std::int64_t> opt_i64(int c);
    std::string text(int c);

private:
    void check(int rc);
    Database& db_;
    sqlite3_stmt* s_;
};

class Database {
public:
    // Opens (creating 0600 if needed) and migrates the schema. Throws JournalError.
    // read_only: opens without writing anything (see above); a journal that does not exist
    // reads as an empty one, and is not created (nor its directory).
    explicit Database(const std::string& path, Access access = Access::read_write);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // Groups writes in one transaction (RAII); nested use is flattened into the outermost
    // (a durable one inside a deferred one is refused: see Sync).
    // commit() of the outermost runs the hooks added with at_commit(): each one's `before`
    // (it may still write) before COMMIT, its `after` once COMMIT succeeded; a rollback, or a
    // COMMIT that fails, runs their `rolled_back` instead.
    //
    // Sync::deferred commits without waiting for the disk (no fsync): a crash of the process
    // loses nothing, but a power loss may undo the commit unless a durable one followed it
    // (the log is written in order, and the next fsync covers what came before). A deferred
    // transaction a second after the connection's last durable commit that wrote something
    // is durable itself, so a power loss undoes at most that second and one transaction.
    // Only for what can be derived again or costs little to lose: a push's outcomes (the
    // updates are in flight again, resolved as after a kill), a pull's items (read from
    // the source again) and outcomes (fetched again, the output cut back to the size the
    // journal kept), the rate limiter's tokens. A nested transaction takes the outermost's
    // level; a durable one inside a deferred one throws JournalError (it would commit
    // without its fsync).
    enum class Sync { durable, deferred };
    class Transaction {
    public:
        explicit Transaction(Database& db, Sync sync = Sync::durable);
        ~Transaction();  // rolls back unless committed
        void commit();
        Transaction(const Transaction&) = delete;
        Transaction& operator=(const Transaction&) = delete;

    private:
        void roll_back();
        void restore_sync();
        Database& db_;
        bool done_ = false;
    };

    struct CommitHook {
        std::function<void()> before, after, rolled_back;
    };
    // For the transaction in progress (one must be): see Transaction.
    void at_commit(CommitHook hook);

    // A cached prepared statement for `sql` (a string literal: cached by its address).
    Statement prepare(const char* sql);
    void exec(const char* sql);
    // exec() for what writes only to this connection's TEMP schema (kept in memory): allowed
    // on a read-only handle too, whose file SQLite has open read-only all the same.
    void exec_scratch(const char* sql);
    std::int64_t changes() const { return sqlite3_changes64(db_); }
    // Rows this connection has inserted, updated or deleted since it opened.
    std::int64_t total_changes() const { return sqlite3_total_changes64(db_); }
    bool in_transaction() const { return tx_depth_ > 0; }
    // A new number for each outermost transaction. What a caller reads inside one stays true
    // until it ends, but for the caller's own writes (total_changes() tells): BEGIN IMMEDIATE
    // keeps every other connection from writing meanwhile. (SQLite may roll a transaction back
    // by itself on a full disk or an I/O error; that is a JournalError, which ends the run.)
    std::uint64_t transaction_serial() const { return tx_serial_; }
    // Whether the last committed transaction skipped its fsync (Sync::deferred, honoured).
    bool last_commit_deferred() const { return last_commit_deferred_; }
    // Durability without waiting for it: begin_sync() starts an fdatasync of the write-ahead
    // log on a thread of its own, which makes every commit made before the call durable (the
    // log is a prefix of its commits; a checkpoint syncs the log before it copies and the
    // database after, so a commit moved out of the log is durable there). The caller goes
    // on meanwhile and holds back what relies on those commits until synced(). Returns the
    // sync's number (waiting first for the one before, as only one runs at a time); 0 when
    // there is nothing to make durable (no log: every commit was durable).
    std::uint64_t begin_sync();
    // Whether sync `n` (0: none) is over, waiting for it if `wait`. Throws JournalError if
    // the disk refused it: what it was to cover may be lost, and must not be relied on.
    bool synced(std::uint64_t n, bool wait = false);
    // The number of the last begin_sync() (0: none yet).
    std::uint64_t syncs_begun() const { return syncs_started_; }
    const std::string& path() const { return path_; }
    bool read_only() const { return read_only_; }
    // A read-only handle over a journal that does not exist yet (or an empty file): it reads
    // as empty, which a wrong journal.path would too.
    bool nothing_recorded() const { return nothing_recorded_; }
    // A read-only handle that read an idle journal as immutable: throws JournalChanged if a
    // writer has written to the file since it was opened (what was read may mix two states).
    // Otherwise nothing.
    void confirm_unchanged() const;

    bool integrity_ok();
    std::int64_t size_bytes();
    // Checkpoints the checkpoint thread ran to the end of the log (checkpointer.hpp), once
    // none is asked for or running (for tests).
    std::uint64_t background_checkpoints();
    // Returns freed pages and the write-ahead log's space to the file system. False when it
    // could not finish (another connection reading or writing the journal): what deletions
    // freed may then stay in the files (secure_delete=FAST) until a later call finishes.
    bool reclaim_space();

    // JournalError("journal <path>: <what>: <sqlite's message>").
    [[noreturn]] void fail(const std::string& what) const;

private:
    void open_read_write();
    void open_read_only();
    void open_empty();
    void close();
    // The schema version, or a JournalError for a file that is not a journal.
    int schema_version();
    bool has_table(const char* name);
    void migrate();
    bool changed_since_open() const;
    std::string path_;
    bool read_only_ = false;
    bool nothing_recorded_ = false;
    // For an immutable read: the file as it was when opened.
    bool immutable_ = false;
    struct FileState {
        std::uint64_t inode = 0, size = 0;
        std::int64_t mtime_ns = 0;
        bool operator==(const FileState&) const = default;
    } opened_state_;
    sqlite3* db_ = nullptr;
    std::map<const char*, sqlite3_stmt*> statements_;
    void end_transaction(bool committed);
    int tx_depth_ = 0;
    bool wal_ = false;                                      // the journal is in WAL mode (deferred commits need it)
    bool sync_relaxed_ = false;                             // synchronous=NORMAL is set (a deferred transaction's)
    std::chrono::steady_clock::time_point last_durable_{};  // this connection's last fsynced commit
    std::int64_t tx_changes_at_begin_ = 0;                  // total_changes() when the outermost began
    Sync outer_sync_ = Sync::durable;                       // what the outermost transaction asked for
    std::uint64_t tx_serial_ = 0;
    bool last_commit_deferred_ = false;
    std::vector<CommitHook> hooks_;
    // begin_sync(): the log's descriptor (opened at the first, closed after the connection),
    // the syncs started and found over, and when the running one began.
    int log_fd_ = -1;
    std::uint64_t syncs_started_ = 0, syncs_over_ = 0;
    std::chrono::steady_clock::time_point sync_began_{};
    std::string log_sync_error_;  // a sync that failed: every later synced() throws it
    base::BackgroundSync log_sync_;
    // The writer's checkpoints (WAL only), asked for by on_log_commit() after each commit.
    std::unique_ptr<Checkpointer> checkpointer_;
    bool checkpoints_held_ = false;  // reclaim_space() is running: the thread is not asked
    static int on_log_commit(void* self, sqlite3* db, const char* name, int frames);
};

}  // namespace prefsync::journal
