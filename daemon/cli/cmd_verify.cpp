// `verify`: read 202-accepted updates back until "Complete".
#include <cstdio>

#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/common.hpp"
#include "daemon/cli/errors.hpp"
#include "daemon/cli/run_setup.hpp"
#include "daemon/push/verify_run.hpp"
#include "daemon/service/signals.hpp"

namespace prefsync::cli {

int cmd_verify(const VerifyCommand& cmd) {
    auto loaded = load_for_job(cmd.config_path, cmd.job);
    if (!loaded.ok()) return loaded.exit_code;
    base::LogScope log_scope(cmd.job);
    auto wait = config::parse_duration(cmd.wait);
    if (!wait) {
        base::logger().error("--wait " + cmd.wait + ": expected a duration such as 30s or 5m");
        return kUsage;
    }
    return guarded(cmd.job, [&] {
        service::Signals signals({});
        RunSetup setup(*loaded.config, *loaded.job, "", &signals.stop());
        auto r = push::run_verify(setup.context, *loaded.job, *wait);
        std::printf("verify %s: checked %lld, complete %lld, still pending %lld, missing %lld%s\n", cmd.job.c_str(),
                    (long long)r.checked, (long long)r.verified, (long long)r.pending, (long long)r.missing,
                    r.unreadable > 0 ? (", too large to read " + std::to_string(r.unreadable)).c_str() : "");
        if (!r.fatal.empty()) {
            base::logger().error("Aborted", {{"reason", r.fatal}});
            return int(kFatal);
        }
        // The API answered only failures or 429s for too long: stopped, the rest for later.
        if (!r.unavailable.empty()) return int(kInterrupted);
        return int(r.pending > 0 || r.missing > 0 || r.unreadable > 0 ? kPartial : kOk);
    });
}

}  // namespace prefsync::cli
