#include <cstdio>
#include <string>

#include "config/config.hpp"
#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::cli {
using base::append_json_string;

// Output: one JSON line per mapped row, {"row","identity","body"}; rejected rows go to
// stderr and the reject file; a {"summary":...} line ends the output, so stdout stays
// valid JSON Lines for jq and friends.
int cmd_dry_run(const DryRunOptions& options) {
    config::Config config;
    try {
        config = config::load_config(options.config_path);
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    }
    for (auto& w : config.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const auto* job = config.find_job(options.job);
    if (!job) {
        std::string names;
        for (auto& j : config.jobs) names += (names.empty() ? "" : ", ") + j.name;
        std::fprintf(stderr, "error: %s: no job named \"%s\" (jobs: %s)\n",
                     options.config_path.c_str(), options.job.c_str(), names.c_str());
        return kUsage;
    }

    std::size_t read = 0, mapped = 0, rejected = 0;
    try {
        auto source = connectors::open_source(job->source);
        auto mapper = mapping::Mapper::compile(*job, source->columns());
        connectors::RejectFile rejects_out(job->source.reject_file, job->name);
        std::vector<connectors::Row> rows;
        std::string out;
        auto reject = [&](const connectors::Row& row, const std::string& reason) {
            ++rejected;
            std::fprintf(stderr, "rejected %s: %s\n", row.origin.c_str(), reason.c_str());
            rejects_out.write(row.origin, reason, row.raw);
        };
        auto limit = options.limit < 0 ? SIZE_MAX : static_cast<std::size_t>(options.limit);
        while (read < limit && source->next_batch(rows, std::min<std::size_t>(1024, limit - read))) {
            out.clear();
            for (const auto& row : rows) {
                ++read;
                if (row.rejected()) {
                    reject(row, row.error);
                    continue;
                }
                auto result = mapper.map(row);
                if (auto* err = std::get_if<mapping::RowError>(&result)) {
                    reject(row, err->key_path + ": " + err->message);
                    continue;
                }
                const auto& m = std::get<mapping::MappedRow>(result);
                ++mapped;
                out += "{\"row\":";
                append_json_string(out, row.origin);
                out += ",\"identity\":";
                out += m.identity.to_json();
                out += ",\"body\":";
                out += m.body.empty() ? "null" : m.body;
                out += "}\n";
            }
            std::fwrite(out.data(), 1, out.size(), stdout);
        }
        rejects_out.flush();
        if (rejected > 0)
            std::fprintf(stderr, "%zu rejected row%s written to %s\n", rejected,
                         rejected == 1 ? "" : "s", rejects_out.path().c_str());
    } catch (const config::ConfigError& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return kUsage;
    } catch (const connectors::SourceError& e) {
        std::fprintf(stderr, "error: jobs.%s.source: %s\n", job->name.c_str(), e.what());
        return kFatal;
    }
    std::printf("{\"summary\":{\"job\":");
    std::string name;
    append_json_string(name, job->name);
    std::printf("%s,\"read\":%zu,\"mapped\":%zu,\"rejected\":%zu}}\n", name.c_str(), read, mapped,
                rejected);
    std::fflush(stdout);
    return rejected > 0 ? kPartial : kOk;
}

}  // namespace prefsync::cli
