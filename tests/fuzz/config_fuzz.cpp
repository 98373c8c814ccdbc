// The config loader on any text, then what `check-config` checks without the network: the
// token (from the injected environment), each push job's mapping compiled against columns
// (its own, or the example's), and each pull job's sink paths. A ConfigError is the expected
// answer to bad input; any other exception, a crash or a hang is a finding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"
#include "daemon/mapping/mapper.hpp"
#include "daemon/pull/flattener.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace prefsync;

const std::vector<std::string>& columns() {
    static const auto c = fuzz::example_columns();
    return c;
}

void check_job(const config::JobConfig& job) {
    if (job.pull) {
        if (job.sink && !job.sink->columns().empty()) pull::Flattener::compile(*job.sink);
        return;
    }
    const auto* csv = std::get_if<connectors::CsvSourceConfig>(&job.source.settings);
    const auto& cols = csv && !csv->columns.empty() ? csv->columns : columns();
    auto mapper = mapping::Mapper::compile(job, cols);
    // One row through it: a compiled mapping must map or reject, never throw.
    connectors::Row row;
    row.origin = "fuzz.csv:2";
    for (std::size_t i = 0; i < cols.size(); ++i) row.values.emplace_back(i % 3 == 0 ? "" : "Y");
    (void)mapper.map(row);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto env = fuzz::fake_env();
    try {
        auto config = config::parse_config(text, "/fuzz/prefsync.yaml", env);
        // Only the environment: token_file would read whatever file the input names.
        if (config.api.token.kind == config::TokenSpec::Kind::Env) config::resolve_token(config, env);
        for (const auto& job : config.jobs) {
            try {
                check_job(job);
            } catch (const config::ConfigError&) {}
        }
    } catch (const config::ConfigError&) {}
    return 0;
}
