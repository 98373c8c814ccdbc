#include "daemon/journal/small_stores.hpp"

#include <algorithm>
#include <cmath>

namespace prefsync::journal {

// --- rate and quota ----------------------------------------------------------------------

QuotaGrant RateStore::take_tokens(int wanted, double rate, double burst, std::int64_t daily_quota, Millis now) {
    // Without an fsync of its own: a power loss can undo about a second of tokens taken
    // (Sync::deferred), i.e. that many requests uncounted against the daily quota. Durable,
    // it cost an fsync per block of requests on the loop's thread.
    Database::Transaction tx(db_, Database::Sync::deferred);
    QuotaGrant grant;
    // The shared bucket: every process of this host draws from the same row, so together
    // they keep the account's rate. Refilled by elapsed time, capped at the burst.
    double tokens = burst;
    {
        auto s = db_.prepare("SELECT tokens, updated_at FROM quota WHERE name = 'bucket'");
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
        auto s = db_.prepare("SELECT count FROM quota WHERE name = ?1");
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
    db_.prepare(
           "INSERT INTO quota(name, tokens, updated_at) VALUES ('bucket', ?1, ?2) "
           "ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at")
        .bind_double(1, tokens)
        .bind(2, now)
        .run();
    if (grant.granted > 0)
        db_.prepare(
               "INSERT INTO quota(name, count, updated_at) VALUES (?1, ?2, ?3) "
               "ON CONFLICT(name) DO UPDATE SET count = count + excluded.count, updated_at = excluded.updated_at")
            .bind(1, day)
            .bind(2, static_cast<std::int64_t>(grant.granted))
            .bind(3, now)
            .run();
    tx.commit();
    return grant;
}

void RateStore::prune(Millis before) {
    db_.prepare("DELETE FROM quota WHERE name LIKE 'day:%' AND updated_at < ?1").bind(1, before).run();
}

// --- runs --------------------------------------------------------------------------------

namespace {
#define RUN_COLUMNS                                                                                             \
    "id, job, kind, started_at, ended_at, read, queued, unchanged, rejected, done, accepted, failed, retries, " \
    "exit_code, coalesce(duplicates, 0), coalesce(missing, 0), coalesce(reason, '')"

// A reason as `status` prints it: one line (a driver's message may span several), bounded.
std::string one_line(const std::string& text) {
    constexpr std::size_t kMax = 1000;
    std::string out;
    for (char c : text.substr(0, kMax)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
    if (text.size() > kMax) out += "...";
    return out;
}

RunRecord read_run(Statement& s) {
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
    r.duplicates = s.i64(14);
    r.missing = s.i64(15);
    r.reason = s.text(16);
    return r;
}
}  // namespace

std::optional<JobTarget> TargetStore::get(const std::string& job) {
    auto s = db_.prepare("SELECT target, shown, recorded_at FROM targets WHERE job = ?1");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return JobTarget{s.text(0), s.text(1), s.i64(2)};
}

void TargetStore::set(const std::string& job, const JobTarget& t) {
    db_.prepare("INSERT OR REPLACE INTO targets(job, target, shown, recorded_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(1, job)
        .bind(2, t.target)
        .bind(3, t.shown)
        .bind(4, t.recorded_at)
        .run();
}

std::int64_t RunLog::begin(const std::string& job, const std::string& kind, Millis now) {
    auto s = db_.prepare("INSERT INTO runs(job, kind, started_at) VALUES (?1, ?2, ?3) RETURNING id");
    s.bind(1, job).bind(2, kind).bind(3, now);
    s.step();
    return s.i64(0);
}

void RunLog::end(const RunRecord& r, Millis now) {
    // Durable whatever was deferred before (the transaction checks the level): a run is
    // recorded as ended before its output takes its final name.
    Database::Transaction tx(db_);
    const auto reason = one_line(r.reason);
    db_.prepare(
           "UPDATE runs SET ended_at = ?2, read = ?3, queued = ?4, unchanged = ?5, rejected = ?6, done = ?7, "
           "accepted = ?8, failed = ?9, retries = ?10, exit_code = ?11, duplicates = ?12, missing = ?13, reason = ?14 "
           "WHERE id = ?1")
        .bind(1, r.id)
        .bind(2, now)
        .bind(3, r.read)
        .bind(4, r.queued)
        .bind(5, r.unchanged)
        .bind(6, r.rejected)
        .bind(7, r.done)
        .bind(8, r.accepted)
        .bind(9, r.failed)
        .bind(10, r.retries)
        .bind(11, static_cast<std::int64_t>(r.exit_code))
        .bind(12, r.duplicates)
        .bind(13, r.missing)
        .bind(14, reason)
        .run();
    tx.commit();
}

void RunLog::reopen(std::int64_t id) {
    db_.prepare("UPDATE runs SET ended_at = NULL, exit_code = NULL WHERE id = ?1").bind(1, id).run();
}

std::int64_t RunLog::end_unfinished(const std::string& job, int exit_code, Millis now) {
    db_.prepare(
           "UPDATE runs SET ended_at = ?2, exit_code = ?3, reason = 'its process stopped before it could record "
           "its end (killed, or its journal could not be written)' WHERE job = ?1 AND ended_at IS NULL")
        .bind(1, job)
        .bind(2, now)
        .bind(3, static_cast<std::int64_t>(exit_code))
        .run();
    return db_.changes();
}

std::vector<std::string> RunLog::unfinished_jobs() {
    std::vector<std::string> out;
    auto s = db_.prepare("SELECT DISTINCT job FROM runs WHERE ended_at IS NULL ORDER BY job");
    while (s.step()) out.push_back(s.text(0));
    return out;
}

RunLog::Mark RunLog::mark(const std::string& job) {
    auto s = db_.prepare(
        "SELECT coalesce(max(id), 0), coalesce(max(ended_at), 0), count(*) > count(ended_at) FROM runs WHERE job = ?1");
    s.bind(1, job);
    s.step();
    return {s.i64(0), s.i64(1), s.i64(2) != 0};
}

std::optional<RunRecord> RunLog::last(const std::string& job, const std::string& kind) {
    auto s = db_.prepare("SELECT " RUN_COLUMNS " FROM runs WHERE job = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1");
    s.bind(1, job).bind(2, kind);
    if (!s.step()) return std::nullopt;
    return read_run(s);
}

std::vector<RunRecord> RunLog::recent(const std::string& job, int limit) {
    std::vector<RunRecord> out;
    auto s = db_.prepare("SELECT " RUN_COLUMNS
                         " FROM runs WHERE job = ?1 AND (ended_at IS NULL OR id >= coalesce((SELECT id FROM runs "
                         "WHERE job = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1), 0)) ORDER BY id DESC");
    s.bind(1, job).bind(2, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(read_run(s));
    return out;
}

std::int64_t RunLog::prune(Millis before) {
    // The last run of each kind stays: a resumed backfill and `status` need it.
    db_.prepare(
           "DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?1 AND id NOT IN "
           "(SELECT MAX(id) FROM runs GROUP BY job, kind)")
        .bind(1, before)
        .run();
    return db_.changes();
}

// --- watermarks --------------------------------------------------------------------------

std::optional<Watermark> WatermarkStore::get(const std::string& job, const std::string& source) {
    auto s = db_.prepare("SELECT value, key FROM watermarks WHERE job = ?1 AND source = ?2");
    s.bind(1, job).bind(2, source);
    if (!s.step()) return std::nullopt;
    return Watermark{s.text(0), s.text(1)};
}

void WatermarkStore::set(const std::string& job, const std::string& source, const Watermark& mark, Millis now) {
    db_.prepare(
           "INSERT INTO watermarks(job, source, value, key, updated_at) VALUES(?1, ?2, ?3, ?4, ?5) "
           "ON CONFLICT(job) DO UPDATE SET source = excluded.source, value = excluded.value, key = excluded.key, "
           "updated_at = excluded.updated_at")
        .bind(1, job)
        .bind(2, source)
        .bind(3, mark.value)
        .bind(4, mark.key)
        .bind(5, now)
        .run();
}

// --- removals of a read in progress ------------------------------------------------------

std::vector<MarkedRemoval> MarkedRemovalStore::of(const std::string& job) {
    std::vector<MarkedRemoval> out;
    auto s = db_.prepare("SELECT identity, alt_type, alt_id, origin, profile_id FROM marked_removals WHERE job = ?1");
    s.bind(1, job);
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.opt_i64(4)});
    return out;
}

void MarkedRemovalStore::put(const std::string& job, const MarkedRemoval& r) {
    db_.prepare(
           "INSERT OR REPLACE INTO marked_removals(job, identity, alt_type, alt_id, origin, profile_id) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, job)
        .bind(2, r.identity)
        .bind(3, r.alt_type)
        .bind(4, r.alt_id)
        .bind(5, r.origin)
        .bind(6, r.profile_id)
        .run();
}

void MarkedRemovalStore::erase(const std::string& job, const std::string& identity) {
    db_.prepare("DELETE FROM marked_removals WHERE job = ?1 AND identity = ?2").bind(1, job).bind(2, identity).run();
}

void MarkedRemovalStore::clear(const std::string& job) {
    db_.prepare("DELETE FROM marked_removals WHERE job = ?1").bind(1, job).run();
}

// --- pull progress -----------------------------------------------------------------------

std::optional<PullState> PullStore::state(const std::string& job) {
    auto s = db_.prepare(
        "SELECT run_id, sink_offset, coalesce(fingerprint, ''), coalesce(partial_path, '') FROM pull_state "
        "WHERE job = ?1");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return PullState{s.i64(0), s.i64(1), s.text(2), s.text(3)};
}

void PullStore::begin(const std::string& job, std::int64_t run_id, const std::string& fingerprint,
                      const std::string& partial_path) {
    Database::Transaction tx(db_);
    db_.prepare("DELETE FROM pull_items WHERE job = ?1").bind(1, job).run();
    db_.prepare("DELETE FROM pull_seen WHERE job = ?1").bind(1, job).run();
    db_.prepare(
           "INSERT INTO pull_state(job, run_id, sink_offset, fingerprint, partial_path) VALUES (?1, ?2, 0, ?3, ?4) "
           "ON CONFLICT(job) DO UPDATE SET run_id = excluded.run_id, sink_offset = 0, "
           "fingerprint = excluded.fingerprint, partial_path = excluded.partial_path")
        .bind(1, job)
        .bind(2, run_id)
        .bind(3, fingerprint)
        .bind(4, partial_path)
        .run();
    tx.commit();
}

void PullStore::adopt_settings(const std::string& job, const std::string& fingerprint,
                               const std::string& partial_path) {
    db_.prepare("UPDATE pull_state SET fingerprint = ?2, partial_path = ?3 WHERE job = ?1 AND fingerprint IS NULL")
        .bind(1, job)
        .bind(2, fingerprint)
        .bind(3, partial_path)
        .run();
}

namespace {

// An item's expected body: NULL when there is none (no reconcile), as complete() leaves it.
void bind_expected(Statement& s, int index, const std::string& expected) {
    if (expected.empty())
        s.bind_null(index);
    else
        s.bind(index, expected);
}
void bind_expected(Statement& s, int index, std::string&& expected) = delete;  // bound by reference

}  // namespace

std::optional<PullStore::Known> PullStore::add_item(const std::string& job, const std::string& item,
                                                    const std::string& origin, const std::string& expected) {
    auto s = db_.prepare(
        "INSERT INTO pull_items(job, seq, item, origin, expected) "
        "VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM pull_items WHERE job = ?1), ?2, ?3, ?4) "
        "ON CONFLICT(job, item) DO NOTHING");
    s.bind(1, job).bind(2, item).bind(3, origin);
    bind_expected(s, 4, expected);
    s.run();
    if (db_.changes() > 0) return std::nullopt;
    auto k =
        db_.prepare("SELECT seq, coalesce(origin, ''), state = 'pending' FROM pull_items WHERE job = ?1 AND item = ?2");
    k.bind(1, job).bind(2, item);
    if (!k.step()) return Known{};
    return Known{k.i64(0), k.text(1), k.i64(2) != 0};
}

void PullStore::replace_item(const std::string& job, std::int64_t seq, const std::string& origin,
                             const std::string& expected, bool again) {
    // The profile its earlier fetch wrote stays known as written, whatever the new fetch finds.
    if (again)
        db_.prepare(
               "INSERT OR IGNORE INTO pull_seen(job, profile_id) SELECT job, profile FROM pull_items "
               "WHERE job = ?1 AND seq = ?2 AND profile IS NOT NULL")
            .bind(1, job)
            .bind(2, seq)
            .run();
    auto s = db_.prepare(
        again ? "UPDATE pull_items SET origin = ?3, expected = ?4, state = 'pending', status = 0, error = NULL, "
                "detail = NULL, profile = NULL, seq = (SELECT max(seq) + 1 FROM pull_items WHERE job = ?1) "
                "WHERE job = ?1 AND seq = ?2"
              : "UPDATE pull_items SET origin = ?3, expected = ?4 WHERE job = ?1 AND seq = ?2");
    s.bind(1, job).bind(2, seq).bind(3, origin);
    bind_expected(s, 4, expected);
    s.run();
}

std::int64_t PullStore::last_seq(const std::string& job) {
    auto s = db_.prepare("SELECT coalesce(max(seq), 0) FROM pull_items WHERE job = ?1");
    s.bind(1, job);
    return s.step() ? s.i64(0) : 0;
}

std::vector<PullItem> PullStore::pending(const std::string& job, std::int64_t after_seq, int limit) {
    std::vector<PullItem> out;
    auto s = db_.prepare(
        "SELECT seq, item, origin, expected FROM pull_items WHERE job = ?1 AND seq > ?2 "
        "AND state = 'pending' ORDER BY seq LIMIT ?3");
    s.bind(1, job).bind(2, after_seq).bind(3, static_cast<std::int64_t>(limit));
    while (s.step()) out.push_back(PullItem{s.i64(0), s.text(1), s.text(2), s.text(3)});
    return out;
}

std::vector<std::int64_t> PullStore::seen_ids(const std::string& job) {
    std::vector<std::int64_t> out;
    auto s = db_.prepare(
        "SELECT profile_id FROM pull_seen WHERE job = ?1 "
        "UNION ALL SELECT profile FROM pull_items WHERE job = ?1 AND profile IS NOT NULL");
    s.bind(1, job);
    while (s.step()) out.push_back(s.i64(0));
    return out;
}

void PullStore::complete(const std::string& job, const std::vector<PullOutcome>& outcomes,
                         const std::vector<std::int64_t>& seen, std::int64_t sink_offset, Database::Sync sync) {
    Database::Transaction tx(db_, sync);
    auto remember = [&](std::int64_t profile_id) {
        db_.prepare("INSERT OR IGNORE INTO pull_seen(job, profile_id) VALUES (?1, ?2)")
            .bind(1, job)
            .bind(2, profile_id)
            .run();
    };
    for (const auto& o : outcomes) {
        db_.prepare(
               "UPDATE pull_items SET state = ?3, status = ?4, error = ?5, detail = ?6, expected = NULL, "
               "profile = coalesce(?7, profile) WHERE job = ?1 AND seq = ?2")
            .bind(1, job)
            .bind(2, o.seq)
            .bind(3, o.state)
            .bind(4, static_cast<std::int64_t>(o.status))
            .bind(5, o.error)
            .bind(6, o.detail)
            .bind(7, o.profile_id)
            .run();
        // The item was queued again under a new seq meanwhile (a later row of its id): this
        // outcome is moot, but the profile it wrote is in the output.
        if (o.profile_id && db_.changes() == 0) remember(*o.profile_id);
    }
    for (auto id : seen) remember(id);
    db_.prepare("UPDATE pull_state SET sink_offset = ?2 WHERE job = ?1").bind(1, job).bind(2, sink_offset).run();
    tx.commit();
}

std::map<std::string, std::int64_t> PullStore::counts(const std::string& job) {
    std::map<std::string, std::int64_t> out;
    auto s = db_.prepare("SELECT state, count(*) FROM pull_items WHERE job = ?1 GROUP BY state");
    s.bind(1, job);
    while (s.step()) out[s.text(0)] = s.i64(1);
    return out;
}

std::vector<PullOutcome> PullStore::outcomes(const std::string& job, const std::string& state, int limit) {
    std::vector<PullOutcome> out;
    auto s = db_.prepare(
        "SELECT seq, state, status, coalesce(error, ''), coalesce(detail, ''), coalesce(origin, ''), "
        "item FROM pull_items WHERE job = ?1 AND state = ?2 ORDER BY seq LIMIT ?3");
    s.bind(1, job).bind(2, state).bind(3, static_cast<std::int64_t>(limit));
    while (s.step())
        out.push_back(PullOutcome{
            s.i64(0), s.text(1), static_cast<int>(s.i64(2)), s.text(3), s.text(4), s.text(5), s.text(6), {}});
    return out;
}

// --- the daemon's schedule state ---------------------------------------------------------

std::optional<Millis> ScheduleStore::last_fire(const std::string& job) {
    auto s = db_.prepare("SELECT last_fire FROM schedule_state WHERE job = ?1 AND last_fire > 0");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return s.i64(0);
}

void ScheduleStore::set_last_fire(const std::string& job, Millis at) {
    db_.prepare(
           "INSERT INTO schedule_state(job, last_fire) VALUES (?1, ?2) "
           "ON CONFLICT(job) DO UPDATE SET last_fire = excluded.last_fire")
        .bind(1, job)
        .bind(2, at)
        .run();
}

std::optional<Parked> ScheduleStore::parked(const std::string& job) {
    auto s = db_.prepare(
        "SELECT parked_until, coalesce(park_reason, ''), failures FROM schedule_state "
        "WHERE job = ?1 AND parked_until IS NOT NULL");
    s.bind(1, job);
    if (!s.step()) return std::nullopt;
    return Parked{s.i64(0), s.text(1), static_cast<int>(s.i64(2))};
}

void ScheduleStore::park(const std::string& job, const Parked& p) {
    db_.prepare(
           "INSERT INTO schedule_state(job, parked_until, park_reason, failures) VALUES (?1, ?2, ?3, ?4) "
           "ON CONFLICT(job) DO UPDATE SET parked_until = excluded.parked_until, "
           "park_reason = excluded.park_reason, failures = excluded.failures")
        .bind(1, job)
        .bind(2, p.until)
        .bind(3, p.reason)
        .bind(4, static_cast<std::int64_t>(p.failures))
        .run();
}

void ScheduleStore::unpark(const std::string& job) {
    db_.prepare("UPDATE schedule_state SET parked_until = NULL, park_reason = NULL, failures = 0 WHERE job = ?1")
        .bind(1, job)
        .run();
}

std::map<std::string, Parked> ScheduleStore::all_parked() {
    std::map<std::string, Parked> out;
    auto s = db_.prepare(
        "SELECT job, parked_until, coalesce(park_reason, ''), failures FROM schedule_state "
        "WHERE parked_until IS NOT NULL");
    while (s.step()) out[s.text(0)] = Parked{s.i64(1), s.text(2), static_cast<int>(s.i64(3))};
    return out;
}

}  // namespace prefsync::journal
