#include "connectors/open_source.hpp"

#include <algorithm>
#include <thread>

#include "connectors/csv/csv_source.hpp"
#include "connectors/postgres/postgres_source.hpp"
#include "connectors/sqlite/sqlite_source.hpp"
#include "daemon/base/clock.hpp"

namespace prefsync::connectors {
namespace {

// One overload per alternative of SourceSettings: a type without one does not compile.
// `now`: the wall clock for a file source's settle check, if it is checked.
std::unique_ptr<Source> open(const CsvSourceConfig& config, const std::optional<Position>&,
                             std::optional<std::int64_t> now) {
    return std::make_unique<CsvSource>(config, now);
}
std::unique_ptr<Source> open(const SqliteSourceConfig& config, const std::optional<Position>& since,
                             std::optional<std::int64_t>) {
    return std::make_unique<SqliteSource>(config, since);
}
std::unique_ptr<Source> open(const PostgresSourceConfig& config, const std::optional<Position>& since,
                             std::optional<std::int64_t>) {
    return std::make_unique<PostgresSource>(config, since);
}

}  // namespace

std::unique_ptr<Source> open_source(const SourceConfig& config, const std::optional<Position>& since,
                                    const SettleWait& settle) {
    auto clock = [&] { return settle.now ? settle.now() : base::now_ms(); };
    // Waited for, the file is opened again each time: only a version quiet for `settle` at
    // its open is read, and a writer that resumed meanwhile is seen (a new modification time).
    std::optional<std::int64_t> waiting_since;
    for (;;) {
        auto now = settle.check ? std::optional<std::int64_t>(clock()) : std::nullopt;
        try {
            return std::visit([&](const auto& settings) { return open(settings, since, now); }, config.settings);
        } catch (const SourceUnsettledError& e) {
            if (!waiting_since) waiting_since = now;
            auto waited = *now - *waiting_since;
            const auto* csv = std::get_if<CsvSourceConfig>(&config.settings);
            auto most = csv ? (csv->settle + kMostSettleWait).count() : 0;
            bool stopped = settle.stop && settle.stop->load();
            if (!settle.wait || stopped || waited + e.wait_ms > most) {
                if (waited <= 0) throw;
                throw SourceUnsettledError("after waiting " + std::to_string(waited / 1000) + "." +
                                               std::to_string(waited % 1000 / 100) + " s: " + e.what(),
                                           e.wait_ms);
            }
            auto pause = std::chrono::milliseconds(e.wait_ms);
            if (settle.sleep)
                settle.sleep(pause, e.what());
            else
                sleep_unless_stopped(pause, settle.stop);
        }
    }
}

void sleep_unless_stopped(std::chrono::milliseconds ms, const std::atomic<bool>* stop) {
    auto until = std::chrono::steady_clock::now() + ms;
    for (auto left = ms; left.count() > 0 && !(stop && stop->load());
         left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()))
        std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
}

std::string position_identity(const SourceConfig& config) {
    // Not the conninfo: a moved server or a rotated password is still the same data. The
    // layout is stored in journals: changing it makes every incremental job start over.
    const auto* sql = config.sql();
    std::string id = std::string(config.type()) + "\n" + config.path() + "\n" + (sql ? sql->table : "") + "\n" +
                     (sql ? sql->query : "");
    if (const auto* inc = config.incremental()) id += "\n" + inc->column + "\n" + inc->key;
    return id;
}

}  // namespace prefsync::connectors
