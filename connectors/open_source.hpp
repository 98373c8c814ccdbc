#pragma once
// The one place that turns a job's `source:` into a Source; new connectors register here
// (and in SourceSettings, connectors/source_config.hpp).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "connectors/source.hpp"
#include "connectors/source_config.hpp"

namespace prefsync::connectors {

// How a run meets a file source modified less than its `settle` ago (csv_source.hpp): the
// commands that read it to its end check; those that only read its header (check-config,
// init) do not (the default).
struct SettleWait {
    bool check = false;
    // Wait for the file to settle, then open it, giving up (SourceUnsettledError) once it has
    // not after kMostSettleWait past its `settle`: one-shot commands. false: refuse at once
    // (the daemon, which reads it again later rather than hold its other jobs meanwhile).
    bool wait = false;
    const std::atomic<bool>* stop = nullptr;  // a signal: the wait ends (SourceUnsettledError)
    // The wall clock, ms since the epoch (file times are wall-clock). Tests pass their own.
    std::function<std::int64_t()> now;
    // Sleeps `ms` (told why: to log it), cut short by `stop`. Tests pass their own.
    std::function<void(std::chrono::milliseconds ms, const std::string& why)> sleep;
};
inline constexpr std::chrono::milliseconds kMostSettleWait = std::chrono::minutes(1);

// Opens the source (reads a CSV header, connects to a database...). An incremental source
// given `since` reads only rows at or past it (minus the configured overlap).
// Throws SourceError, or config::ConfigError when a configured password cannot be read.
std::unique_ptr<Source> open_source(const SourceConfig& config, const std::optional<Position>& since = std::nullopt,
                                    const SettleWait& settle = {});

// Sleeps `ms` in short steps, returning early once `*stop` is set (null: never).
void sleep_unless_stopped(std::chrono::milliseconds ms, const std::atomic<bool>* stop);

// What a stored position belongs to: the source's type, database file, table or query and
// incremental columns. A position stored under another identity is not used (the job's
// source changed, so it starts over; change detection keeps that from re-sending).
std::string position_identity(const SourceConfig& config);

}  // namespace prefsync::connectors
