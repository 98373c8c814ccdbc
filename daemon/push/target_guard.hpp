#pragma once
// Which API a push job's journal state belongs to, checked before a run reads or sends
// anything. The profile ids the journal keeps, and what its change detection says the API
// has, are one server's and one client's: a job pointed at another server (the sandbox, then
// production) would otherwise skip every row it sent the first one, and update or remove
// whatever profiles carry those ids on the second (journal::TargetStore).
#include <stdexcept>
#include <string>

#include "config/config.hpp"
#include "daemon/journal/journal.hpp"

namespace prefsync::push {

// The comparable form of the config's API: scheme and host in lower case, the scheme's
// default port and trailing slashes dropped, and the client id.
std::string target_of(const config::Config& config);
// As a message shows it: the base URL as configured, and the client id.
std::string shown_target(const config::Config& config);

// A job whose journal state is another API's, or --new-target where it is not (exit 3).
class TargetMoved : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class TargetUse {
    Check,  // throws TargetMoved if the job's state is another API's
    Adopt,  // backfill --new-target: forgets the job's state and records the config's API
};

// Throws TargetMoved (naming both APIs and what to run) unless the job's state belongs to
// the config's API, or none is recorded. Adopt, where the config's API is the one recorded,
// throws: forgetting its state would send every create again.
void guard_target(journal::Journal& journal, const config::Config& config, const config::JobConfig& job, TargetUse use,
                  journal::Millis now);

// After a push run: where no API is recorded for the job (a new job, or a journal written
// before version 11), the config's becomes the job's once it has accepted a write; not on a
// run that reached no server (a mistyped base_url would otherwise become the job's).
void record_target(journal::Journal& journal, const config::Config& config, const config::JobConfig& job,
                   journal::Millis now);

}  // namespace prefsync::push
