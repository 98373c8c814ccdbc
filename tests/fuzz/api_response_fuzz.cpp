// What prefsync reads from API answers, on any bytes: the pull ResponseReader (a profile or
// a search's array of them), the pull sink's flattener on each profile, and the push side's
// profile_id_of, server_message and classify. The first four bytes pick the operation, the
// transport and the status (0-999); the rest is the body.
//
// Checked beyond "no crash": each profile the reader returns is an object taken from the
// body; a server message stays short; every classification has a reason.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "daemon/api/outcome.hpp"
#include "daemon/api/requests.hpp"
#include "daemon/pull/flattener.hpp"
#include "daemon/pull/response_reader.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {

using namespace prefsync;

// The columns of the README's pull example, plus the other path forms and an each sink.
pull::Flattener make_flattener(bool each) {
    connectors::CsvSinkConfig csv;
    if (each) {
        csv.each = "Consents";
        csv.columns = {{"profile_id", "ProfileId", {}}, {"type", "@.ConsentType", {}}, {"all", "@", {}}};
    } else {
        csv.columns = {{"profile_id", "ProfileId", {}},
                       {"customer_id", "AlternateIds[AlternateIdType=CRMID].AlternateId", {}},
                       {"first_name", "CustomerName.FirstName", {}},
                       {"email", "Emails[EmailAddressType=Personal].EmailAddress", {}},
                       {"first_phone", "PhoneNumbers[0]", {}},
                       {"tags", "ProfileTags", {}}};
    }
    config::SinkConfig sink;
    sink.key_path = "jobs.fuzz.sink";
    sink.settings = std::move(csv);
    return pull::Flattener::compile(sink);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static pull::ResponseReader reader;
    static pull::Flattener flat = make_flattener(false), each = make_flattener(true);
    static std::vector<pull::PulledProfile> profiles;
    static std::vector<pull::OutputRow> rows;
    if (size < 4) return 0;
    auto op = static_cast<api::Operation>(data[0] % 9);
    auto transport = static_cast<api::Transport>(data[1] % 3);
    int status = (data[2] << 8 | data[3]) % 1000;
    std::string_view body(reinterpret_cast<const char*>(data) + 4, size - 4);

    auto c = api::classify(op, transport, status, body);
    FUZZ_REQUIRE(!c.reason.empty());
    FUZZ_REQUIRE(api::server_message(body).size() <= 303);
    (void)api::profile_id_of(body);

    if (!reader.read(body, profiles).empty()) return 0;
    for (const auto& p : profiles) {
        // A view into the reader's copy of the body: the same bytes as some part of it.
        FUZZ_REQUIRE(p.json.size() >= 2 && p.json.front() == '{' && p.json.back() == '}');
        FUZZ_REQUIRE(body.find(p.json) != std::string_view::npos);
        rows.clear();
        std::string problem = flat.rows(p.json, rows);
        FUZZ_REQUIRE(problem.empty() ? rows.size() == 1 : rows.empty());
        for (const auto& row : rows) FUZZ_REQUIRE(row.size() == flat.column_names().size());
        rows.clear();
        (void)each.rows(p.json, rows);
    }
    return 0;
}
