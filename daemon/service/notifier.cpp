#include "daemon/service/notifier.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace prefsync::service {

Notifier::Notifier() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket && *socket;
    std::uint64_t usec = 0;
    if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_interval_ = std::chrono::microseconds(usec);
}

void Notifier::ready(const std::string& status) {
    if (enabled_) sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void Notifier::status(const std::string& status) {
    if (enabled_) sd_notify(0, ("STATUS=" + status).c_str());
}

void Notifier::watchdog() {
    if (!enabled_ || watchdog_interval_.count() == 0) return;
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    // A quarter of the interval: whatever delays one ping (a slow batch), the next still
    // arrives well inside the interval systemd allows.
    if (now - last_ping_ < watchdog_interval_ / 4) return;
    last_ping_ = now;
    sd_notify(0, "WATCHDOG=1");
}

void Notifier::stopping(const std::string& status) {
    if (enabled_) sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str());
}

}  // namespace prefsync::service
