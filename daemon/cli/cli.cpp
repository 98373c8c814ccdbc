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
    auto* config_option = app.add_option("-c,--config", config_path,
                                         "config file (default: $PREFSYNC_CONFIG, else /etc/prefsync/prefsync.yaml)");

    auto* check = app.add_subcommand("check-config", "validate the config and exit (0 OK, 1 errors)");
    bool check_token = false;
    check->add_flag("--token", check_token, "also require the API token to be readable (an error, not a warning)");

    auto* schema = app.add_subcommand("config-schema", "print the JSON Schema of the config file (for editors and CI)");
    bool schema_markdown = false;
    schema->add_flag("--markdown", schema_markdown, "print the key reference tables of config/README.md instead");

    DryRunOptions dry;
    auto* dry_run = app.add_subcommand("dry-run", "map the job's rows and print the bodies; send nothing");
    dry_run->add_option("JOB", dry.job, "job name")->required();
    dry_run->add_option("--limit", dry.limit, "map at most N rows")->check(CLI::NonNegativeNumber);

    PushCommand sync_cmd, backfill_cmd, retry_cmd;
    backfill_cmd.kind = PushCommand::Kind::Backfill;
    retry_cmd.kind = PushCommand::Kind::Retry;
    auto* sync = app.add_subcommand("sync", "push the job's changed rows (incremental)");
    sync->add_option("JOB", sync_cmd.job, "job name")->required();
    sync->add_option("--report", sync_cmd.report, "write a JSON run report to FILE");
    sync->add_flag("--allow-mass-delete", sync_cmd.allow_mass_delete,
                   "remove the profiles that left the source even if they are more than max_missing (this run only)");
    auto* backfill = app.add_subcommand("backfill", "push every row of the job, changed or not");
    backfill->add_option("JOB", backfill_cmd.job, "job name")->required();
    backfill->add_option("--report", backfill_cmd.report, "write a JSON run report to FILE");
    backfill->add_flag("--resume", backfill_cmd.resume, "continue a stopped backfill without re-sending finished rows");
    backfill->add_flag("--new-target", backfill_cmd.new_target,
                       "the job now sends to another API (base_url, client_id): forget the old one's state of the "
                       "job first (profile ids, change detection, failures)");
    backfill->add_flag(
        "--allow-mass-delete", backfill_cmd.allow_mass_delete,
        "remove the profiles that left the source even if they are more than max_missing (this run only)");

    PlanCommand plan_cmd;
    auto* plan =
        app.add_subcommand("plan", "show what a sync of the job would send (patches, writes, removals); send nothing");
    plan->add_option("JOB", plan_cmd.job, "job name")->required();
    plan->add_flag("--json", plan_cmd.json, "one JSON line per action, a summary line last");
    plan->add_flag("--allow-mass-delete", plan_cmd.allow_mass_delete, "plan removals even beyond max_missing");
    ExplainCommand explain_cmd;
    auto* explain =
        app.add_subcommand("explain", "one identity: its source rows, last accepted body, pending update and history");
    explain->add_option("JOB", explain_cmd.job, "job name")->required();
    explain->add_option("ID", explain_cmd.id, "the alternate id (or the profile id, for a job by profile id)")
        ->required();
    explain->add_flag("--json", explain_cmd.json, "machine-readable output");
    auto* retry = app.add_subcommand("retry", "re-queue the job's failed updates and send them again");
    retry->add_option("JOB", retry_cmd.job, "job name")->required();
    int retry_status = 0;
    retry->add_option("--status", retry_status, "only failures with this HTTP status");

    PullCommand pull_cmd;
    auto* pull =
        app.add_subcommand("pull", "fetch the job's profiles (by id, alternate id, searches or history) into its sink");
    pull->add_option("JOB", pull_cmd.job, "job name")->required();
    pull->add_option("--report", pull_cmd.report, "write a JSON run report to FILE");

    auto* daemon = app.add_subcommand("daemon", "run scheduled jobs and drain retries (systemd Type=notify service)");

    StatusCommand status_cmd;
    auto* status = app.add_subcommand("status", "journal counts per state and the last runs");
    status->add_option("JOB", status_cmd.job, "job name (default: every job)");
    status->add_flag("--json", status_cmd.json, "machine-readable output");

    FailuresCommand failures_cmd;
    auto* failures = app.add_subcommand("failures", "the job's failed updates: identity, row, status, error");
    failures->add_option("JOB", failures_cmd.job, "job name")->required();
    failures->add_option("--csv", failures_cmd.csv, "write them to a CSV file");

    VerifyCommand verify_cmd;
    auto* verify = app.add_subcommand("verify", "check that 202-accepted updates reached UpdateStatus \"Complete\"");
    verify->add_option("JOB", verify_cmd.job, "job name")->required();
    verify->add_option("--wait", verify_cmd.wait, "keep checking still-pending profiles this long (e.g. 2m)")
        ->capture_default_str();

    InitOptions init_opts;
    auto* init = app.add_subcommand("init", "write a starter config for a CSV file or a table, with a guessed mapping");
    auto* init_csv = init->add_option("--csv", init_opts.csv, "the CSV file to read the header and first rows of");
    auto* init_sqlite = init->add_option("--sqlite", init_opts.sqlite, "a SQLite database (with --table)");
    auto* init_pg =
        init->add_option("--postgres", init_opts.postgres, "a PostgreSQL conninfo without the password (with --table)");
    init_csv->excludes(init_sqlite)->excludes(init_pg);
    init_sqlite->excludes(init_pg);
    init->add_option("--table", init_opts.table, "the table (or schema.table) to read");
    init->add_option("-o,--output", init_opts.output,
                     "the config file to write (default: the -c file, else prefsync.yaml; - for stdout)");
    init->add_flag("--force", init_opts.force, "replace the output file if it exists");
    init->add_option("--job", init_opts.job, "the job's name (default: from the file or table name)");
    init->add_option("--base-url", init_opts.starter.base_url, "api.base_url")->capture_default_str();
    init->add_option("--client-id", init_opts.starter.client_id, "api.client_id, your account id")
        ->capture_default_str();
    init->add_option("--token-env", init_opts.starter.token_env, "the environment variable holding the API token")
        ->capture_default_str();
    init->add_option("--password-env", init_opts.password_env,
                     "postgres: the environment variable holding the password");
    init->add_option("--delimiter", init_opts.delimiter, "csv: the field delimiter (default: from the header line)");
    init->add_option("--id-column", init_opts.starter.id_column, "the identity column (default: guessed)");
    init->add_option("--id-type", init_opts.starter.id_type,
                     "the alternate id type (default: from the identity column's name)");
    init->add_flag("--custom-fields", init_opts.starter.custom_fields,
                   "send unrecognised columns as custom fields instead of commenting them out");
    init->add_option("--sample", init_opts.sample, "rows to read for the guesses")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();

    EmulatorOptions emu;
    auto* emulator = app.add_subcommand("emulator", "serve a local MyPreferences emulator (prints HOST:PORT first)");
    emulator->add_option("--listen", emu.listen, "127.x.x.x:PORT (port 0: any free port)")->capture_default_str();
    emulator->add_option("--client-id", emu.client_id, "the account's clientId")->capture_default_str();
    emulator->add_option("--token", emu.token, "the Authorization token accepted")->capture_default_str();
    emulator->add_option("--state", emu.state_file, "load profiles from FILE at start, save them at exit");
    emulator->add_option("--processing-delay", emu.processing_delay, "time from a 202 to UpdateStatus \"Complete\"")
        ->capture_default_str();
    emulator->add_option("--threads", emu.threads, "I/O threads")->check(CLI::Range(1, 64))->capture_default_str();
    emulator->add_option("--body-limit", emu.body_limit, "largest request body, bytes (413 above)")
        ->capture_default_str();
    emulator->add_option("--request-log", emu.request_log, "append one JSON line per request to FILE");
    emulator->add_flag("--oauth", emu.oauth, "require bearer tokens from POST /oauth/token (client_secret = --token)");
    emulator->add_option("--token-ttl", emu.token_ttl_s, "OAuth token lifetime, seconds")->capture_default_str();
    emulator->add_option("--latency", emu.latency_ms, "fault: added latency, ms");
    emulator->add_option("--jitter", emu.jitter_ms, "fault: random extra latency up to, ms");
    emulator->add_option("--rate-limit", emu.rate_limit, "fault: answer 429 above this many requests/s");
    emulator->add_option("--retry-after", emu.retry_after, "Retry-After seconds sent with 429")->capture_default_str();
    emulator
        ->add_option("--error-429", emu.error_429, "fault: probability of a 429 whatever the rate (1: a quota spent)")
        ->check(CLI::Range(0.0, 1.0));
    emulator
        ->add_option("--429-retry-after", emu.error_429_retry_after,
                     "Retry-After seconds sent with --error-429's 429s (0: none)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    emulator->add_option("--error-503", emu.error_503, "fault: probability of a 503")->check(CLI::Range(0.0, 1.0));
    emulator
        ->add_option("--503-retry-after", emu.error_503_retry_after,
                     "Retry-After seconds sent with --error-503's 503s (0: none)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    emulator->add_option("--reset", emu.reset, "fault: probability of a connection reset")->check(CLI::Range(0.0, 1.0));
    emulator->add_option("--ambiguous", emu.ambiguous, "fault: probability a write is applied but not answered")
        ->check(CLI::Range(0.0, 1.0));
    emulator
        ->add_option("--ambiguous-status", emu.ambiguous_status,
                     "how --ambiguous leaves a write: 0 unanswered, or answered with this 5xx status")
        ->check(CLI::IsMember({0}) | CLI::Range(500, 599))
        ->capture_default_str();
    emulator->add_option("--slow", emu.slow_ms, "fault: delay before answering, ms");
    emulator->add_option("--outage", emu.outage_ms, "fault: refuse every request for the first N ms");
    emulator->add_option("--outage-mode", emu.outage_mode, "how an outage refuses: reset the connection, or answer 503")
        ->check(CLI::IsMember({"reset", "503"}))
        ->capture_default_str();
    emulator
        ->add_option("--outage-retry-after", emu.outage_retry_after,
                     "Retry-After seconds sent with an outage's 503s (0: none)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    emulator->add_flag("--accept-duplicates", emu.accept_duplicates,
                       "a create (W1) with a known alternate id makes a second profile instead of 409");
    emulator->add_flag("--stamp-elements", emu.stamp_elements,
                       "every element a write stores gets the server's own Edited, as the reference's profiles show");
    emulator->add_option("--patch-test-status", emu.patch_test_status, "status of a PATCH whose test operation fails")
        ->check(CLI::IsMember({409, 400}))
        ->capture_default_str();
    emulator->add_option("--seed", emu.seed, "fault randomness seed")->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kOk : kUsage;
    }
    if (check->parsed()) return cmd_check_config(config_path, check_token);
    if (schema->parsed()) return cmd_config_schema(schema_markdown);
    if (init->parsed()) {
        // `prefsync -c FILE init ...` writes FILE, so the next command is the same line with check-config.
        if (init_opts.output.empty() && config_option->count() > 0) init_opts.output = config_path;
        return cmd_init(init_opts);
    }
    if (emulator->parsed()) return cmd_emulator(emu);
    for (auto [sub, cmd] :
         {std::pair{sync, &sync_cmd}, std::pair{backfill, &backfill_cmd}, std::pair{retry, &retry_cmd}}) {
        if (!sub->parsed()) continue;
        cmd->config_path = config_path;
        if (sub == retry && retry_status != 0) cmd->status = retry_status;
        return cmd_push(*cmd);
    }
    if (daemon->parsed()) return cmd_daemon(config_path);
    if (pull->parsed()) {
        pull_cmd.config_path = config_path;
        return cmd_pull(pull_cmd);
    }
    if (status->parsed()) {
        status_cmd.config_path = config_path;
        return cmd_status(status_cmd);
    }
    if (plan->parsed()) {
        plan_cmd.config_path = config_path;
        return cmd_plan(plan_cmd);
    }
    if (explain->parsed()) {
        explain_cmd.config_path = config_path;
        return cmd_explain(explain_cmd);
    }
    if (verify->parsed()) {
        verify_cmd.config_path = config_path;
        return cmd_verify(verify_cmd);
    }
    if (failures->parsed()) {
        failures_cmd.config_path = config_path;
        return cmd_failures(failures_cmd);
    }
    if (dry_run->parsed()) {
        dry.config_path = config_path;
        return cmd_dry_run(dry);
    }
    return kUsage;
}

}  // namespace prefsync::cli
