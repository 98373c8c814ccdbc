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
    Check,   // read only (plan, verify): throws TargetMoved if the state is another API's
    Record,  // a push run: also records the API where none is recorded yet
    Adopt,   // backfill --new-target: forgets another API's state and records this one
};

// Throws TargetMoved (naming both APIs and what to run) unless the job's state belongs to
// the config's API. A journal without a record for the job (new, or written before
// version 11) takes the config's as its own (Record, Adopt). Adopt, where the state is the
// config's API's already, throws: forgetting it would send every create again.
void guard_target(journal::Journal& journal, const config::Config& config, const config::JobConfig& job, TargetUse use,
                  journal::Millis now);

}  // namespace prefsync::push
