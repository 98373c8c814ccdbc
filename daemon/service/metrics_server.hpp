#pragma once
// /metrics (Prometheus text) and /healthz on a loopback port, served from a thread of its
// own with its own journal connection, so a scrape never waits for a run.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "daemon/service/metrics.hpp"

namespace prefsync::service {

class MetricsServer {
public:
    // `listen` is HOST:PORT (port 0: any); throws std::runtime_error if it cannot bind.
    // `health` is the /healthz body (its first word "ok" or not decides 200 or 503).
    MetricsServer(const std::string& listen, Metrics& metrics, std::string journal_path,
                  std::function<std::string()> health);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    unsigned short port() const { return port_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    unsigned short port_ = 0;
    std::thread thread_;
};

}  // namespace prefsync::service
