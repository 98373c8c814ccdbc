// Parsing pulled profiles: prefsync's simdjson On-Demand path (split an answer into its
// profiles and read each ProfileId) against Boost.JSON doing the same on the same bytes.
//   prefsync-parse-bench FILE.jsonl      (one profile per line, e.g. a `pull` JSONL output)
// Each line is parsed as one R1/R2 answer; the lines are also joined into arrays of 50 as
// search answers. Reported as bytes/s by Google Benchmark.
#include <benchmark/benchmark.h>

#include <boost/json.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/pull/response_reader.hpp"

namespace {

std::vector<std::string> g_single, g_arrays;
std::size_t g_single_bytes = 0, g_array_bytes = 0;

void load(const char* path) {
    std::ifstream in(path);
    std::string line, array;
    int in_array = 0;
    for (; std::getline(in, line);) {
        if (line.empty()) continue;
        g_single_bytes += line.size();
        array += (in_array ? "," : "[") + line;
        if (++in_array == 50) {
            g_arrays.push_back(array + "]");
            g_array_bytes += g_arrays.back().size();
            array.clear();
            in_array = 0;
        }
        g_single.push_back(std::move(line));
    }
}

void simdjson_reader(benchmark::State& state, const std::vector<std::string>& bodies, std::size_t bytes) {
    prefsync::pull::ResponseReader reader;
    std::vector<prefsync::pull::PulledProfile> out;
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (const auto& body : bodies) {
            reader.read(body, out);
            for (auto& p : out) sum += p.profile_id.value_or(0);
        }
    }
    benchmark::DoNotOptimize(sum);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void boost_json(benchmark::State& state, const std::vector<std::string>& bodies, std::size_t bytes) {
    std::int64_t sum = 0;
    for (auto _ : state) {
        for (const auto& body : bodies) {
            auto v = boost::json::parse(body);
            auto take = [&](const boost::json::value& p) {
                if (auto* id = p.as_object().if_contains("ProfileId"); id && id->is_int64()) sum += id->as_int64();
            };
            if (v.is_array())
                for (auto& p : v.as_array()) take(p);
            else
                take(v);
        }
    }
    benchmark::DoNotOptimize(sum);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: prefsync-parse-bench FILE.jsonl [benchmark flags]\n");
        return 1;
    }
    load(argv[1]);
    benchmark::RegisterBenchmark("simdjson_reader/single_profiles", simdjson_reader, std::cref(g_single),
                                 g_single_bytes);
    benchmark::RegisterBenchmark("boost_json/single_profiles", boost_json, std::cref(g_single), g_single_bytes);
    benchmark::RegisterBenchmark("simdjson_reader/search_arrays_of_50", simdjson_reader, std::cref(g_arrays),
                                 g_array_bytes);
    benchmark::RegisterBenchmark("boost_json/search_arrays_of_50", boost_json, std::cref(g_arrays), g_array_bytes);
    argv[1] = argv[0];
    int n = argc - 1;
    benchmark::Initialize(&n, argv + 1);
    benchmark::RunSpecifiedBenchmarks();
    return 0;
}
