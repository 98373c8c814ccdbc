#pragma once
// systemd's notification protocol (sd_notify): READY=1, STATUS=…, WATCHDOG=1, STOPPING=1.
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op. Watchdog pings are rate-
// limited to a quarter of the interval systemd asks for ($WATCHDOG_USEC).
#include <chrono>
#include <mutex>
#include <string>

namespace prefsync::service {

class Notifier {
public:
    Notifier();
    void ready(const std::string& status);
    void status(const std::string& status);
    // Call often from the loop that must prove it is alive; sends at most every interval/4.
    void watchdog();
    void stopping(const std::string& status);
    bool under_systemd() const { return enabled_; }

private:
    bool enabled_ = false;
    std::chrono::microseconds watchdog_interval_{0};
    std::chrono::steady_clock::time_point last_ping_{};
    std::mutex mutex_;
};

}  // namespace prefsync::service
