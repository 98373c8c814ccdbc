#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"
#include "connectors/open_source.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/init/starter_config.hpp"

namespace prefsync::cli {
namespace {

namespace fs = std::filesystem;

bool valid_job_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    });
}

bool valid_env_name(std::string_view name) {
    return !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
           std::all_of(name.begin(), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// A job name from the file or table: "Customer Export (2024).csv" → "Customer-Export-2024".
std::string job_name_from(std::string_view text) {
    std::string out;
    for (char c : text) {
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        if (ok)
            out += c;
        else if (!out.empty() && out.back() != '-')
            out += '-';
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out.empty() ? "sync" : out;
}

// A libpq conninfo (keyword form or URI) that carries a password, which init would copy into
// the file.
bool conninfo_has_password(const std::string& conninfo) {
    if (conninfo.find("password") != std::string::npos) return true;
    auto scheme = conninfo.find("://");
    if (scheme == std::string::npos) return false;
    auto at = conninfo.find('@', scheme + 3);
    auto colon = conninfo.find(':', scheme + 3);
    return at != std::string::npos && colon < at;
}

// The delimiter of a CSV file whose first line has no comma but semicolons, tabs or pipes.
char sniff_delimiter(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string line;
    std::getline(in, line);
    bool quoted = false;
    std::size_t comma = 0, semicolon = 0, tab = 0, pipe = 0;
    for (char c : line) {
        if (c == '"') quoted = !quoted;
        if (quoted) continue;
        comma += c == ',';
        semicolon += c == ';';
        tab += c == '\t';
        pipe += c == '|';
    }
    if (comma > 0 || std::max({semicolon, tab, pipe}) == 0) return ',';
    if (semicolon >= tab && semicolon >= pipe) return ';';
    return tab >= pipe ? '\t' : '|';
}

// How the config names `path`: relative to the config's directory when it lies below it (the
// config reader resolves relative paths against its own directory), else absolute.
std::string path_for_config(const std::string& path, const fs::path& config_dir) {
    auto absolute = fs::absolute(path).lexically_normal();
    auto relative = absolute.lexically_relative(config_dir);
    if (!relative.empty() && *relative.begin() != "..") return relative.generic_string();
    return absolute.string();
}

int usage_error(const std::string& message) {
    std::fprintf(stderr, "error: init: %s\n", message.c_str());
    return kUsage;
}

// Creates `path` only if it does not exist (O_EXCL: no window in which another writer's file
// is overwritten); with `replace`, writes a temporary file and renames it over the old one.
bool write_file(const std::string& path, const std::string& text, bool replace, std::string& error) {
    std::string target = replace ? path + ".init-tmp" : path;
    int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (replace ? O_TRUNC : O_EXCL), 0644);
    if (fd < 0) {
        error = std::strerror(errno);
        return false;
    }
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        done += static_cast<std::size_t>(n);
    }
    bool ok = done == text.size() && ::fsync(fd) == 0;
    if (!ok) error = std::strerror(errno);
    ok &= ::close(fd) == 0;
    if (ok && replace && std::rename(target.c_str(), path.c_str()) != 0) {
        error = std::strerror(errno);
        ok = false;
    }
    if (!ok) std::remove(target.c_str());
    return ok;
}

}  // namespace

