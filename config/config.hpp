#pragma once
// prefsync's configuration: YAML → validated Config.
//
// Design constraints:
// - Defaults, then parse, then validate; every problem is reported with file:line:column
//   and the key path, all at once.
// - Relative paths in the file are resolved against the config file's directory, so a
//   config works the same whatever the working directory of the process.
// - A job's `source:` and a pull job's `sink:` belong to their connector: config chooses
//   the connector by `type` and holds what it parsed; the connector checks every other key.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/mapping_spec.hpp"
#include "config/yaml/diagnostic.hpp"
#include "config/yaml/env.hpp"
#include "config/yaml/secret.hpp"
#include "config/yaml/units.hpp"
#include "connectors/sink_config.hpp"
#include "connectors/source_config.hpp"
#include "daemon/base/logger.hpp"

namespace prefsync::config {

// OAuth client-credentials mode: the configured secret (token_env/file/credential) is
// exchanged at token_url for bearer tokens, refreshed before they expire, so a long
// backfill outlives any one token.
struct OAuthConfig {
    std::string token_url;  // empty: not OAuth; the token is sent as is
    std::string client_id;  // sent as client_id when set
    Duration refresh_before = std::chrono::seconds(60);
};

struct ApiConfig {
    std::string base_url;
    std::string client_id;
    TokenSpec token;
    OAuthConfig oauth;
};

struct HttpConfig {
    int connections = 16;
    Duration connect_timeout = std::chrono::seconds(10);
    Duration request_timeout = std::chrono::seconds(30);
    Duration idle_timeout = std::chrono::seconds(90);
    std::size_t max_response_bytes = 8u << 20;
    std::string ca_file;
    bool insecure = false;
};

struct RateLimitConfig {
    double requests_per_second = 50;
    int burst = 50;
    std::int64_t daily_quota = 0;  // 0: no quota
    bool adaptive = true;
    int max_in_flight = 0;  // 0: http.connections
};

struct RetryConfig {
    int max_attempts = 8;
    Duration base_delay = std::chrono::milliseconds(500);
    Duration max_delay = std::chrono::minutes(5);
    Duration max_throttled = std::chrono::hours(1);  // only 429s this long: the run stops (exit 4)
};

struct JournalConfig {
    std::string path = "/var/lib/prefsync/journal.db";
    int retain_days = 30;
};

using LogConfig = base::LogSettings;  // log.level, log.format, log.bodies

// mirror: like upsert for a new identity; a changed one is sent as a guarded JSON Patch over
// the fields the mapping owns, so the profile converges on the source (clears included).
enum class Mode { Create, Update, Upsert, Replace, Delete, Archive, Mirror };
std::string_view to_string(Mode mode);

// mirror: a contact element (email, phone, address, ...) no longer in the source.
enum class OnRemoved { Deactivate, Remove };
// A profile whose row left a full-snapshot source (or whose deleted_column is set).
enum class OnMissing { Ignore, Deactivate, Archive, Delete };
std::string_view to_string(OnMissing action);

// The most missing rows a run acts on without --allow-mass-delete: a share of the
// identities known to the job, or a count.
struct MissingLimit {
    bool percent = true;
    double value = 5;
    std::string text = "5%";  // as configured, for messages
};

// A job's source and a pull job's sink: config chooses the type by `type:` and the type's
// connector parses the rest of the section (connectors/*/*_config.hpp).
using SourceConfig = connectors::SourceConfig;
using SinkConfig = connectors::SinkConfig;

// The search endpoints (S1–S14), by their path under /{clientId}/Profile/.
struct SearchSpec {
    std::string endpoint;  // "Email", "CustomFields/SelectList", "Groups/Primary/123", ...
    std::vector<std::pair<std::string, std::string>> params;  // query parameters, in order
    SourcePos pos;
};

enum class HistoryKind { Consents, ContactElements, CustomFields, Preferences, StandardFields };
std::string_view to_string(HistoryKind kind);

// A pull job: identities from the job's source (R1/R2, or history H1–H5 per identity),
// and/or searches; results de-duplicated by ProfileId into the job's sink.
struct PullConfig {
    SourcePos pos;
    std::vector<SearchSpec> searches;
    std::optional<HistoryKind> history;
    std::string filter_id;  // history Preferences
    bool implied = false;
    bool match_inactive = false;
    // A push job whose source and identity this pull reads, and whose mapping the pulled
    // profiles are compared with (the round-trip reconciliation report).
    std::string reconcile;
};

struct JobConfig {
    std::string name;
    SourcePos pos;
    Mode mode = Mode::Upsert;
    std::string schedule;            // cron (5 fields), @hourly/@daily/@weekly, or "every 15m"
    std::optional<PullConfig> pull;  // set: a pull job (source/identity optional, no mapping)
    bool has_source = false;
    SourceConfig source;
    IdentitySpec identity;
    ObjectSpec mapping;  // the Profile body (or the archive body in archive mode)
    std::optional<SinkConfig> sink;
    OnRemoved on_removed = OnRemoved::Deactivate;
    OnMissing on_missing = OnMissing::Ignore;
    MissingLimit max_missing;
    std::string deleted_column;  // a soft-delete column: a set value means the row is gone
};

// `prefsync daemon`: how scheduled runs happen and how the service is observed.
struct DaemonConfig {
    std::string timezone = "UTC";                          // schedules are read in this zone (an IANA name)
    bool catch_up = false;                                 // a run missed while down runs once at start
    Duration shutdown_timeout = std::chrono::seconds(30);  // SIGTERM: drain at most this long
    std::string metrics_listen;                            // "127.0.0.1:9464": /metrics and /healthz; empty: off
    // Read 202-accepted updates back until "Complete" (verify), at most once per interval
    // per job: the time from 202 to Complete becomes a metric. Costs one GET per update.
    bool verify = false;
    Duration verify_interval = std::chrono::minutes(1);
};

struct Config {
    std::string file;  // the config file, as given
    ApiConfig api;
    HttpConfig http;
    RateLimitConfig rate_limit;
    RetryConfig retry;
    JournalConfig journal;
    LogConfig log;
    DaemonConfig daemon;
    std::vector<JobConfig> jobs;        // in file order
    std::vector<std::string> warnings;  // things that work but deserve attention

    const JobConfig* find_job(std::string_view name) const;
};

// Throws ConfigError with every problem found.
Config parse_config(std::string_view yaml_text, const std::string& file_name, const EnvLookup& env = process_env());
Config load_config(const std::string& path, const EnvLookup& env = process_env());

// The API token, read from where the config says. Throws ConfigError if it cannot be read.
std::string resolve_token(const Config& config, const EnvLookup& env = process_env());
// Where a job's source.reject_file is when it is not set: <journal dir>/rejects/<job>.rejects.txt.
std::string default_reject_file(const std::string& journal_path, const std::string& job);
// A schedule as accepted by jobs.*.schedule; returns an error message or "".
std::string check_schedule(std::string_view schedule);

}  // namespace prefsync::config
