#include "daemon/journal/journal.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

namespace prefsync::journal {
namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS updates(
  id INTEGER PRIMARY KEY,
  job TEXT NOT NULL,
  identity TEXT NOT NULL,
  alt_type TEXT, alt_id TEXT, profile_id INTEGER,
  origin TEXT,
  body TEXT,
  hash TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER NOT NULL DEFAULT 0,
  lease_until INTEGER NOT NULL DEFAULT 0,
  resolve INTEGER NOT NULL DEFAULT 0,
  claimed_by INTEGER,
  last_status INTEGER, last_error TEXT,
  run_id INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS updates_queue ON updates(job, state, id);
CREATE INDEX IF NOT EXISTS updates_due ON updates(job, state, due_at);
CREATE UNIQUE INDEX IF NOT EXISTS updates_one_pending ON updates(job, identity)
  WHERE state IN ('queued', 'inflight', 'retry');
CREATE INDEX IF NOT EXISTS updates_by_run ON updates(run_id, identity) WHERE run_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS synced(
  job TEXT NOT NULL, identity TEXT NOT NULL, hash TEXT NOT NULL, profile_id INTEGER,
  synced_at INTEGER NOT NULL, PRIMARY KEY(job, identity)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY, job TEXT NOT NULL, kind TEXT NOT NULL,
  started_at INTEGER NOT NULL, ended_at INTEGER,
  read INTEGER DEFAULT 0, queued INTEGER DEFAULT 0, unchanged INTEGER DEFAULT 0, rejected INTEGER DEFAULT 0,
  done INTEGER DEFAULT 0, accepted INTEGER DEFAULT 0, failed INTEGER DEFAULT 0, retries INTEGER DEFAULT 0,
  exit_code INTEGER);
CREATE TABLE IF NOT EXISTS quota(
  name TEXT PRIMARY KEY, tokens REAL NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS watermarks(
  job TEXT PRIMARY KEY, source TEXT NOT NULL, value TEXT NOT NULL, key TEXT,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pull_state(
  job TEXT PRIMARY KEY, run_id INTEGER NOT NULL, sink_offset INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pull_items(
  job TEXT NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, origin TEXT, expected TEXT,
  state TEXT NOT NULL DEFAULT 'pending', status INTEGER NOT NULL DEFAULT 0, error TEXT, detail TEXT,
  PRIMARY KEY(job, seq));
CREATE UNIQUE INDEX IF NOT EXISTS pull_items_item ON pull_items(job, item);
CREATE TABLE IF NOT EXISTS pull_seen(job TEXT NOT NULL, profile_id INTEGER NOT NULL,
  PRIMARY KEY(job, profile_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_locks(
  job TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, owner TEXT NOT NULL, acquired_at INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schedule_state(job TEXT PRIMARY KEY, last_fire INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

// A prepared statement, reset on destruction so the cached handle can be used again.
class Stmt {
public:
    Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    ~Stmt() {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    Stmt& bind(int i, const std::string& v) {
        check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        check(sqlite3_bind_int64(s_, i, v));
        return *this;
    }
    Stmt& bind(int i, std::optional<std::int64_t> v) {
        check(v ? sqlite3_bind_int64(s_, i, *v) : sqlite3_bind_null(s_, i));
        return *this;
    }
    Stmt& bind_double(int i, double v) {
        check(sqlite3_bind_double(s_, i, v));
        return *this;
    }
    Stmt& bind_null(int i) {
        check(sqlite3_bind_null(s_, i));
        return *this;
    }
    // True while a row is available.
    bool step() {
        int rc = sqlite3_step(s_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw JournalError(std::string("journal: ") + sqlite3_errmsg(db_));
    }
    void run() { while (step()) {} }
    std::int64_t i64(int c) { return sqlite3_column_int64(s_, c); }
    double f64(int c) { return sqlite3_column_double(s_, c); }
    std::optional<std::int64_t> opt_i64(int c) {
        if (sqlite3_column_type(s_, c) == SQLITE_NULL) return std::nullopt;
        return sqlite3_column_int64(s_, c);
    }
    std::string text(int c) {
        auto p = sqlite3_column_text(s_, c);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
                 : std::string();
    }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) throw JournalError(std::string("journal: ") + sqlite3_errmsg(db_));
    }
    sqlite3* db_;
    sqlite3_stmt* s_;
};

State parse_state(const std::string& s) {
    static const std::map<std::string, State> m{
        {"queued", State::Queued},     {"inflight", State::Inflight}, {"retry", State::Retry},
        {"accepted", State::Accepted}, {"done", State::Done},         {"verified", State::Verified},
        {"failed", State::Failed},     {"superseded", State::Superseded}};
    return m.at(s);
}

}  // namespace

std::string_view to_string(State state) {
    switch (state) {
        case State::Queued: return "queued";
        case State::Inflight: return "inflight";
        case State::Retry: return "retry";
        case State::Accepted: return "accepted";
        case State::Done: return "done";
        case State::Verified: return "verified";
        case State::Failed: return "failed";
        case State::Superseded: return "superseded";
    }
    return "?";
}

struct Journal::Statements {
    std::map<const char*, sqlite3_stmt*> cache;
    ~Statements() {
        for (auto& [sql, s] : cache) sqlite3_finalize(s);
    }
};

namespace {
Stmt prepare(sqlite3* db, Journal::Statements& statements, const char* sql) {
    auto it = statements.cache.find(sql);
    if (it == statements.cache.end()) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
            throw JournalError(std::string("journal: ") + sqlite3_errmsg(db) + " in: " + sql);
        it = statements.cache.emplace(sql, s).first;
    }
    return Stmt(db, it->second);
}
}  // namespace

#define STMT(sql) prepare(db_, *statements_, sql)

// The columns read_update() expects, in its order.
#define UPDATE_COLUMNS "id, identity, alt_type, alt_id, profile_id, origin, body, hash, attempts, resolve"

namespace {
ClaimedUpdate read_update(Stmt& s) {
    ClaimedUpdate c;
    c.id = s.i64(0);
    c.identity = s.text(1);
    c.alt_type = s.text(2);
    c.alt_id = s.text(3);
    c.profile_id = s.opt_i64(4);
    c.origin = s.text(5);
    c.body = s.text(6);
    c.hash = s.text(7);
    c.attempts = static_cast<int>(s.i64(8));
    c.resolve = s.i64(9) != 0;
    return c;
}
}  // namespace

Journal::Journal(const std::string& path) : statements_(std::make_unique<Statements>()) {
    std::error_code ec;
    auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    // Create the file 0600 ourselves: SQLite would create it with the umask's mode.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw JournalError("journal " + path + ": cannot open: " + std::strerror(errno));
    ::close(fd);
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw JournalError("journal " + path + ": " + message);
    }
    // One Journal per thread (the dispatcher's): SQLite's own locking is not needed.
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power loss
    // may lose the last transactions, and then the lease logic re-sends idempotently.
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    exec(kSchema);
}

Journal::~Journal() {
    statements_.reset();
    if (db_) sqlite3_close(db_);
}

void Journal::exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : "unknown error";
        sqlite3_free(error);
        throw JournalError("journal: " + message);
    }
}

Journal::Transaction::Transaction(Journal& j) : j_(j) {
    if (j_.tx_depth_++ == 0) j_.exec("BEGIN IMMEDIATE");
}

Journal::Transaction::~Transaction() {
    if (done_) return;
    if (--j_.tx_depth_ == 0) {
        char* error = nullptr;
        sqlite3_exec(j_.db_, "ROLLBACK", nullptr, nullptr, &error);
        sqlite3_free(error);
    }
}

void Journal::Transaction::commit() {
    done_ = true;
    if (--j_.tx_depth_ == 0) j_.exec("COMMIT");
}

EnqueueResult Journal::enqueue(const std::string& job, const NewUpdate& u, Millis now, bool force,
                               std::optional<std::int64_t> run_id) {
    Transaction tx(*this);
    if (run_id) {
        auto s = STMT("SELECT 1 FROM updates WHERE run_id = ?1 AND identity = ?2 AND hash = ?3 LIMIT 1");
        s.bind(1, *run_id).bind(2, u.identity).bind(3, u.hash);
        if (s.step()) {
            tx.commit();
            return EnqueueResult::AlreadyInRun;
        }
    }
    if (!force) {
        auto s = STMT("SELECT hash FROM synced WHERE job = ?1 AND identity = ?2");
        s.bind(1, job).bind(2, u.identity);
        if (s.step() && s.text(0) == u.hash) {
            tx.commit();
            return EnqueueResult::Unchanged;
        }
    }
    {
        auto s = STMT("SELECT id, hash, state FROM updates WHERE job = ?1 AND identity = ?2 "
                      "AND state IN ('queued', 'inflight', 'retry')");
        s.bind(1, job).bind(2, u.identity);
        if (s.step()) {
            auto id = s.i64(0);
            if (s.text(1) == u.hash && !run_id) {
                tx.commit();
                return EnqueueResult::AlreadyPending;
            }
            auto sup = STMT("UPDATE updates SET state = 'superseded', body = NULL, updated_at = ?2 WHERE id = ?1");
            sup.bind(1, id).bind(2, now).run();
        }
    }
    std::optional<std::int64_t> profile_id = u.profile_id;
    if (!profile_id) {
        auto s = STMT("SELECT profile_id FROM synced WHERE job = ?1 AND identity = ?2");
        s.bind(1, job).bind(2, u.identity);
        if (s.step()) profile_id = s.opt_i64(0);
    }
    auto ins = STMT("INSERT INTO updates(job, identity, alt_type, alt_id, profile_id, origin, body, hash, state, "
                    "due_at, run_id, created_at, updated_at) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'queued', 0, ?9, ?10, ?10)");
    ins.bind(1, job).bind(2, u.identity).bind(3, u.alt_type).bind(4, u.alt_id).bind(5, profile_id);
    ins.bind(6, u.origin).bind(7, u.body).bind(8, u.hash).bind(9, run_id).bind(10, now);
    ins.run();
    tx.commit();
    return EnqueueResult::Queued;
}

std::vector<ClaimedUpdate> Journal::claim(const std::string& job, int limit, Millis now, Millis lease) {
    Transaction tx(*this);
    std::vector<ClaimedUpdate> out;
    {
        // The partial unique index keeps one pending row per identity, so no two claimed
        // rows share an identity.
        // A row still inflight here was claimed by a process that died: its request may have
        // landed, so a create is looked up before it is sent again (resolve).
        // Three index range scans (queued by id, retries by due time, expired leases), not
        // one OR over the whole table: claim is called every few dozen requests.
        auto s = STMT("UPDATE updates SET state = 'inflight', lease_until = ?3, updated_at = ?2, claimed_by = ?5, "
                      "resolve = CASE WHEN state = 'inflight' THEN 1 ELSE resolve END "
                      "WHERE id IN (SELECT id FROM ("
                      "  SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'queued' ORDER BY id LIMIT ?4)"
                      "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'retry' AND due_at <= ?2 "
                      "    ORDER BY due_at LIMIT ?4)"
                      "  UNION ALL SELECT id FROM (SELECT id FROM updates WHERE job = ?1 AND state = 'inflight' AND lease_until < ?2 "
                      "    LIMIT ?4)) ORDER BY id LIMIT ?4) "
                      "RETURNING " UPDATE_COLUMNS);
        s.bind(1, job).bind(2, now).bind(3, now + lease).bind(4, static_cast<std::int64_t>(limit));
        s.bind(5, static_cast<std::int64_t>(getpid()));
        while (s.step()) out.push_back(read_update(s));
    }
    tx.commit();
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.id < b.id; });
    return out;
}

void Journal::complete(const std::string& job, const std::vector<Completion>& completions, Millis now) {
    if (completions.empty()) return;
    Transaction tx(*this);
    for (const auto& c : completions) {
        switch (c.state) {
            case State::Done:
            case State::Accepted: {
                auto s = STMT("UPDATE updates SET state = ?2, body = NULL, last_status = ?3, last_error = NULL, "
                              "attempts = attempts + 1, resolve = 0, profile_id = COALESCE(?4, profile_id), "
                              "updated_at = ?5 WHERE id = ?1 RETURNING identity, hash, profile_id");
                s.bind(1, c.id).bind(2, std::string(to_string(c.state))).bind(3, static_cast<std::int64_t>(c.status));
                s.bind(4, c.profile_id).bind(5, now);
                if (s.step()) {
                    auto identity = s.text(0), hash = s.text(1);
                    auto pid = s.opt_i64(2);
                    auto up = STMT("INSERT INTO synced(job, identity, hash, profile_id, synced_at) VALUES (?1, ?2, ?3, ?4, ?5) "
                                   "ON CONFLICT(job, identity) DO UPDATE SET hash = excluded.hash, "
                                   "profile_id = COALESCE(excluded.profile_id, synced.profile_id), synced_at = excluded.synced_at");
                    up.bind(1, job).bind(2, identity).bind(3, hash).bind(4, pid).bind(5, now);
                    up.run();
                }
                break;
            }
            case State::Retry: {
                auto s = STMT("UPDATE updates SET state = 'retry', attempts = attempts + ?6, due_at = ?2, last_status = ?3, "
                              "last_error = ?4, resolve = ?5, profile_id = COALESCE(?7, profile_id), updated_at = ?8 "
                              "WHERE id = ?1");
                s.bind(1, c.id).bind(2, c.due_at).bind(3, static_cast<std::int64_t>(c.status)).bind(4, c.error);
                s.bind(5, static_cast<std::int64_t>(c.resolve)).bind(6, static_cast<std::int64_t>(c.count_attempt));
                s.bind(7, c.profile_id).bind(8, now);
                s.run();
                break;
            }
            case State::Failed: {
                auto s = STMT("UPDATE updates SET state = 'failed', attempts = attempts + 1, last_status = ?2, "
                              "last_error = ?3, updated_at = ?4 WHERE id = ?1");
                s.bind(1, c.id).bind(2, static_cast<std::int64_t>(c.status)).bind(3, c.error).bind(4, now);
                s.run();
                break;
            }
            case State::Queued: {
                auto s = STMT("UPDATE updates SET state = 'queued', lease_until = 0, updated_at = ?2 WHERE id = ?1");
                s.bind(1, c.id).bind(2, now);
                s.run();
                break;
            }
            default: throw JournalError("journal: invalid completion state");
        }
    }
    tx.commit();
}

std::int64_t Journal::release_dead_claims(const std::string& job) {
    std::vector<std::int64_t> owners;
    {
        auto s = STMT("SELECT DISTINCT claimed_by FROM updates WHERE job = ?1 AND state = 'inflight' AND claimed_by IS NOT NULL");
        s.bind(1, job);
        while (s.step()) owners.push_back(s.i64(0));
    }
    std::int64_t released = 0;
    Transaction tx(*this);
    for (auto pid : owners) {
        if (pid == getpid()) continue;
        if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to know)
        auto s = STMT("UPDATE updates SET lease_until = 0 WHERE job = ?1 AND state = 'inflight' AND claimed_by = ?2");
        s.bind(1, job).bind(2, pid).run();
        released += sqlite3_changes64(db_);
    }
    tx.commit();
    return released;
}

std::optional<Millis> Journal::next_due(const std::string& job) {
    auto s = STMT("SELECT MIN(CASE WHEN state = 'inflight' THEN lease_until ELSE due_at END) FROM updates "
                  "WHERE job = ?1 AND state IN ('queued', 'retry', 'inflight')");
    s.bind(1, job);
    if (s.step()) return s.opt_i64(0);
    return std::nullopt;
}

StateCounts Journal::counts(const std::string& job) {
    StateCounts c;
    auto s = STMT("SELECT state, COUNT(*) FROM updates WHERE job = ?1 GROUP BY state");
    s.bind(1, job);
    while (s.step()) {
        auto n = s.i64(1);
        switch (parse_state(s.text(0))) {
            case State::Queued: c.queued = n; break;
            case State::Inflight: c.inflight = n; break;
            case State::Retry: c.retry = n; break;
            case State::Accepted: c.accepted = n; break;
            case State::Done: c.done = n; break;
            case State::Verified: c.verified = n; break;
            case State::Failed: c.failed = n; break;
            case State::Superseded: c.superseded = n; break;
        }
    }
    return c;
}

std::vector<std::string> Journal::jobs() {
    std::vector<std::string> out;
    auto s = STMT("SELECT DISTINCT job FROM updates ORDER BY job");
    while (s.step()) out.push_back(s.text(0));
    return out;
}

std::vector<Failure> Journal::failures(const std::string& job) {
    std::vector<Failure> out;
    auto s = STMT("SELECT id, identity, origin, COALESCE(last_status, 0), COALESCE(last_error, ''), attempts "
                  "FROM updates WHERE job = ?1 AND state = 'failed' ORDER BY id");
    s.bind(1, job);
    while (s.step())
        out.push_back({s.i64(0), s.text(1), s.text(2), s.text(4), static_cast<int>(s.i64(3)), static_cast<int>(s.i64(5))});
    return out;
}

std::int64_t Journal::retry_failed(const std::string& job, std::optional<int> status, Millis now) {
    Transaction tx(*this);
    // A newer pending change for the same identity wins; its failed predecessor is superseded.
    auto sup = STMT("UPDATE updates SET state = 'superseded', body = NULL, updated_at = ?2 WHERE job = ?1 AND state = 'failed' "
                    "AND identity IN (SELECT identity FROM updates WHERE job = ?1 AND state IN ('queued','inflight','retry'))");
    sup.bind(1, job).bind(2, now).run();
    auto s = STMT("UPDATE updates SET state = 'queued', attempts = 0, due_at = 0, updated_at = ?2 "
                  "WHERE job = ?1 AND state = 'failed' AND (?3 IS NULL OR last_status = ?3)");
    s.bind(1, job).bind(2, now);
    if (status) s.bind(3, static_cast<std::int64_t>(*status));
    else s.bind_null(3);
    s.run();
    auto n = sqlite3_changes64(db_);
    tx.commit();
    return n;
}

std::vector<ClaimedUpdate> Journal::accepted(const std::string& job, int limit) {
    std::vector<ClaimedUpdate> out;
    auto s = STMT("SELECT " UPDATE_COLUMNS " FROM updates WHERE job = ?1 AND state = 'accepted' ORDER BY id LIMIT ?2");
    s.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(read_update(s));
    return out;
}

std::vector<Millis> Journal::mark_verified(const std::vector<std::int64_t>& ids, Millis now) {
    std::vector<Millis> waited;
    Transaction tx(*this);
    for (auto id : ids) {
        // updated_at is when the 202 was recorded: the wait for "Complete" (an upper bound,
        // to the granularity of verification).
        {
            auto q = STMT("SELECT updated_at FROM updates WHERE id = ?1 AND state = 'accepted'");
            q.bind(1, id);
            if (!q.step()) continue;
            waited.push_back(std::max<Millis>(0, now - q.i64(0)));
        }
        STMT("UPDATE updates SET state = 'verified', updated_at = ?2 WHERE id = ?1").bind(1, id).bind(2, now).run();
    }
    tx.commit();
    return waited;
}

std::int64_t Journal::begin_run(const std::string& job, const std::string& kind, Millis now) {
    auto s = STMT("INSERT INTO runs(job, kind, started_at) VALUES (?1, ?2, ?3) RETURNING id");
    s.bind(1, job).bind(2, kind).bind(3, now);
    s.step();
    return s.i64(0);
}

void Journal::end_run(const RunRecord& r, Millis now) {
    auto s = STMT("UPDATE runs SET ended_at = ?2, read = ?3, queued = ?4, unchanged = ?5, rejected = ?6, done = ?7, "
                  "accepted = ?8, failed = ?9, retries = ?10, exit_code = ?11 WHERE id = ?1");
    s.bind(1, r.id).bind(2, now).bind(3, r.read).bind(4, r.queued).bind(5, r.unchanged).bind(6, r.rejected);
    s.bind(7, r.done).bind(8, r.accepted).bind(9, r.failed).bind(10, r.retries).bind(11, static_cast<std::int64_t>(r.exit_code));
    s.run();
}

namespace {
RunRecord read_run(Stmt& s) {
    RunRecord r;
    r.id = s.i64(0);
    r.job = s.text(1);
    r.kind = s.text(2);
    r.started_at = s.i64(3);
    r.ended_at = s.opt_i64(4).value_or(0);
    r.read = s.i64(5);
    r.queued = s.i64(6);
    r.unchanged = s.i64(7);
    r.rejected = s.i64(8);
    r.done = s.i64(9);
    r.accepted = s.i64(10);
    r.failed = s.i64(11);
    r.retries = s.i64(12);
    r.exit_code = static_cast<int>(s.opt_i64(13).value_or(-1));
    return r;
}
}  // namespace

std::optional<RunRecord> Journal::last_run(const std::string& job, const std::string& kind) {
    auto s = STMT("SELECT id, job, kind, started_at, ended_at, read, queued, unchanged, rejected, done, accepted, "
                  "failed, retries, exit_code FROM runs WHERE job = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1");
    s.bind(1, job).bind(2, kind);
    if (!s.step()) return std::nullopt;
    return read_run(s);
}

std::vector<RunRecord> Journal::runs(const std::string& job, int limit) {
    std::vector<RunRecord> out;
    auto s = STMT("SELECT id, job, kind, started_at, ended_at, read, queued, unchanged, rejected, done, accepted, "
                  "failed, retries, exit_code FROM runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2");
    s.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(read_run(s));
    return out;
}

QuotaGrant Journal::take_tokens(int wanted, double rate, double burst, std::int64_t daily_quota, Millis now) {
    Transaction tx(*this);
    QuotaGrant grant;
    // The shared bucket: every process of this host draws from the same row, so together
    // they keep the account's rate. Refilled by elapsed time, capped at the burst.
    double tokens = burst;
    {
        auto s = STMT("SELECT tokens, updated_at FROM quota WHERE name = 'bucket'");
        if (s.step()) {
            auto elapsed = static_cast<double>(std::max<Millis>(0, now - s.i64(1))) / 1000.0;
            tokens = std::min(burst, s.f64(0) + elapsed * rate);
        }
    }
    int n = std::min(wanted, static_cast<int>(tokens));
    // The daily quota (UTC days): requests counted per day across processes and restarts.
    std::string day = "day:" + std::to_string(now / 86'400'000);
    if (daily_quota > 0) {
        std::int64_t used = 0;
        auto s = STMT("SELECT count FROM quota WHERE name = ?1");
        s.bind(1, day);
        if (s.step()) used = s.i64(0);
        if (used >= daily_quota) {
            grant.granted = 0;
            grant.quota_exhausted = true;
            grant.retry_at = (now / 86'400'000 + 1) * 86'400'000;  // next UTC midnight
            tx.commit();
            return grant;
        }
        n = static_cast<int>(std::min<std::int64_t>(n, daily_quota - used));
    }
    grant.granted = std::max(0, n);
    tokens -= grant.granted;
    if (grant.granted == 0) grant.retry_at = now + static_cast<Millis>(std::ceil((1.0 - tokens) / rate * 1000.0));
    {
        auto s = STMT("INSERT INTO quota(name, tokens, updated_at) VALUES ('bucket', ?1, ?2) "
                      "ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at");
        s.bind_double(1, tokens).bind(2, now).run();
    }
    if (grant.granted > 0) {
        auto s = STMT("INSERT INTO quota(name, count, updated_at) VALUES (?1, ?2, ?3) "
                      "ON CONFLICT(name) DO UPDATE SET count = count + excluded.count, updated_at = excluded.updated_at");
        s.bind(1, day).bind(2, static_cast<std::int64_t>(grant.granted)).bind(3, now).run();
    }
    tx.commit();
    return grant;
}

bool Journal::integrity_ok() {
    auto s = STMT("PRAGMA integrity_check");
    return s.step() && s.text(0) == "ok";
}

std::optional<Watermark> Journal::watermark(const std::string& job, const std::string& source) {
    auto s = STMT("SELECT value, key FROM watermarks WHERE job = ? AND source = ?");
    s.bind(1, job).bind(2, source);
    if (!s.step()) return std::nullopt;
    return Watermark{s.text(0), s.text(1)};
}

void Journal::set_watermark(const std::string& job, const std::string& source, const Watermark& mark, Millis now) {
    STMT("INSERT INTO watermarks(job, source, value, key, updated_at) VALUES(?, ?, ?, ?, ?) "
         "ON CONFLICT(job) DO UPDATE SET source = excluded.source, value = excluded.value, key = excluded.key, "
         "updated_at = excluded.updated_at")
        .bind(1, job).bind(2, source).bind(3, mark.value).bind(4, mark.key).bind(5, now).run();
}

std::optional<PullState> Journal::pull_state(const std::string& job) {
    auto s = STMT("SELECT run_id, sink_offset FROM pull_state WHERE job = ?1");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return PullState{s.i64(0), s.i64(1)};
}

void Journal::begin_pull(const std::string& job, std::int64_t run_id) {
    Transaction tx(*this);
    STMT("DELETE FROM pull_items WHERE job = ?1").bind(1, job).run();
    STMT("DELETE FROM pull_seen WHERE job = ?1").bind(1, job).run();
    STMT("INSERT INTO pull_state(job, run_id, sink_offset) VALUES (?1, ?2, 0) "
         "ON CONFLICT(job) DO UPDATE SET run_id = excluded.run_id, sink_offset = 0")
        .bind(1, job).bind(2, run_id).run();
    tx.commit();
}

bool Journal::add_pull_item(const std::string& job, const std::string& item, const std::string& origin,
                            const std::string& expected) {
    auto s = STMT("INSERT INTO pull_items(job, seq, item, origin, expected) "
                  "VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM pull_items WHERE job = ?1), ?2, ?3, ?4) "
                  "ON CONFLICT(job, item) DO NOTHING");
    s.bind(1, job).bind(2, item).bind(3, origin);
    if (expected.empty()) s.bind_null(4);
    else s.bind(4, expected);
    s.run();
    return sqlite3_changes(db_) > 0;
}

std::vector<PullItem> Journal::pending_pull_items(const std::string& job, std::int64_t after_seq, int limit) {
    std::vector<PullItem> out;
    auto s = STMT("SELECT seq, item, origin, expected FROM pull_items WHERE job = ?1 AND seq > ?2 AND state = 'pending' "
                  "ORDER BY seq LIMIT ?3");
    s.bind(1, job).bind(2, after_seq).bind(3, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(PullItem{s.i64(0), s.text(1), s.text(2), s.text(3)});
    return out;
}

std::vector<std::int64_t> Journal::pull_seen_ids(const std::string& job) {
    std::vector<std::int64_t> out;
    auto s = STMT("SELECT profile_id FROM pull_seen WHERE job = ?1");
    s.bind(1, job);
    while (s.step()) out.push_back(s.i64(0));
    return out;
}

void Journal::complete_pull(const std::string& job, const std::vector<PullOutcome>& outcomes,
                            const std::vector<std::int64_t>& seen, std::int64_t sink_offset) {
    Transaction tx(*this);
    for (const auto& o : outcomes)
        STMT("UPDATE pull_items SET state = ?3, status = ?4, error = ?5, detail = ?6, expected = NULL "
             "WHERE job = ?1 AND seq = ?2")
            .bind(1, job).bind(2, o.seq).bind(3, o.state).bind(4, static_cast<std::int64_t>(o.status))
            .bind(5, o.error).bind(6, o.detail).run();
    for (auto id : seen) STMT("INSERT OR IGNORE INTO pull_seen(job, profile_id) VALUES (?1, ?2)").bind(1, job).bind(2, id).run();
    STMT("UPDATE pull_state SET sink_offset = ?2 WHERE job = ?1").bind(1, job).bind(2, sink_offset).run();
    tx.commit();
}

std::map<std::string, std::int64_t> Journal::pull_counts(const std::string& job) {
    std::map<std::string, std::int64_t> out;
    auto s = STMT("SELECT state, count(*) FROM pull_items WHERE job = ?1 GROUP BY state");
    s.bind(1, job);
    while (s.step()) out[s.text(0)] = s.i64(1);
    return out;
}

std::vector<PullOutcome> Journal::pull_outcomes(const std::string& job, const std::string& state, int limit) {
    std::vector<PullOutcome> out;
    auto s = STMT("SELECT seq, state, status, coalesce(error, ''), coalesce(detail, ''), coalesce(origin, ''), item "
                  "FROM pull_items WHERE job = ?1 AND state = ?2 ORDER BY seq LIMIT ?3");
    s.bind(1, job).bind(2, state).bind(3, static_cast<std::int64_t>(limit));
    while (s.step()) {
        PullOutcome o{s.i64(0), s.text(1), static_cast<int>(s.i64(2)), s.text(3), s.text(4), s.text(5), s.text(6)};
        out.push_back(std::move(o));
    }
    return out;
}

namespace {
std::string host_name() {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) return "?";
    return name;
}
}  // namespace

std::optional<LockHolder> Journal::lock_job(const std::string& job, const std::string& owner, Millis now) {
    Transaction tx(*this);
    auto host = host_name();
    auto s = STMT("SELECT pid, host, owner, acquired_at FROM job_locks WHERE job = ?1");
    s.bind(1, job);
    if (s.step()) {
        LockHolder holder{s.i64(0), s.text(1), s.text(2), s.i64(3)};
        // A holder on this host that no longer exists (kill -9, crash) left a stale lock.
        bool stale = holder.host == host && ::kill(static_cast<pid_t>(holder.pid), 0) != 0 && errno == ESRCH;
        bool mine = holder.host == host && holder.pid == ::getpid();
        if (!stale && !mine) return holder;
    }
    STMT("INSERT INTO job_locks(job, pid, host, owner, acquired_at) VALUES (?1, ?2, ?3, ?4, ?5) "
         "ON CONFLICT(job) DO UPDATE SET pid = excluded.pid, host = excluded.host, owner = excluded.owner, "
         "acquired_at = excluded.acquired_at")
        .bind(1, job).bind(2, static_cast<std::int64_t>(::getpid())).bind(3, host).bind(4, owner).bind(5, now).run();
    tx.commit();
    return std::nullopt;
}

void Journal::unlock_job(const std::string& job) {
    STMT("DELETE FROM job_locks WHERE job = ?1 AND pid = ?2 AND host = ?3")
        .bind(1, job).bind(2, static_cast<std::int64_t>(::getpid())).bind(3, host_name()).run();
}

std::optional<Millis> Journal::last_fire(const std::string& job) {
    auto s = STMT("SELECT last_fire FROM schedule_state WHERE job = ?1");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return s.i64(0);
}

void Journal::set_last_fire(const std::string& job, Millis at) {
    STMT("INSERT INTO schedule_state(job, last_fire) VALUES (?1, ?2) "
         "ON CONFLICT(job) DO UPDATE SET last_fire = excluded.last_fire")
        .bind(1, job).bind(2, at).run();
}

std::int64_t Journal::size_bytes() {
    auto s = STMT("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    return s.step() ? s.i64(0) : 0;
}

}  // namespace prefsync::journal
