#pragma once
// The fingerprint of what a pull job fetches and what it writes where: a hash of a canonical
// text of the settings that decide it. An unfinished pull records it, and is resumed only
// under the same fingerprint: its items are keyed by position ("search:N") and its output
// holds what the old settings wrote, so resuming under others loses or mixes results.
//
// What counts: the API (base_url as api::api_target compares it, and client_id), the job's `pull` section (searches in order with their parameters, history,
// filter_id, implied, match_inactive, reconcile), its sink (type, file, table, key, each,
// columns in order; a PostgreSQL sink's conninfo, since another database is another
// output), and where the identities come from: the job's (or the reconciled push job's)
// source as its rows are read (file, table or query, CSV layout; not a database's conninfo,
// as for watermarks: a moved server holds the same rows), its identity, and for reconcile
// the push job's mode and mapping (they make the body each profile is compared with).
// Not: the schedule, reject files, passwords, anything outside the job.
#include <string>

#include "config/config.hpp"

namespace prefsync::pull {

// Hex SHA-256 of the canonical text, built from the parsed config: the same settings give
// the same fingerprint whatever their spelling in the YAML (comments, quoting, flow or block
// style), and a changed ${VAR} or a path resolved elsewhere changes it.
std::string pull_fingerprint(const config::Config& config, const config::JobConfig& job);

}  // namespace prefsync::pull
