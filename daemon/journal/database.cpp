#include "daemon/journal/database.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

namespace prefsync::journal {
namespace {

// Version 1: the first journal. Version 2: claim tokens (a process never re-claims what it
// holds), daemon parking state, incremental vacuum. Version 3: mirror mode (the last
// accepted body per identity, profiles gone from the source, per-update operations) and
// duplicate/missing counts per run.
// Version 4: bodies in their own table, deleted as soon as their update is finished (a
// finished update keeps only its outcome, so the file stays near 200 bytes per row after
// the run instead of the size of every body sent); one small partial index per pending state
// instead of two indexes over every row; the identities a source had more than once (their
// rows are held until the source was read to its end, so the last one wins while sending
// overlaps reading).
// Version 5: a finished update leaves the queue. Its outcome is what change detection
// needs (the hash and profile id in `synced`, with whether a 202 still awaits verification);
// the queue holds only what is still to do or failed, so the file after a run is one small
// `synced` row per identity (a 16-byte hash, not 64 hex digits), and a row costs an insert
// and a delete in the queue instead of an insert, two updates and a body kept apart.
// Version 6: in-flight batches (5.2).
// Version 7: an unfinished pull records a fingerprint of the settings it fetches and writes
// by, and its partial output file: a pull whose settings changed starts afresh instead of
// resuming into a different sink or layout. A pull journaled before (no fingerprint)
// resumes as it did.
// Version 8: pull_items keyed by (job, seq) alone (WITHOUT ROWID), each item holding the
// profile it wrote (pull_seen keeps a search's further ones and those of an item queued
// again): an item fetched is one row write.
// Version 9: answers are appended to synced_staged and applied to `synced` in identity order
// many at a time (synced_store.hpp). An older prefsync would not see staged answers, and
// could send a create again for a profile only they record: it must refuse the journal.
// Version 10: a failure records whether the API refused the body for what it is (refused):
// a sync does not send that body again while its row is unchanged (update_queue.hpp).
// Version 11: the API each job's state belongs to (targets): profile ids and change
// detection are one server's, and must not be used against another (TargetStore). An older
// prefsync would not record it, and a move made with it would go unnoticed.
// Version 12: why a run ended as it did (runs.reason).
// Version 13: a held update says so in a column of its own (updates.held) and keeps its due
// time: a hold written into the due time lost a retry's backoff and Retry-After when it was
// released, so only jobs that judge removals could hold an earlier run's writes for the
// read (the others sent stale values first, then reverted them). An older prefsync would
// send held rows at once: it must refuse the journal.
// Version 14: the removals of rows a read in progress marked deleted (marked_removals), for
// the next read when a kill cuts this one short. An older prefsync would ignore them and
// lose those removals again: it must refuse the journal.
constexpr int kSchemaVersion = 14;
// How long commits may go without an fsync (Sync::deferred).
constexpr auto kDeferredAtMost = std::chrono::seconds(1);

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS updates(
  id INTEGER PRIMARY KEY,
  job TEXT NOT NULL,
  identity TEXT NOT NULL,
  alt_type TEXT, alt_id TEXT, profile_id INTEGER,
  origin TEXT,
  hash TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  resolve INTEGER NOT NULL DEFAULT 0,
  claimed_by INTEGER,
  last_status INTEGER, last_error TEXT,
  run_id INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  claim_token INTEGER, op TEXT, body TEXT, refused INTEGER, held INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS updates_queued ON updates(job, id) WHERE state = 'queued';
CREATE INDEX IF NOT EXISTS updates_retry ON updates(job, held, due_at) WHERE state = 'retry';
CREATE INDEX IF NOT EXISTS updates_inflight ON updates(job, lease_until) WHERE state = 'inflight';
CREATE INDEX IF NOT EXISTS updates_failed ON updates(job, identity) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS updates_waiting ON updates(job, identity) WHERE state = 'waiting';
CREATE UNIQUE INDEX IF NOT EXISTS updates_one_pending ON updates(job, identity)
  WHERE state IN ('queued', 'inflight', 'retry');
CREATE INDEX IF NOT EXISTS updates_by_run ON updates(run_id, identity) WHERE run_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS inflight_batches(
  id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, count INTEGER NOT NULL, remaining INTEGER NOT NULL,
  finished BLOB NOT NULL, lease_until INTEGER NOT NULL, claimed_by INTEGER, claim_token INTEGER,
  created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS inflight_batches_job ON inflight_batches(job);
CREATE TABLE IF NOT EXISTS inflight_batch_rows(id INTEGER PRIMARY KEY, rows BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS synced(
  job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, profile_id INTEGER,
  synced_at INTEGER NOT NULL, body TEXT, gone TEXT, run_id INTEGER, verify INTEGER,
  PRIMARY KEY(job, identity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS synced_staged(
  id INTEGER PRIMARY KEY, job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, profile_id INTEGER,
  synced_at INTEGER NOT NULL, body TEXT, run_id INTEGER, verify INTEGER);
CREATE TABLE IF NOT EXISTS duplicates(
  job TEXT NOT NULL, identity TEXT NOT NULL, run_id INTEGER NOT NULL, PRIMARY KEY(job, identity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY, job TEXT NOT NULL, kind TEXT NOT NULL,
  started_at INTEGER NOT NULL, ended_at INTEGER,
  read INTEGER DEFAULT 0, queued INTEGER DEFAULT 0, unchanged INTEGER DEFAULT 0, rejected INTEGER DEFAULT 0,
  done INTEGER DEFAULT 0, accepted INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, retries INTEGER DEFAULT 0,
  exit_code INTEGER, duplicates INTEGER DEFAULT 0, missing INTEGER DEFAULT 0, reason TEXT);
CREATE TABLE IF NOT EXISTS quota(
  name TEXT PRIMARY KEY, tokens REAL NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS watermarks(
  job TEXT PRIMARY KEY, source TEXT NOT NULL, value TEXT NOT NULL, key TEXT,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pull_state(
  job TEXT PRIMARY KEY, run_id INTEGER NOT NULL, sink_offset INTEGER NOT NULL DEFAULT 0,
  fingerprint TEXT, partial_path TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pull_items(
  job TEXT NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, origin TEXT, expected TEXT,
  state TEXT NOT NULL DEFAULT 'pending', status INTEGER NOT NULL DEFAULT 0, error TEXT, detail TEXT,
  profile INTEGER, PRIMARY KEY(job, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS pull_items_item ON pull_items(job, item);
CREATE TABLE IF NOT EXISTS pull_seen(job TEXT NOT NULL, profile_id INTEGER NOT NULL,
  PRIMARY KEY(job, profile_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets(job TEXT PRIMARY KEY, target TEXT NOT NULL, shown TEXT NOT NULL,
  recorded_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS marked_removals(
  job TEXT NOT NULL, identity TEXT NOT NULL, alt_type TEXT NOT NULL, alt_id TEXT NOT NULL, origin TEXT NOT NULL,
  profile_id INTEGER, PRIMARY KEY(job, identity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_state(job TEXT PRIMARY KEY, last_fire INTEGER NOT NULL DEFAULT 0,
  parked_until INTEGER, park_reason TEXT, failures INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
)sql";

}  // namespace

// How long a statement waits for another process's lock on the journal before failing.
constexpr int kBusyTimeoutMs = 5000;
// Pages of write-ahead log (4 KiB each) at which the checkpoint thread, and failing it the
// writer, checkpoint (on_log_commit).
constexpr int kCheckpointFrames = 4096, kWriterCheckpointFrames = 16384;

// --- Statement ---------------------------------------------------------------------------

Statement::~Statement() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}

void Statement::check(int rc) {
    if (rc != SQLITE_OK) db_.fail("bind");
}

Statement& Statement::bind(int i, const std::string& v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
    return *this;
}
Statement& Statement::bind(int i, std::int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
}
Statement& Statement::bind(int i, std::optional<std::int64_t> v) {
    check(v ? sqlite3_bind_int64(s_, i, *v) : sqlite3_bind_null(s_, i));
    return *this;
}
Statement& Statement::bind_double(int i, double v) {
    check(sqlite3_bind_double(s_, i, v));
    return *this;
}
Statement& Statement::bind_null(int i) {
    check(sqlite3_bind_null(s_, i));
    return *this;
}

namespace {
bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
int hex_value(char c) {
    return c <= '9' ? c - '0' : c - 'a' + 10;
}
}  // namespace

Statement& Statement::bind_hash(int i, const std::string& hash) {
    if (hash.size() == 2 * kHashBytes && std::all_of(hash.begin(), hash.end(), is_hex)) {
        unsigned char raw[kHashBytes];
        for (std::size_t k = 0; k < kHashBytes; ++k)
            raw[k] = static_cast<unsigned char>(hex_value(hash[2 * k]) << 4 | hex_value(hash[2 * k + 1]));
        check(sqlite3_bind_blob(s_, i, raw, static_cast<int>(kHashBytes), SQLITE_TRANSIENT));
        return *this;
    }
    return bind(i, hash);
}

std::string Statement::hash(int c) {
    if (sqlite3_column_type(s_, c) == SQLITE_BLOB) {
        static constexpr char digits[] = "0123456789abcdef";
        auto p = static_cast<const unsigned char*>(sqlite3_column_blob(s_, c));
        auto n = static_cast<std::size_t>(sqlite3_column_bytes(s_, c));
        std::string out(2 * n, '0');
        for (std::size_t k = 0; k < n; ++k) {
            out[2 * k] = digits[p[k] >> 4];
            out[2 * k + 1] = digits[p[k] & 15];
        }
        return out;
    }
    auto t = text(c);
    // A version-4 journal's whole SHA-256: today's hash is its first half, so an upgrade
    // does not make every row look changed.
    if (t.size() == 4 * kHashBytes && std::all_of(t.begin(), t.end(), is_hex)) t.resize(2 * kHashBytes);
    return t;
}

bool Statement::step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.fail("write");
}

std::optional<std::int64_t> Statement::opt_i64(int c) {
    if (sqlite3_column_type(s_, c) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(s_, c);
}

Statement& Statement::bind_blob(int i, const std::string& bytes) {
    check(sqlite3_bind_blob64(s_, i, bytes.data(), bytes.size(), SQLITE_STATIC));
    return *this;
}

std::string Statement::blob(int c) {
    auto p = static_cast<const char*>(sqlite3_column_blob(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c))) : std::string();
}

std::string Statement::text(int c) {
    auto p = sqlite3_column_text(s_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
}

// --- Database ----------------------------------------------------------------------------

void Database::fail(const std::string& what) const {
    int c_errno = errno;  // the failed system call's, unless SQLite kept its own
    confirm_unchanged();  // an immutable read of a file rewritten under it may fail any way
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    int code = db_ ? sqlite3_extended_errcode(db_) : SQLITE_NOMEM;
    int os_error = db_ ? sqlite3_system_errno(db_) : 0;
    if (os_error == 0) os_error = c_errno;
    bool full = (code & 0xff) == SQLITE_FULL || os_error == ENOSPC || os_error == EDQUOT || os_error == EFBIG;
    if (full)
        message += " (" + std::string(std::strerror(os_error ? os_error : ENOSPC)) +
                   ": the disk, quota or file size limit of the journal is full; free space there)";
    else if (code == SQLITE_IOERR_WRITE || code == SQLITE_IOERR_FSYNC)
        message += " (the journal could not be written: is its disk full or failing?)";
    throw JournalError("journal " + path_ + ": " + what + ": " + message);
}

namespace {

// The symbolic-link refusal, the same for readers and writers.
void refuse_symlink(const std::string& path, const struct stat& st) {
    if (S_ISLNK(st.st_mode)) throw JournalError("journal " + path + ": is a symbolic link; refusing to follow it");
}

// SQLite counts every allocation under a process-wide mutex by default, for statistics
// nothing here reads: about 4% of a push's CPU. Only possible before SQLite's first use in
// the process (a SQL source opened first keeps the default; nothing else changes).
void memory_statistics_off() {
    static const bool off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
    (void)off;
}

// The default VFS, but a write-ahead log is only ever opened read-only: SQLite would create
// a missing -wal, even for a read-only connection, where the directory lets it (owned by
// the reader, so that the service could no longer write its journal).
const char* read_only_vfs() {
    static sqlite3_vfs vfs;
    static const bool registered = [] {
        sqlite3_initialize();
        sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
        vfs = *base;
        vfs.pNext = nullptr;
        vfs.zName = "prefsync-read-only";
        vfs.pAppData = base;
        vfs.xOpen = [](sqlite3_vfs* self, const char* name, sqlite3_file* file, int flags, int* out_flags) {
            auto* under = static_cast<sqlite3_vfs*>(self->pAppData);
            if (flags & SQLITE_OPEN_WAL)
                flags = (flags & ~(SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE)) | SQLITE_OPEN_READONLY;
            return under->xOpen(under, name, file, flags, out_flags);
        };
        return sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
    }();
    return registered ? vfs.zName : nullptr;
}

// `path` as the path of an SQLite URI ("file:" + it).
std::string uri_path(const std::string& path) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::strchr("/-._~", c)) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// A reader that may not read one of the journal's files is told so before SQLite is.
void require_readable(const std::string& journal, const std::string& file) {
    if (::faccessat(AT_FDCWD, file.c_str(), R_OK, AT_EACCESS) == 0) return;
    int e = errno;
    std::string which = file == journal ? "" : " (" + file + ", beside it)";
    throw JournalAccessError("journal " + journal + ": cannot read it" + which + ": " + std::strerror(e) +
                             "; run this as the user the service runs as, or give this user read access to the "
                             "journal and to its -wal and -shm files (they are created with the journal's mode)");
}

}  // namespace

Database::Database(const std::string& path, Access access) : path_(path), read_only_(access == Access::read_only) {
    memory_statistics_off();
    try {
        if (read_only_)
            open_read_only();
        else
            open_read_write();
    } catch (...) {
        close();
        throw;
    }
}

void Database::close() {
    // First: this connection must be the last to close, so that SQLite removes the log.
    if (checkpointer_) checkpointer_->stop();
    int ignored = 0;
    log_sync_.done(true, ignored);
    for (auto& [sql, s] : statements_) sqlite3_finalize(s);
    statements_.clear();
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
    // After the connection: closing a descriptor of a file drops every POSIX lock this
    // process holds on it (SQLite locks the database and the shared-memory index, not the
    // log, but nothing here depends on that).
    if (log_fd_ >= 0) ::close(log_fd_);
    log_fd_ = -1;
}

void Database::open_read_write() {
    const auto& path = path_;
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    // Create the file 0600 ourselves (SQLite would use the umask's mode), but never open and
    // close an existing journal here: closing any descriptor of a file drops every POSIX
    // lock this process holds on it, including those of a connection already open (the
    // daemon's metrics server opens a second one).
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        refuse_symlink(path, st);
    } else {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno != EEXIST)
            throw JournalError("journal " + path + ": cannot create: " + std::strerror(errno));
        if (fd >= 0) ::close(fd);
    }
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
        throw JournalError("journal " + path + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    migrate();
}

void Database::open_read_only() {
    const auto& path = path_;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        int e = errno;
        // As a writer would find it (and create it, with its directory): nothing recorded.
        if (e == ENOENT) return open_empty();
        throw JournalAccessError("journal " + path + ": cannot read it: " + std::strerror(e) + " (check journal.path)");
    }
    refuse_symlink(path, st);
    require_readable(path, path);
    auto wal = path + "-wal", shm = path + "-shm";
    bool has_wal = exists(wal), has_shm = exists(shm);
    if (has_wal) require_readable(path, wal);
    // A writer that closes the journal removes its -shm, then its -wal: a reader between
    // the two is told to read again, not sent to fix a journal that is fine.
    for (int i = 0; has_wal && !has_shm && i < 5; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!exists(wal)) throw JournalChanged("journal " + path + ": its writer closed it while it was opened");
        has_shm = exists(shm);
    }
    if (has_wal && !has_shm)
        throw JournalAccessError("journal " + path + ": has a write-ahead log (" + wal +
                                 ") but no -shm file, which a reader cannot make; run a writing command (e.g. "
                                 "`prefsync sync`) once as the user the service runs as");
    if (has_shm) require_readable(path, shm);
    // No -wal: no connection has the journal open, and all of it is in the file. Read as
    // immutable (SQLite needs a -shm to share otherwise), and watched for a writer.
    immutable_ = !has_wal;
    if (immutable_)
        opened_state_ = {static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                         std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    auto uri = "file:" + uri_path(path) + (immutable_ ? "?mode=ro&immutable=1" : "?mode=ro&readonly_shm=1");
    if (sqlite3_open_v2(uri.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                        read_only_vfs()) != SQLITE_OK)
        throw JournalAccessError("journal " + path +
                                 ": cannot read it: " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    exec("PRAGMA query_only = 1");  // this connection's setting: nothing is written
    int version = schema_version();
    if (version == 0) {
        auto s = prepare("SELECT count(*) FROM sqlite_master");
        bool empty = s.step() && s.i64(0) == 0;
        if (empty) {
            close();
            return open_empty();
        }
    }
    if (version < kSchemaVersion)
        throw JournalAccessError("journal " + path + ": journal schema " + std::to_string(version) +
                                 " is older than this prefsync's " + std::to_string(kSchemaVersion) +
                                 "; run a writing command (e.g. `prefsync sync`) once as the user the service runs "
                                 "as, which upgrades it");
}

void Database::open_empty() {
    immutable_ = false;
    nothing_recorded_ = true;
    if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
        throw JournalError("journal " + path_ + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    exec(kSchema);
    exec("PRAGMA query_only = 1");
}

bool Database::changed_since_open() const {
    if (!immutable_) return false;
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return true;
    FileState now{static_cast<std::uint64_t>(st.st_ino), static_cast<std::uint64_t>(st.st_size),
                  std::int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
    return !(now == opened_state_);
}

void Database::confirm_unchanged() const {
    if (changed_since_open())
        throw JournalChanged("journal " + path_ +
                             ": a writing command wrote to it while it was read, so what was read may mix two states; "
                             "run this command again");
}

bool Database::has_table(const char* name) {
    std::string n = name;  // bound by reference: outlives the statement's use
    auto s = prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    s.bind(1, n);
    return s.step();
}

int Database::schema_version() {
    char* error = nullptr;
    // The first read of the file: a file that is not a database fails here.
    int version = -1;
    int rc = sqlite3_exec(
        db_, "PRAGMA user_version",
        [](void* out, int, char** values, char**) {
            *static_cast<int*>(out) = values[0] ? std::atoi(values[0]) : 0;
            return 0;
        },
        &version, &error);
    if (rc != SQLITE_OK) {
        std::string message = error ? error : sqlite3_errmsg(db_);
        sqlite3_free(error);
        int code = sqlite3_errcode(db_);
        if (read_only_ && code != SQLITE_NOTADB && code != SQLITE_CORRUPT) {
            // The write-ahead log the reader saw went away (its writer closed the journal)
            // before SQLite opened it: the journal is idle now.
            if (!immutable_ && !exists(path_ + "-wal"))
                throw JournalChanged("journal " + path_ + ": its writer closed it while it was opened");
            throw JournalAccessError("journal " + path_ + ": cannot read it: " + message);
        }
        if (read_only_) {
            // A file rewritten under an immutable read looks corrupt: read again. Never the
            // writer's advice to move it aside: the service may be writing it right now.
            confirm_unchanged();
            throw JournalError("journal " + path_ + ": not a readable prefsync journal (" + message +
                               "); nothing was changed. A writing command (e.g. `prefsync sync`) says what to do");
        }
        if (code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_PERM) {
            // Perhaps not the file's content but where it lives: SQLite writes its -wal and
            // -shm files beside it, so a directory this user cannot write (or a read-only
            // mount) fails here though the journal is sound. Never the advice to move it aside.
            auto dir = std::filesystem::path(path_).parent_path();
            if (dir.empty()) dir = ".";
            int denied = ::faccessat(AT_FDCWD, dir.c_str(), W_OK, AT_EACCESS) != 0 ? errno : 0;
            if (denied == EACCES || denied == EPERM || denied == EROFS)
                throw JournalAccessError("journal " + path_ + ": cannot open it to write (" + message +
                                         "): its directory " + dir.string() + " is not writable (" +
                                         std::strerror(denied) +
                                         "), and a writer keeps its -wal and -shm files there. Nothing was "
                                         "changed: run as the user the service runs as, or fix the permissions or "
                                         "the mount");
        }
        throw JournalError("journal " + path_ + ": not a readable prefsync journal (" + message +
                           "); refusing to start. Restore it from a backup, or move it aside to start afresh "
                           "(everything it recorded, such as creates whose outcome is unknown, would be forgotten)");
    }
    if (version > kSchemaVersion)
        throw JournalError("journal " + path_ + ": written by a newer prefsync (schema " + std::to_string(version) +
                           ", this one knows " + std::to_string(kSchemaVersion) + "); upgrade prefsync");
    if (version == 0) {
        // A database with tables but no version is someone else's file: never write into it.
        auto s = prepare("SELECT count(*) FROM sqlite_master WHERE name <> 'updates'");
        bool foreign = s.step() && s.i64(0) > 0;
        if (foreign) {
            auto t = prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'updates'");
            foreign = !(t.step() && t.i64(0) == 1);
        }
        if (foreign)
            throw JournalError("journal " + path_ +
                               ": this is an SQLite database but not a prefsync journal; "
                               "refusing to write into it (check journal.path)");
    }
    return version;
}

void Database::migrate() {
    int version = schema_version();
    if (version == 0) {
        // Before the first table exists: freed pages can then be returned to the file system.
        exec("PRAGMA auto_vacuum = INCREMENTAL");
    }
    {
        // A file system without shared memory (some network ones) keeps the rollback journal,
        // where skipping an fsync could corrupt the file rather than lose the newest commit:
        // deferred commits are then durable ones.
        auto mode = prepare("PRAGMA journal_mode=WAL");
        wal_ = mode.step() && mode.text(0) == "wal";
    }
    exec("PRAGMA synchronous=FULL");
    // Debian's SQLite zeroes every deleted byte (SQLITE_SECURE_DELETE), pages freed whole
    // included: each answered batch's bodies were written to the log a second time, as
    // zeros (2.4 KB of writes per pushed row, 1.4 with FAST; a durable push faster in 6 of 7
    // interleaved pairs, median +6% rows/s, 13% less CPU per row).
    // FAST still zeroes deleted rows on the pages the deletion writes anyway; freed pages
    // keep their bytes until reclaim_space() at the run's end fills them with pages moved
    // from the end of the file or cuts them off (docs/ARCHITECTURE.md, section 5.1).
    exec("PRAGMA secure_delete=FAST");
    // The write-ahead log is reset after each checkpoint but never shrinks on its own: a
    // backfill would leave it as large as everything it ever wrote between two checkpoints.
    exec("PRAGMA journal_size_limit = 67108864");
    // Checkpoints on a thread of their own (checkpointer.hpp) once the log holds
    // kCheckpointFrames, in place of SQLite's automatic one at 4 MiB inside a commit.
    if (wal_) {
        // Only if the file at the path is this connection's; otherwise the writer
        // checkpoints on its own.
        if (auto file = Checkpointer::file_of(db_, path_)) checkpointer_ = std::make_unique<Checkpointer>(path_, *file);
        sqlite3_wal_hook(db_, &Database::on_log_commit, this);
    }
    exec("PRAGMA foreign_keys=ON");
    if (version == 1) {
        // Columns added in version 2.
        Transaction tx(*this);
        exec("ALTER TABLE updates ADD COLUMN claim_token INTEGER");
        exec("ALTER TABLE schedule_state ADD COLUMN parked_until INTEGER");
        exec("ALTER TABLE schedule_state ADD COLUMN park_reason TEXT");
        exec("ALTER TABLE schedule_state ADD COLUMN failures INTEGER NOT NULL DEFAULT 0");
        exec("DROP TABLE IF EXISTS job_locks");  // job locks are lock files now
        // Version 2 with its columns: a crash before the steps below then migrates from 2,
        // not from 1 again (its columns would exist already).
        exec("PRAGMA user_version = 2");
        tx.commit();
    }
    if (version >= 1) {
        // A first-version journal has no auto_vacuum: a one-time VACUUM gives it one (and
        // again after a crash cut it short, whatever version it reached).
        bool none = false;
        {
            auto s = prepare("PRAGMA auto_vacuum");
            none = s.step() && s.i64(0) == 0;
        }
        if (none) {
            exec("PRAGMA auto_vacuum = INCREMENTAL");
            exec("VACUUM");
        }
    }
    // Every later step, the new tables and indexes and the new version in one transaction: a
    // migration cut short (a crash, a full disk) leaves the journal as it was, to be migrated
    // again, never half-way.
    Transaction tx(*this);
    if (version >= 1 && version < 3) {
        exec("ALTER TABLE updates ADD COLUMN op TEXT");
        exec("ALTER TABLE synced ADD COLUMN body TEXT");
        exec("ALTER TABLE synced ADD COLUMN gone TEXT");
        exec("ALTER TABLE runs ADD COLUMN duplicates INTEGER DEFAULT 0");
        exec("ALTER TABLE runs ADD COLUMN missing INTEGER DEFAULT 0");
    }
    if (version >= 1 && version < 4) {
        exec(
            "CREATE TABLE bodies(id INTEGER PRIMARY KEY REFERENCES updates(id) ON DELETE CASCADE, "
            "body TEXT NOT NULL)");
        exec(
            "INSERT INTO bodies(id, body) SELECT id, body FROM updates WHERE body IS NOT NULL "
            "AND state IN ('queued', 'inflight', 'retry', 'failed')");
        exec("DROP INDEX IF EXISTS updates_queue");
        exec("DROP INDEX IF EXISTS updates_due");
        exec("DROP INDEX IF EXISTS updates_finished");  // failed updates are no longer pruned
        exec("DROP INDEX IF EXISTS updates_failed");
        exec("ALTER TABLE updates DROP COLUMN body");
    }
    if (version >= 1 && version < 5) {
        // Bodies back in their rows (only unfinished rows remain), and each identity's last
        // finished update folded into `synced`: a 202 not yet verified (verify = when it was
        // accepted), verified (-1), or done (NULL).
        exec("ALTER TABLE synced ADD COLUMN run_id INTEGER");
        exec("ALTER TABLE synced ADD COLUMN verify INTEGER");
        exec("CREATE INDEX migrate_updates_identity ON updates(job, identity, id)");
        // The finished update that recorded the synced hash (done updates older than the
        // retention period are gone: then nothing is known to verify), and the backfill that
        // sent it, so a resumed backfill still skips it.
        exec(
            "UPDATE synced SET (verify, run_id) = (SELECT CASE u.state WHEN 'accepted' THEN max(u.updated_at, 1) "
            "WHEN 'verified' THEN -1 END, u.run_id FROM updates u WHERE u.job = synced.job "
            "AND u.identity = synced.identity AND u.hash = synced.hash "
            "AND u.state IN ('done', 'accepted', 'verified') ORDER BY u.id DESC LIMIT 1)");
        exec("UPDATE synced SET verify = NULL WHERE gone IS NOT NULL");
        exec("DROP INDEX migrate_updates_identity");
        // Indexes over every row first: the delete below then touches only the table and
        // the small partial indexes.
        exec("DROP INDEX IF EXISTS updates_accepted");
        exec("DROP INDEX IF EXISTS updates_state");
        exec("DROP INDEX IF EXISTS updates_finished");
        exec("DELETE FROM updates WHERE state IN ('done', 'accepted', 'verified', 'superseded')");
        exec("ALTER TABLE updates ADD COLUMN body TEXT");
        exec("UPDATE updates SET body = (SELECT body FROM bodies b WHERE b.id = updates.id)");
        exec("DROP TABLE bodies");
    }
    if (version >= 1 && version < 10 && has_table("updates")) exec("ALTER TABLE updates ADD COLUMN refused INTEGER");
    // Version 12: why a run ended as it did, for `status` (an exit code alone told an
    // operator neither what stopped a run nor what happens next).
    if (version >= 1 && version < 12 && has_table("runs")) exec("ALTER TABLE runs ADD COLUMN reason TEXT");
    if (version >= 1 && version < 13 && has_table("updates")) {
        // Holds were due times at the top of the range (the largest a duplicate id's row, then
        // one held for a read, then one of a row that left): a column of their own now, due
        // at once when released, as release made them before. The retry index leads with it.
        exec("ALTER TABLE updates ADD COLUMN held INTEGER NOT NULL DEFAULT 0");
        exec(
            "UPDATE updates SET held = CASE due_at WHEN 9223372036854775807 THEN 3 WHEN 9223372036854775806 THEN 1 "
            "ELSE 2 END, due_at = 0 WHERE due_at >= 9223372036854775805");
        exec("DROP INDEX IF EXISTS updates_retry");
    }
    if (version >= 1 && version < 7) {
        exec("ALTER TABLE pull_state ADD COLUMN fingerprint TEXT");
        exec("ALTER TABLE pull_state ADD COLUMN partial_path TEXT");
    }
    // Version 8 keys pull_items by (job, seq) itself (WITHOUT ROWID): an item then costs one
    // b-tree fewer to insert and one seek fewer to update, and holds its profile's id (pull_seen
    // keeps only the further profiles of a search). Moved aside, made afresh, copied back.
    bool copy_pull_items = version >= 1 && version < 8 && has_table("pull_items");
    if (copy_pull_items) {
        exec("DROP INDEX IF EXISTS pull_items_item");
        exec("ALTER TABLE pull_items RENAME TO pull_items_v7");
    }
    // Accepted (202) answers not yet read back had an index of their own, written for every
    // row of a push, as every write the API accepts is a 202: 6,000 instructions per row,
    // 5% of a push's (callgrind, 5,000 upserts). What reads them is a `verify` run, which
    // reads each one back through the API (a scan of the job's rows costs less than those
    // requests), and the daemon's look for any, made again only once a run of the job
    // started or ended (daemon_loop.cpp). An older prefsync that opens the journal makes the
    // index again (a few tenths of a second per million rows); an older daemon still
    // running scans for them every second until it restarts.
    exec("DROP INDEX IF EXISTS synced_unverified");
    // Version 14 adds marked_removals (kSchema makes it): the removals of rows a read marked
    // deleted, kept from the row's batch to the read's end (small_stores.hpp).
    exec(kSchema);
    if (copy_pull_items) {
        exec(
            "INSERT INTO pull_items(job, seq, item, origin, expected, state, status, error, detail) "
            "SELECT job, seq, item, origin, expected, state, status, error, detail FROM pull_items_v7");
        exec("DROP TABLE pull_items_v7");
    }
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    tx.commit();
}

Database::~Database() {
    close();
}

int Database::on_log_commit(void* self, sqlite3* db, const char*, int frames) {
    // The thread checkpoints from 16 MiB of log on; the writer itself only where the thread
    // falls behind (no thread to be had, a checkpoint that keeps failing), at 64 MiB, where
    // SQLite's automatic one ran before: so the log stays within journal_size_limit, and
    // each run's end cuts it to nothing when it can (reclaim_space). Measured against the
    // writer checkpointing at 64 MiB: a durable pinned push faster in 3 of 3 interleaved
    // pairs (medians 30,665 against 27,391 rows/s; busy 96-98% against 91-94%), 50 ms C=512
    // 0.90/0.92/0.90 of C÷RTT against 0.89/0.89/0.89; the run's end cuts a smaller log (its
    // ftruncate 15 ms, not 56). At 64 MiB for the thread too, the writer's fallback would
    // take every checkpoint.
    auto& d = *static_cast<Database*>(self);
    if (frames >= kCheckpointFrames && d.checkpointer_ && !d.checkpoints_held_) d.checkpointer_->request();
    if (frames >= kWriterCheckpointFrames)
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    return SQLITE_OK;
}

void Database::exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
        sqlite3_free(error);
        fail("write");
    }
}

void Database::exec_scratch(const char* sql) {
    // In memory: a look at the journal needs no writable temporary directory either.
    exec("PRAGMA temp_store = MEMORY");
    // query_only refuses writes to TEMP too; the file itself stays open read-only.
    if (read_only_) exec("PRAGMA query_only = 0");
    // One savepoint: all that `sql` reads of the file is one snapshot, whether the caller
    // is in a transaction or not.
    int rc = sqlite3_exec(db_, "SAVEPOINT scratch", nullptr, nullptr, nullptr);
    std::string message;
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK) message = sqlite3_errmsg(db_);
        sqlite3_exec(db_, rc == SQLITE_OK ? "RELEASE scratch" : "ROLLBACK TO scratch; RELEASE scratch", nullptr,
                     nullptr, nullptr);
    } else {
        message = sqlite3_errmsg(db_);
    }
    if (read_only_ && sqlite3_exec(db_, "PRAGMA query_only = 1", nullptr, nullptr, nullptr) != SQLITE_OK &&
        message.empty())
        fail("look");
    if (rc != SQLITE_OK) {
        confirm_unchanged();  // an immutable read of a file rewritten under it: read again
        throw JournalError("journal " + path_ + ": " + message);
    }
}

Statement Database::prepare(const char* sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) != SQLITE_OK) fail(std::string("prepare: ") + sql);
        it = statements_.emplace(sql, s).first;
    }
    return Statement(*this, it->second);
}

Database::Transaction::Transaction(Database& db, Sync sync) : db_(db) {
    if (db_.tx_depth_ == 0) {
        // In WAL mode NORMAL skips the commit's fsync and nothing else. SQLite takes it only
        // outside a transaction, and it is the connection's: put back at the end, and checked
        // here before every transaction, so a restore that failed is made now or the
        // transaction does not start.
        // At most a second's commits are ever deferred: past it, a deferred one is made
        // durable, so a power loss undoes no more than that however long a run goes on.
        auto now = std::chrono::steady_clock::now();
        bool relax = sync == Sync::deferred && db_.wal_ && now - db_.last_durable_ < kDeferredAtMost;
        if (relax != db_.sync_relaxed_) {
            db_.exec(relax ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
            db_.sync_relaxed_ = relax;
        }
        db_.tx_changes_at_begin_ = db_.total_changes();
        db_.outer_sync_ = sync;
        try {
            db_.exec("BEGIN IMMEDIATE");
        } catch (...) {
            restore_sync();  // no destructor runs for a constructor that throws
            throw;
        }
        ++db_.tx_serial_;
    } else if (sync == Sync::durable && db_.outer_sync_ == Sync::deferred) {
        // It would commit with the outermost, maybe without its fsync: a caller's mistake,
        // refused whether or not this one happened to be made durable.
        throw JournalError("journal " + db_.path_ + ": a durable transaction inside a deferred one");
    }
    ++db_.tx_depth_;
}

Database::Transaction::~Transaction() {
    if (done_) return;
    if (--db_.tx_depth_ == 0) roll_back();
}

void Database::Transaction::commit() {
    done_ = true;
    if (db_.tx_depth_ > 1) {
        --db_.tx_depth_;
        return;
    }
    try {
        // Hooks may add writes (and more hooks) to the transaction they end.
        for (std::size_t i = 0; i < db_.hooks_.size(); ++i)
            if (auto before = db_.hooks_[i].before) before();
        --db_.tx_depth_;
        db_.exec("COMMIT");
    } catch (...) {
        if (db_.tx_depth_ > 0) --db_.tx_depth_;
        roll_back();
        throw;
    }
    db_.last_commit_deferred_ = db_.sync_relaxed_;
    // A commit that wrote nothing is no fsync: it does not restart the bound.
    if (!db_.sync_relaxed_ && db_.total_changes() != db_.tx_changes_at_begin_)
        db_.last_durable_ = std::chrono::steady_clock::now();
    restore_sync();
    db_.end_transaction(true);
}

// The outermost transaction's end without its writes (never throws: a destructor's).
void Database::Transaction::roll_back() {
    char* error = nullptr;
    sqlite3_exec(db_.db_, "ROLLBACK", nullptr, nullptr, &error);
    sqlite3_free(error);
    restore_sync();
    db_.end_transaction(false);
}

// Durable again at once (a statement outside any transaction commits at the current
// level), as far as SQLite lets it; if it does not, the next transaction makes it so.
void Database::Transaction::restore_sync() {
    if (!db_.sync_relaxed_) return;
    if (sqlite3_exec(db_.db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) == SQLITE_OK)
        db_.sync_relaxed_ = false;
}

std::uint64_t Database::begin_sync() {
    if (!wal_) return 0;
    synced(syncs_started_, true);
    struct stat st {};
    if (log_fd_ >= 0 && (::fstat(log_fd_, &st) != 0 || st.st_nlink == 0))
        // SQLite never removes the log while a connection is open: someone else did, and
        // SQLite goes on writing the removed file, which no name reaches any more.
        throw JournalError("journal " + path_ + ": its write-ahead log was removed while in use");
    if (log_fd_ < 0) {
        // Our own descriptor of the log SQLite writes (its file object is not ours to use
        // from another thread); fdatasync of any descriptor flushes the file's data.
        auto log = path_ + "-wal";
        log_fd_ = ::open(log.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (log_fd_ < 0)
            throw JournalError("journal " + path_ + ": cannot open its write-ahead log " + log + ": " +
                               std::strerror(errno));
        // The log's name in its directory, durable once (SQLite syncs the directory only
        // when a sync of its own is the log's first).
        auto dir = std::filesystem::path(path_).parent_path();
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        bool dir_synced = dfd >= 0 && ::fsync(dfd) == 0;
        int error = errno;
        if (dfd >= 0) ::close(dfd);
        if (!dir_synced)
            throw JournalError("journal " + path_ + ": cannot sync its directory: " + std::strerror(error));
    }
    sync_began_ = std::chrono::steady_clock::now();
    log_sync_.start(log_fd_);
    return ++syncs_started_;
}

bool Database::synced(std::uint64_t n, bool wait) {
    // A sync the disk refused may have dropped what it was to write: nothing after it is
    // known durable either, so every later question gets the same error.
    if (!log_sync_error_.empty()) throw JournalError(log_sync_error_);
    if (n <= syncs_over_) return true;
    int error = 0;
    if (!log_sync_.done(wait, error)) return false;
    syncs_over_ = syncs_started_;
    if (error != 0) {
        log_sync_error_ = "journal " + path_ + ": cannot sync its write-ahead log: " + std::strerror(error);
        throw JournalError(log_sync_error_);
    }
    // What the deferred-commit bound counts from: every commit before the sync began.
    last_durable_ = std::max(last_durable_, sync_began_);
    return true;
}

void Database::at_commit(CommitHook hook) {
    if (tx_depth_ == 0) throw JournalError("journal " + path_ + ": a commit hook outside a transaction");
    hooks_.push_back(std::move(hook));
}

void Database::end_transaction(bool committed) {
    auto hooks = std::exchange(hooks_, {});
    for (auto& h : hooks)
        if (auto& f = committed ? h.after : h.rolled_back) f();
}

bool Database::integrity_ok() {
    auto s = prepare("PRAGMA integrity_check");
    return s.step() && s.text(0) == "ok";
}

std::int64_t Database::size_bytes() {
    auto s = prepare("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    return s.step() ? s.i64(0) : 0;
}

std::uint64_t Database::background_checkpoints() {
    return checkpointer_ ? checkpointer_->idle_and_completed() : 0;
}

bool Database::reclaim_space() {
    // No checkpoint of the thread's in the way of cutting the log: stopped, and not asked
    // for again by the vacuum's own commits (each step is one); it starts again on the
    // first commit after.
    if (checkpointer_) checkpointer_->stop();
    checkpoints_held_ = true;
    struct Release {
        bool& held;
        ~Release() { held = false; }
    } release{checkpoints_held_};
    // In steps of 4,096 pages, each its own short write: another process sharing the
    // journal waits for one step, never for the whole file.
    std::int64_t free_pages = 0;
    for (int step = 0; step < 100'000; ++step) {
        {
            auto s = prepare("PRAGMA freelist_count");
            free_pages = s.step() ? s.i64(0) : 0;
        }
        if (free_pages == 0) break;
        // Another writer that keeps the lock past the busy timeout: not finished, not an
        // error (the run this ends went well; the next run's end tries again).
        int rc = sqlite3_exec(db_, "PRAGMA incremental_vacuum(4096)", nullptr, nullptr, nullptr);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return false;
        if (rc != SQLITE_OK) fail("incremental vacuum");
    }
    // Without waiting for readers: what a reader still needs is checkpointed next time. Once
    // the whole log is in the database, it is also cut to nothing, so a daemon's journal does
    // not keep up to 64 MiB of it between runs (journal_size_limit only trims it to that).
    // The copy is PASSIVE (it takes no lock another process waits for); the truncation takes
    // the write lock only for the truncation, and not at all if anyone is in the way (the
    // busy handler off for it).
    int log_frames = -1, copied = -2;
    int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) fail("checkpoint");
    if (!wal_) return free_pages == 0;
    if (rc != SQLITE_OK || log_frames != copied) return false;
    if (log_frames <= 0) return free_pages == 0;
    sqlite3_busy_timeout(db_, 0);
    rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
    sqlite3_busy_timeout(db_, kBusyTimeoutMs);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) fail("checkpoint");
    return rc == SQLITE_OK && free_pages == 0;
}

}  // namespace prefsync::journal
