#include <cstdio>
#include <string>

#include "config/config.hpp"
#include "connectors/open_source.hpp"
#include "connectors/reject_file.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/base/json_text.hpp"

namespace prefsync::cli {
using base::append_json_string;

// Output: one JSON line per mapped row, {"row","identity","body"}; rejected rows are logged
// and go to the reject file; a {"summary":...} line ends the output, so stdout stays
// valid JSON Lines for jq and friends.
int cmd_dry_run(const DryRunOptions& options) {
    auto loaded = load_for_job(options.config_path, options.job);
    if (!loaded.ok()) return loaded.exit_code;
    const auto* job = loaded.job;
    const auto& log = base::logger();
    base::LogScope log_scope(job->name);

    std::size_t read = 0, mapped = 0, rejected = 0;
    try {
        connectors::SettleWait settle{.check = true, .wait = true, .stop = nullptr, .now = {}, .sleep = {}};
        settle.sleep = [&](std::chrono::milliseconds ms, const std::string& why) {
            log.info("Waiting for the source to settle", {{"wait_ms", ms.count()}, {"reason", why}});
            connectors::sleep_unless_stopped(ms, nullptr);
        };
        auto source = connectors::open_source(job->source, std::nullopt, settle);
        auto mapper = mapping::Mapper::compile(*job, source->columns());
        connectors::RejectFile rejects_out(job->source.reject_file, job->name);
        std::vector<connectors::Row> rows;
        std::string out;
        auto reject = [&](const connectors::Row& row, const std::string& reason) {
            ++rejected;
            log.warn("Row rejected", {{"origin", row.origin}, {"reason", reason}});
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
        if (auto warning = source->end_warning(); !warning.empty()) log.warn(warning);
        if (rejected > 0) log.warn("Rows rejected", {{"rejected", rejected}, {"reject_file", rejects_out.path()}});
    } catch (const config::ConfigError& e) {
        for (const auto& d : e.diagnostics()) log.error(d.to_string());
        if (e.diagnostics().empty()) log.error(e.what());
        return kUsage;
    } catch (const connectors::SourceChangedError& e) {
        // Still being written, or changed while read: likely whole once its writer is done.
        log.error("jobs." + job->name + ".source: " + e.what());
        return kInterrupted;
    } catch (const connectors::SourceError& e) {
        log.error("jobs." + job->name + ".source: " + e.what());
        return kFatal;
    }
    std::printf("{\"summary\":{\"job\":");
    std::string name;
    append_json_string(name, job->name);
    std::printf("%s,\"read\":%zu,\"mapped\":%zu,\"rejected\":%zu}}\n", name.c_str(), read, mapped, rejected);
    std::fflush(stdout);
    return rejected > 0 ? kPartial : kOk;
}

}  // namespace prefsync::cli
