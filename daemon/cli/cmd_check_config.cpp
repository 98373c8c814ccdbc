#include <cstdio>

#include "config/config.hpp"
#include "connectors/open_source.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/pull/flattener.hpp"

#include <algorithm>

namespace prefsync::cli {

// Validates the file, then what can be checked without the network: each job's mapping names
// columns its source really has (when the source is there: a nightly drop may legitimately be
// missing at check time, which is a warning), and the token. The token is only an error with
// --token: the file is usually written and checked by someone who does not hold the secret,
// or outside the unit whose LoadCredential= provides it, and a first run must not fail there.
int cmd_check_config(const std::string& config_path, bool require_token) {
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
    try {
        auto config = config::load_config(config_path);
        warnings = config.warnings;
        try {
            config::resolve_token(config);
        } catch (const config::ConfigError& e) {
            // Saying nowhere where the token comes from is a mistake in the file itself.
            bool file_error = config.api.token.kind == config::TokenSpec::Kind::None;
            for (auto& d : e.diagnostics()) {
                if (require_token || file_error)
                    errors.push_back(d.to_string());
                else
                    warnings.push_back(d.to_string() +
                                       "; the token was not checked (run \"prefsync check-config --token\" "
                                       "where the token is available to check it)");
            }
        }
        for (const auto& job : config.jobs) {
            try {
                if (job.pull) {
                    // Pull jobs: the sink's column paths; the identity source is checked below.
                    if (job.sink && !job.sink->columns().empty()) pull::Flattener::compile(*job.sink);
                    if (!job.has_source) continue;
                    auto source = connectors::open_source(job.source);
                    const auto& id = job.identity;
                    const auto& name = id.by_profile_id() ? id.profile_id_column : id.column;
                    const auto& cols = source->columns();
                    if (std::find(cols.begin(), cols.end(), name) == cols.end())
                        errors.push_back(id.key_path + ": " + source->describe() + " has no column \"" + name + "\"");
                    continue;
                }
                auto source = connectors::open_source(job.source);
                mapping::Mapper::compile(job, source->columns());
            } catch (const connectors::SourceHeaderError& e) {
                errors.push_back("jobs." + job.name + ".source: " + e.what());
            } catch (const connectors::SourceError& e) {
                warnings.push_back("jobs." + job.name + ".source: " + e.what() + " (columns not checked)");
            } catch (const config::ConfigError& e) {
                for (auto& d : e.diagnostics()) errors.push_back(d.to_string());
            }
        }
    } catch (const config::ConfigError& e) {
        for (auto& d : e.diagnostics()) errors.push_back(d.to_string());
    }
    // The default logger (text): check-config's findings are its report, read by whoever runs
    // it, whatever `log.format` the file asks the other commands for.
    for (auto& w : warnings) base::logger().warn(w);
    for (auto& e : errors) base::logger().error(e);
    if (!errors.empty()) {
        std::fprintf(stderr, "%s: %zu error%s\n", config_path.c_str(), errors.size(), errors.size() == 1 ? "" : "s");
        return kUsage;
    }
    std::printf("%s: OK\n", config_path.c_str());
    return kOk;
}

}  // namespace prefsync::cli
