#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/emulator/server.hpp"

namespace prefsync::cli {

namespace {

bool parse_listen(const std::string& listen, std::string& host, std::uint16_t& port) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) return false;
    host = listen.substr(0, colon);
    try {
        auto p = std::stoul(listen.substr(colon + 1));
        if (p > 65535) return false;
        port = static_cast<std::uint16_t>(p);
    } catch (...) {
        return false;
    }
    return host.starts_with("127.") || host == "localhost";
}

}  // namespace

int cmd_emulator(const EmulatorOptions& o) {
    namespace emu = prefsync::emulator;
    emu::ServerOptions server_options;
    if (!parse_listen(o.listen, server_options.host, server_options.port)) {
        base::logger().error("--listen " + o.listen + ": expected 127.x.x.x:PORT (the emulator serves loopback only)");
        return kUsage;
    }
    if (server_options.host == "localhost") server_options.host = "127.0.0.1";
    auto delay = config::parse_duration(o.processing_delay);
    if (!delay) {
        base::logger().error("--processing-delay " + o.processing_delay + ": expected a duration such as 500ms or 2s");
        return kUsage;
    }
    server_options.threads = o.threads;
    server_options.body_limit = o.body_limit;
    server_options.request_log = o.request_log;

    emu::FaultConfig faults;
    faults.latency = std::chrono::milliseconds(o.latency_ms);
    faults.latency_jitter = std::chrono::milliseconds(o.jitter_ms);
    faults.rate_limit = o.rate_limit;
    faults.retry_after_seconds = o.retry_after;
    faults.error_429 = o.error_429;
    faults.error_429_retry_after_seconds = o.error_429_retry_after;
    faults.error_503 = o.error_503;
    faults.reset = o.reset;
    faults.ambiguous = o.ambiguous;
    faults.ambiguous_status = o.ambiguous_status;
    faults.slow = std::chrono::milliseconds(o.slow_ms);
    faults.error_503_retry_after_seconds = o.error_503_retry_after;
    faults.outage = std::chrono::milliseconds(o.outage_ms);
    faults.outage_mode = o.outage_mode == "503" ? emu::OutageMode::Unavailable : emu::OutageMode::Reset;
    faults.outage_retry_after_seconds = o.outage_retry_after;
    faults.accept_duplicates = o.accept_duplicates;
    faults.stamp_elements = o.stamp_elements;
    faults.patch_test_status = o.patch_test_status;
    faults.seed = o.seed;

    auto clock = [] { return std::chrono::system_clock::now(); };
    emu::ProfileStore store(clock, *delay);
    if (!o.state_file.empty()) {
        std::ifstream in(o.state_file);
        if (in) {
            std::stringstream text;
            text << in.rdbuf();
            boost::system::error_code ec;
            auto state = boost::json::parse(text.str(), ec);
            if (ec || !state.is_object() || !state.as_object().contains("profiles")) {
                base::logger().error("--state " + o.state_file + ": not an emulator state file");
                return kUsage;
            }
            store.load(state.at("profiles").as_array());
        }
    }
    emu::ApiOptions api_options;
    api_options.client_id = o.client_id;
    api_options.token = o.token;
    api_options.oauth = o.oauth;
    api_options.token_ttl = std::chrono::seconds(o.token_ttl_s);
    emu::EmulatorApi api(store, api_options, clock);
    emu::FaultInjector injector(faults);

    // Signals are taken synchronously by this thread; the server threads never see them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    try {
        emu::Server server(api, store, injector, server_options);
        server.start();
        // The first stdout line is the bound address, so tests and scripts can use port 0.
        std::printf("%s:%u\n", server_options.host.c_str(), server.port());
        std::fflush(stdout);
        auto url = "http://" + server_options.host + ":" + std::to_string(server.port());
        base::logger().info("Emulator serving",
                            {{"api", url + "/Profiles/v2/" + o.client_id}, {"admin", url + "/__admin/stats"}});
        int received = 0;
        sigwait(&signals, &received);
        server.stop();
    } catch (const std::exception& e) {
        base::logger().error(std::string("emulator: ") + e.what());
        return kFatal;
    }
    if (!o.state_file.empty()) {
        std::ofstream out(o.state_file + ".tmp");
        out << boost::json::serialize(boost::json::object{{"profiles", store.dump()}});
        out.close();
        if (!out || std::rename((o.state_file + ".tmp").c_str(), o.state_file.c_str()) != 0) {
            base::logger().error("cannot save the state to " + o.state_file);
            return kFatal;
        }
    }
    return kOk;
}

}  // namespace prefsync::cli
