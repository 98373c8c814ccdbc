#include "daemon/cli/run_setup.hpp"

#include <unistd.h>

#include "daemon/cli/common.hpp"

namespace prefsync::cli {

RunSetup::RunSetup(const config::Config& config, const config::JobConfig& job, const std::string& owner,
                   const std::atomic<bool>* stop, dispatch::RunObserver* observer)
    : token(config::resolve_token(config)),
      journal(config.journal.path),
      context{config, journal, token, user_agent(), stop, observer, isatty(STDERR_FILENO) != 0} {
    if (!owner.empty()) lock.emplace(config.journal.path, job.name, owner);
}

}  // namespace prefsync::cli