// Reads the source's columns and first rows, writes a starter config (init/starter_config.hpp),
// and says on stderr what it guessed: stdout carries only the YAML (with -o -).
int cmd_init(const InitOptions& options) {
    int sources = !options.csv.empty() + !options.sqlite.empty() + !options.postgres.empty();
    if (sources != 1)
        return usage_error("give one source: --csv FILE, --sqlite DB --table T or --postgres CONNINFO --table T");
    bool sql = options.csv.empty();
    if (sql && options.table.empty()) return usage_error("--table is required with --sqlite and --postgres");
    if (!sql && !options.table.empty()) return usage_error("--table goes with --sqlite or --postgres, not --csv");
    if (!options.job.empty() && !valid_job_name(options.job))
        return usage_error("--job \"" + options.job + "\": job names use letters, digits, - and _");
    if (!valid_env_name(options.starter.token_env))
        return usage_error("--token-env \"" + options.starter.token_env + "\" is not an environment variable name");
    if (!options.password_env.empty() && !valid_env_name(options.password_env))
        return usage_error("--password-env \"" + options.password_env + "\" is not an environment variable name");
    if (!options.password_env.empty() && options.postgres.empty())
        return usage_error("--password-env goes with --postgres");
    if (!options.postgres.empty() && conninfo_has_password(options.postgres))
        return usage_error(
            "the conninfo holds a password, which would be written into the config; put it in an "
            "environment variable and give its name with --password-env (or use ~/.pgpass)");
    char delimiter = ',';
    if (!options.delimiter.empty()) {
        if (options.csv.empty()) return usage_error("--delimiter goes with --csv");
        if (options.delimiter == "\\t" || options.delimiter == "tab")
            delimiter = '\t';
        else if (options.delimiter.size() == 1)
            delimiter = options.delimiter[0];
        else
            return usage_error("--delimiter: one character (or \\t)");
    } else if (!options.csv.empty()) {
        delimiter = sniff_delimiter(options.csv);
    }

    const bool to_stdout = options.output == "-";
    const std::string output = options.output.empty() ? "prefsync.yaml" : options.output;
    if (!to_stdout && !options.force && fs::exists(output))
        return usage_error(output + " exists; not overwriting it without --force");
    const fs::path config_dir = to_stdout ? fs::current_path() : fs::absolute(output).parent_path();

    config::SourceConfig source;
    source.key_path = "source";
    init::StarterSource starter;
    starter.table = options.table;
    if (!options.csv.empty()) {
        starter.type = "csv";
        connectors::CsvSourceConfig csv;
        csv.path = options.csv;
        csv.delimiter = starter.delimiter = delimiter;
        source.settings = csv;
        starter.path = path_for_config(options.csv, config_dir);
        starter.description = "csv " + options.csv;
    } else if (!options.sqlite.empty()) {
        starter.type = "sqlite";
        connectors::SqliteSourceConfig sqlite;
        sqlite.path = options.sqlite;
        sqlite.table = options.table;
        source.settings = sqlite;
        starter.path = path_for_config(options.sqlite, config_dir);
        starter.description = "sqlite " + options.sqlite + " table " + options.table;
    } else {
        starter.type = "postgres";
        connectors::PostgresSourceConfig pg;
        pg.connection.conninfo = starter.conninfo = options.postgres;
        pg.table = options.table;
        starter.password_env = options.password_env;
        if (!options.password_env.empty())
            pg.connection.password = {config::TokenSpec::Kind::Env, options.password_env, {}, "--password-env"};
        source.settings = pg;
        starter.description = "postgres table " + options.table;
    }

    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::size_t unreadable = 0;
    std::string first_problem;
    try {
        auto opened = connectors::open_source(source);
        columns = opened->columns();
        std::vector<connectors::Row> batch;
        while (rows.size() + unreadable < options.sample &&
               opened->next_batch(batch, std::min<std::size_t>(1024, options.sample - rows.size() - unreadable))) {
            for (auto& row : batch) {
                if (row.rejected()) {
                    if (unreadable++ == 0) first_problem = row.origin + ": " + row.error;
                    continue;
                }
                rows.push_back(std::move(row.values));
            }
        }
    } catch (const connectors::SourceError& e) {
        std::fprintf(stderr, "error: init: %s\n", e.what());
        return kFatal;
    } catch (const config::ConfigError& e) {
        return usage_error(e.what());
    }

    init::StarterOptions starter_options = options.starter;
    starter_options.job = !options.job.empty() ? options.job
                          : sql                ? job_name_from(options.table.substr(options.table.rfind('.') + 1))
                                               : job_name_from(fs::path(options.csv).stem().string());
    starter_options.config_name = to_stdout ? "prefsync.yaml" : output;
    init::StarterConfig config;
    try {
        config = init::make_starter_config(starter_options, starter, columns, rows);
    } catch (const init::StarterError& e) {
        return usage_error(e.what());
    }

    if (to_stdout) {
        std::fwrite(config.yaml.data(), 1, config.yaml.size(), stdout);
        std::fflush(stdout);
    } else {
        std::string error;
        if (!write_file(output, config.yaml, options.force, error)) {
            if (!options.force && error == std::strerror(EEXIST))
                return usage_error(output + " exists; not overwriting it without --force");
            std::fprintf(stderr, "error: init: cannot write %s: %s\n", output.c_str(), error.c_str());
            return kFatal;
        }
    }
    std::fprintf(stderr, "%s %s: job %s from %s (%zu columns, %zu rows sampled)\n", to_stdout ? "printed" : "wrote",
                 to_stdout ? "the config" : output.c_str(), starter_options.job.c_str(), starter.description.c_str(),
                 columns.size(), rows.size());
    for (auto& g : config.guesses) std::fprintf(stderr, "  %s\n", g.c_str());
    if (unreadable > 0)
        std::fprintf(stderr,
                     "warning: %zu of the sampled rows cannot be read and were not looked at (first: %s); "
                     "sync and dry-run will reject them\n",
                     unreadable, first_problem.c_str());
    for (auto& w : config.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::string name = to_stdout ? "prefsync.yaml" : output;
    std::fprintf(stderr, "next: prefsync -c %s check-config && prefsync -c %s dry-run %s --limit 5\n", name.c_str(),
                 name.c_str(), starter_options.job.c_str());
    return kOk;
}

}  // namespace prefsync::cli
