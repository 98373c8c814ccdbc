// The mapping's cost per row: the bundled example job (examples/prefsync.yaml) mapping the
// bundled rows (examples/profiles.csv, read into memory first), body and hash included.
//   prefsync-map-bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "connectors/open_source.hpp"
#include "daemon/mapping/mapper.hpp"

namespace {

void map_example_rows(benchmark::State& state) {
    auto config = prefsync::config::load_config(PREFSYNC_EXAMPLES "/prefsync.yaml",
                                                [](const std::string&) { return std::optional<std::string>(); });
    const auto& job = config.jobs.at(0);
    auto source = prefsync::connectors::open_source(job.source);
    std::vector<prefsync::connectors::Row> rows, batch;
    while (source->next_batch(batch, 1000)) std::move(batch.begin(), batch.end(), std::back_inserter(rows));
    auto mapper = prefsync::mapping::Mapper::compile(job, source->columns());
    std::size_t bytes = 0;
    for (auto _ : state) {
        for (const auto& row : rows) {
            auto result = mapper.map(row);
            if (auto* mapped = std::get_if<prefsync::mapping::MappedRow>(&result)) bytes += mapped->body.size();
            benchmark::DoNotOptimize(result);
        }
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(rows.size()));
    state.counters["body bytes/row"] =
        static_cast<double>(bytes) / static_cast<double>(state.iterations() * rows.size());
}

}  // namespace

BENCHMARK(map_example_rows)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
