// Mapping on random rows: the example job (examples/prefsync.yaml) and the jobs of
// mapping_jobs.yaml, compiled once against the example's columns, map rows whose cells come
// from the input: cells are separated by 0x1F (unit separator); a cell that is exactly 0x1E
// is NULL; missing cells are empty. Sources hand the mapper UTF-8 only (they reject other
// rows), so other input is skipped.
//
// Checked beyond "no crash": a mapped body is a JSON object (so also UTF-8), and mapping is
// deterministic (the same row gives the same body and hash), which change detection relies
// on.
#include <simdjson.h>

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "daemon/mapping/mapper.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace prefsync;

struct Jobs {
    std::vector<config::Config> configs;
    std::vector<mapping::Mapper> mappers;
    std::size_t columns = 0;

    Jobs() {
        auto env = fuzz::fake_env();
        configs.push_back(config::parse_config(fuzz::read_source_file("examples/prefsync.yaml"),
                                               PREFSYNC_SOURCE_DIR "/examples/prefsync.yaml", env));
        configs.push_back(config::parse_config(fuzz::read_source_file("tests/fuzz/mapping_jobs.yaml"),
                                               PREFSYNC_SOURCE_DIR "/tests/fuzz/mapping_jobs.yaml", env));
        auto cols = fuzz::example_columns();
        columns = cols.size();
        for (const auto& config : configs)
            for (const auto& job : config.jobs) mappers.push_back(mapping::Mapper::compile(job, cols));
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const Jobs jobs;  // configs are fixed: compile once
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (!simdjson::validate_utf8(text.data(), text.size())) return 0;
    connectors::Row row;
    row.origin = "fuzz.csv:2";
    row.raw = std::string(text);
    while (row.values.size() < jobs.columns) {
        auto cut = text.find('\x1f');
        auto cell = text.substr(0, cut);
        if (cell == "\x1e")
            row.values.emplace_back(std::nullopt);
        else
            row.values.emplace_back(std::string(cell));
        text = cut == std::string_view::npos ? std::string_view() : text.substr(cut + 1);
    }
    for (const auto& mapper : jobs.mappers) {
        auto result = mapper.map(row);
        auto* mapped = std::get_if<mapping::MappedRow>(&result);
        if (!mapped) {
            FUZZ_REQUIRE(!std::get<mapping::RowError>(result).message.empty());
            continue;
        }
        boost::system::error_code ec;
        auto body = boost::json::parse(mapped->body, ec);
        FUZZ_REQUIRE(!ec && body.is_object());
        auto again = mapper.map(row);
        auto* same = std::get_if<mapping::MappedRow>(&again);
        FUZZ_REQUIRE(same && same->body == mapped->body && same->hash == mapped->hash);
    }
    return 0;
}
