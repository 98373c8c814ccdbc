// The identities a push run has seen: SeenSet (a hash set up to 2^20, then sorted files beside
// the journal) against the in-memory hash set it replaced, on the same random 64-bit hashes.
//   prefsync-seen-set-bench [--benchmark_filter=...]   (files go to the current directory)
// Per insert, 1,000,000 and 10,000,000 identities, each new (a source without duplicates),
// then a pass of look-ups as the end of a mirror run makes (every identity the journal knows).
#include <benchmark/benchmark.h>

#include <boost/unordered/unordered_flat_set.hpp>
#include <random>
#include <vector>

#include "daemon/push/seen_set.hpp"

namespace {

std::vector<std::uint64_t> hashes(std::size_t n) {
    std::mt19937_64 random(42);
    std::vector<std::uint64_t> out(n);
    for (auto& h : out) h = random();
    return out;
}

void seen_set(benchmark::State& state) {
    auto input = hashes(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        prefsync::push::SeenSet seen(".");
        for (auto h : input) benchmark::DoNotOptimize(seen.insert(h));
        std::size_t found = 0;
        for (auto h : input) found += seen.contains(h);
        benchmark::DoNotOptimize(found);
        state.counters["files"] = static_cast<double>(seen.files());
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void in_memory(benchmark::State& state) {
    auto input = hashes(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        boost::unordered_flat_set<std::uint64_t> seen;
        for (auto h : input) benchmark::DoNotOptimize(seen.insert(h).second);
        std::size_t found = 0;
        for (auto h : input) found += seen.contains(h);
        benchmark::DoNotOptimize(found);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

}  // namespace

BENCHMARK(in_memory)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(seen_set)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK_MAIN();
