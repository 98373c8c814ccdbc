#include "daemon/cli/cli.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>

#ifndef PREFSYNC_VERSION
#define PREFSYNC_VERSION "dev"
#endif

namespace prefsync::cli {

std::string default_config_path() {
    if (const char* env = std::getenv("PREFSYNC_CONFIG"); env && *env) return env;
    return "/etc/prefsync/prefsync.yaml";
}

int run(int argc, char** argv) {
    CLI::App app{"prefsync: bulk synchronisation with the MyPreferences Profiles v2 API"};
    app.set_version_flag("--version", std::string("prefsync ") + PREFSYNC_VERSION);
    app.require_subcommand(1);
    std::string config_path = default_config_path();
    app.add_option("-c,--config", config_path,
                   "config file (default: $PREFSYNC_CONFIG, else /etc/prefsync/prefsync.yaml)");

    auto* check = app.add_subcommand("check-config", "validate the config and exit (0 OK, 1 errors)");

    DryRunOptions dry;
    auto* dry_run = app.add_subcommand("dry-run", "map the job's rows and print the bodies; send nothing");
    dry_run->add_option("JOB", dry.job, "job name")->required();
    dry_run->add_option("--limit", dry.limit, "map at most N rows")->check(CLI::NonNegativeNumber);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kOk : kUsage;
    }
    if (check->parsed()) return cmd_check_config(config_path);
    if (dry_run->parsed()) {
        dry.config_path = config_path;
        return cmd_dry_run(dry);
    }
    return kUsage;
}

}  // namespace prefsync::cli
