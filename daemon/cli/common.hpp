#pragma once
// What the subcommands share: loading the config and finding a job (with the messages and
// exit codes every command gives for them), the user agent, and run reports.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "daemon/base/clock.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/journal/journal.hpp"

#ifndef PREFSYNC_VERSION
#define PREFSYNC_VERSION "dev"
#endif

namespace prefsync::cli {

using base::now_ms;

struct LoadedJob {
    std::optional<config::Config> config;
    const config::JobConfig* job = nullptr;
    int exit_code = 0;
    std::string error;  // what was logged when not ok(), on one line: for a run report
    bool ok() const { return config && (job || exit_code == 0); }
};

// Loads the config, sets up logging from its `log` section, logs its warnings and, if `job`
// is not empty, finds the job.
LoadedJob load_for_job(const std::string& config_path, const std::string& job);

// Runs `read` (journal::Journal& → a result) over the journal opened read-only, as every
// command that only looks does: it needs no write access and changes nothing. A read that a
// writer overlapped (journal::JournalChanged) is done again: the journal has a writer then,
// whose locks the next read shares. `read` must not print: what it returns is printed.
// One read transaction: `status` beside a running daemon shows one commit's counts and runs,
// not a mix of two.
template <class Read>
auto read_journal(const std::string& path, Read read) {
    for (int attempt = 1;; ++attempt) {
        try {
            journal::Journal journal(path, journal::Access::read_only);
            if (journal.db.nothing_recorded() && attempt == 1)
                base::logger().warn(
                    "Nothing is recorded in the journal (no such file yet, or an empty one): check "
                    "journal.path if runs were expected",
                    {{"path", path}});
            journal.db.exec("BEGIN");
            auto result = read(journal);
            journal.db.exec("COMMIT");
            journal.db.confirm_unchanged();
            return result;
        } catch (const journal::JournalChanged&) {
            if (attempt == 3) throw;
        }
    }
}

// printf into a string.
[[gnu::format(printf, 2, 3)]] void appendf(std::string& out, const char* format, ...);

// "prefsync/0.2.0": what every request says it comes from.
std::string user_agent();

// A flat JSON object, for run reports a scheduler or alerting reads.
class JsonFields {
public:
    JsonFields& add(std::string_view key, std::string_view text);
    JsonFields& add(std::string_view key, const char* text) { return add(key, std::string_view(text)); }
    JsonFields& add(std::string_view key, std::int64_t n);
    JsonFields& add(std::string_view key, int n) { return add(key, static_cast<std::int64_t>(n)); }
    JsonFields& add(std::string_view key, double x);
    JsonFields& add(std::string_view key, bool b);
    std::string text() const;

private:
    std::vector<std::pair<std::string, std::string>> fields_;  // key, JSON value
};

// What every run report starts with: which run, how it ended (`error`: why it stopped
// early, "" if it did not) and when. The command's counts follow.
JsonFields run_report_fields(const std::string& job, const std::string& kind, std::int64_t run_id, int exit_code,
                             const std::string& error, double seconds);

// Writes a run report atomically (temporary file renamed), 0600, never through a symlink;
// a report that cannot be written is a warning on stderr, not a failure of the run (the
// exit code stays the run's).
void write_report(const std::string& path, const JsonFields& fields);

}  // namespace prefsync::cli
