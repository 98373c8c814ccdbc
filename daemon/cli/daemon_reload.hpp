#pragma once
// What a SIGHUP may change in a running daemon, apart from the daemon's loop, so it can be
// tested without a process.
//
// Design constraints:
// - A reload is checked as a start is: a config that does not load, or names an API token
//   that cannot be read (resolve_token: token_env, token_file, credential; no network, so
//   an OAuth client secret is read but not exchanged), is refused with the start's
//   messages and the running config kept. Every run reads the token again, so a rotated
//   token file is used from the next run on, reload or not.
// - Some settings are read once, at start, by parts that live as long as the process: the
//   journal (journal.path, and with it the lock directory and the default reject files),
//   the /metrics listener (daemon.metrics_listen), the time zone (daemon.timezone, set in
//   TZ before any thread starts), the drain bound (daemon.shutdown_timeout) and the logger
//   (log). A reload that changes one keeps its running value in the new config, so every
//   part of the daemon, runs included, goes on with the same value, and each is named in a
//   warning; the rest of the new config applies. Refusing the whole reload instead would
//   refuse every later reload, for unrelated changes too, until someone restarted it.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace prefsync::cli {

// A start-only setting the new config changes: its key and both values, as text.
struct KeptSetting {
    std::string key;
    std::string running;
    std::string configured;
};

// Puts the running value of every start-only setting `fresh` changes back into `fresh`
// (a default reject file follows its journal) and returns what it kept, in key order.
std::vector<KeptSetting> keep_start_only_settings(const config::Config& running, config::Config& fresh);

}  // namespace prefsync::cli
