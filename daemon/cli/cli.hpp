#pragma once
// The prefsync command line (DESIGN.md §4). One file per subcommand; this one wires them.
//
// Exit codes: 0 everything done · 1 usage or config error · 2 finished, but some rows were
// rejected or failed · 3 aborted on a fatal condition, nothing lost · 4 interrupted.
#include <string>

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
int cmd_check_config(const std::string& config_path);
int cmd_dry_run(const DryRunOptions& options);

}  // namespace prefsync::cli
