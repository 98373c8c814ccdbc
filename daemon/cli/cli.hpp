#pragma once
// The prefsync command line (docs/cli.md). One file per subcommand; this one wires them.
//
// Exit codes: 0 everything done · 1 usage or config error · 2 finished, but some rows were
// rejected or failed · 3 aborted on a fatal condition, nothing lost · 4 interrupted.
#include <optional>
#include <string>

#include "daemon/init/starter_config.hpp"

namespace prefsync::cli {

enum ExitCode : int { kOk = 0, kUsage = 1, kPartial = 2, kFatal = 3, kInterrupted = 4 };

int run(int argc, char** argv);

// Default config path: $PREFSYNC_CONFIG, else /etc/prefsync/prefsync.yaml.
std::string default_config_path();

struct DryRunOptions {
    std::string config_path;
    std::string job;
    long long limit = -1;  // rows to map; -1: all
};
struct EmulatorOptions {
    std::string listen = "127.0.0.1:8080";
    std::string client_id = "12345";
    std::string token = "emulator-token";
    std::string state_file;
    std::string processing_delay = "500ms";
    int threads = 2;
    std::size_t body_limit = 1u << 20;
    std::string request_log;
    bool oauth = false;
    long long token_ttl_s = 3600;
    long long latency_ms = 0, jitter_ms = 0, slow_ms = 0, outage_ms = 0;
    double rate_limit = 0, error_429 = 0, error_503 = 0, reset = 0, ambiguous = 0;
    int retry_after = 1;
    int error_429_retry_after = 0;  // 0: no Retry-After on the random 429s
    int error_503_retry_after = 0;  // 0: no Retry-After on the random 503s
    std::string outage_mode = "reset";
    int outage_retry_after = 0;
    bool accept_duplicates = false;
    bool stamp_elements = false;
    int patch_test_status = 409;
    int ambiguous_status = 0;  // 0: an ambiguous write is left unanswered
    unsigned long long seed = 1;
};

struct PushCommand {
    enum class Kind { Sync, Backfill, Retry } kind = Kind::Sync;
    std::string config_path, job;
    bool resume = false;
    std::optional<int> status;       // retry: only failures with this HTTP status
    std::string report;              // --report FILE.json
    bool allow_mass_delete = false;  // remove missing profiles even beyond max_missing, this once
    bool new_target = false;         // backfill: forget another API's state of the job first
};
// `plan`: what a sync would send; `explain`: one identity's story.
struct PlanCommand {
    std::string config_path, job;
    bool json = false, allow_mass_delete = false;
};
struct ExplainCommand {
    std::string config_path, job, id;
    bool json = false;
};
struct StatusCommand {
    std::string config_path, job;
    bool json = false;
};
struct VerifyCommand {
    std::string config_path, job;
    std::string wait = "0s";  // keep polling still-pending profiles this long
};
struct FailuresCommand {
    std::string config_path, job, csv;
};

struct PullCommand {
    std::string config_path;
    std::string job;
    std::string report;  // --report FILE.json
};

// `prefsync init`: a starter config guessed from a source (daemon/init/starter_config.hpp).
struct InitOptions {
    std::string csv, sqlite, postgres, table;  // exactly one source; table with the SQL ones
    std::string output;                        // "" → prefsync.yaml; "-" → stdout
    bool force = false;                        // replace an existing output file
    std::string job;                           // "" → from the file or table name
    std::string password_env;                  // postgres
    std::string delimiter;                     // csv; "" → sniffed from the header line
    std::size_t sample = 1000;                 // rows read to guess from
    init::StarterOptions starter;              // api settings, identity overrides, --custom-fields
};

int cmd_init(const InitOptions& options);
int cmd_pull(const PullCommand& command);
int cmd_daemon(const std::string& config_path);
int cmd_check_config(const std::string& config_path, bool require_token);
int cmd_config_schema(bool markdown);
int cmd_push(const PushCommand& command);
int cmd_status(const StatusCommand& command);
int cmd_failures(const FailuresCommand& command);
int cmd_verify(const VerifyCommand& command);
int cmd_emulator(const EmulatorOptions& options);
int cmd_dry_run(const DryRunOptions& options);
int cmd_plan(const PlanCommand& command);
int cmd_explain(const ExplainCommand& command);

}  // namespace prefsync::cli
