#pragma once
// A push job against the in-process emulator: generated example rows, a config with the
// example mapping, and the real binary run on it.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/in_process_emulator.hpp"
#include "tests/support/process.hpp"
#include "tests/support/run.hpp"
#include "tests/support/temp_dir.hpp"

namespace prefsync::testing {

struct PushWorkspace {
    TempDir dir;
    InProcessEmulator emu;
    std::string config;
    std::string csv;

    PushWorkspace(int rows, const std::string& mode = "upsert", const std::string& extra_mapping = "",
                  emulator::ApiOptions api = {})
        : emu(api) {
        auto gen = run(quote(PREFSYNC_GEN_PROFILES) + " " + std::to_string(rows));
        EXPECT_EQ(gen.exit_code, 0);
        csv = dir.write("profiles.csv", gen.out);
        write_config(mode, extra_mapping);
    }

    // The same rows in a fixed random order of identities (the generator writes them in
    // ascending order, one line each), as a source sorted by anything else gives them.
    void shuffle_rows(unsigned seed = 13) {
        std::ifstream in(csv);
        std::string header, line;
        std::getline(in, header);
        std::vector<std::string> lines;
        while (std::getline(in, line)) lines.push_back(line);
        std::shuffle(lines.begin(), lines.end(), std::mt19937(seed));
        std::string out = header + "\n";
        for (const auto& l : lines) out += l + "\n";
        dir.write("profiles.csv", out);
    }

    void write_config(const std::string& mode, const std::string& extra_mapping = "",
                      const std::string& rate = "requests_per_second: 5000, burst: 500",
                      const std::string& api_extra = "") {
        config = dir.write("prefsync.yaml", "api:\n  base_url: http://127.0.0.1:" + std::to_string(emu.server.port()) +
                                                "/Profiles/v2\n"
                                                "  client_id: \"12345\"\n  token_env: PREFSYNC_TOKEN\n" +
                                                api_extra +
                                                "http: { connections: 8, request_timeout: 10s }\n"
                                                "rate_limit: { " +
                                                rate +
                                                " }\n"
                                                "retry: { max_attempts: 30, base_delay: 5ms, max_delay: 200ms }\n"
                                                "journal: { path: state/journal.db }\n"
                                                "jobs:\n  crm:\n    mode: " +
                                                mode +
                                                "\n    source: { type: csv, path: profiles.csv }\n"
                                                "    identity: { alternate_id_type: CRMID, column: customer_id }\n"
                                                "    mapping:\n"
                                                "      CustomerName.FirstName: first_name\n"
                                                "      CustomerName.LastName: last_name\n"
                                                "      Emails:\n        - { EmailAddress: { column: email, normalize: "
                                                "lowercase }, EmailAddressType: { const: Personal } }\n"
                                                "      ProfileTags: { column: tags, split: \";\" }\n"
                                                "      CustomFields: { LoyaltyTier: loyalty_tier }\n" +
                                                extra_mapping);
    }

    std::int64_t endpoint_requests(const std::string& endpoint) { return emu.endpoint_requests(endpoint); }

    // Replaces the first `from` in the config with `to` (a test's own setting).
    void edit_config(const std::string& from, const std::string& to) {
        auto text = read_file(config);
        auto at = text.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        config = dir.write("prefsync.yaml", text.replace(at, from.size(), to));
    }

    testing::RunResult prefsync(const std::string& args, const std::string& token = "emulator-token") {
        return run("PREFSYNC_TOKEN=" + token + " " + quote(PREFSYNC_BINARY) + " -c " + quote(config) + " " + args);
    }

    // Starts `prefsync ARGS` and returns it once the emulator has counted `requests` requests
    // in all (or the run ended, or a minute passed: check running()), to be signalled.
    std::unique_ptr<ChildProcess> start_until(const std::vector<std::string>& args, std::int64_t requests) {
        std::vector<std::string> argv{"/usr/bin/env", "PREFSYNC_TOKEN=emulator-token", PREFSYNC_BINARY, "-c", config};
        argv.insert(argv.end(), args.begin(), args.end());
        auto p = std::make_unique<ChildProcess>(argv);
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (p->running() && emu.requests_counter() < requests && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a poll, not a spin: 2 cores
        return p;
    }

    // identity → profiles holding it, from the emulator's state.
    std::map<std::string, std::vector<boost::json::object>> profiles_by_alt_id() {
        std::map<std::string, std::vector<boost::json::object>> out;
        for (auto& p : emu.store.dump())
            if (auto* ids = p.as_object().if_contains("AlternateIds"))
                for (auto& a : ids->as_array())
                    out[std::string(a.at("AlternateId").as_string())].push_back(p.as_object());
        return out;
    }
};

}  // namespace prefsync::testing
