#include "config/config_keys.hpp"

namespace prefsync::config {

using enum ValueType;

const KeyTable& root_keys() {
    static const KeyTable table{
        .id = "prefsync",
        .description = "The prefsync configuration file (prefsync.yaml).",
        .keys =
            {
                {.name = "api",
                 .type = Section,
                 .required = "base_url, client_id, token",
                 .nested = api_keys,
                 .description = "where the MyPreferences API is, the account, and where the token comes from"},
                {.name = "http", .type = Section, .nested = http_keys, .description = "the connections to the API"},
                {.name = "rate_limit",
                 .type = Section,
                 .nested = rate_limit_keys,
                 .description = "how fast requests are sent"},
                {.name = "retry",
                 .type = Section,
                 .nested = retry_keys,
                 .description = "how failed requests are retried"},
                {.name = "journal",
                 .type = Section,
                 .nested = journal_keys,
                 .description = "the SQLite journal every update is recorded in before it is sent"},
                {.name = "log", .type = Section, .nested = log_keys, .description = "what is logged"},
                {.name = "daemon",
                 .type = Section,
                 .nested = daemon_keys,
                 .description = "how `prefsync daemon` runs scheduled jobs and is observed"},
                {.name = "jobs",
                 .type = SectionMap,
                 .pattern = "^[A-Za-z0-9_-]+$",
                 .custom = custom::kJob,
                 .doc_type = "map",
                 .description = "one job; names use letters, digits, `-`, `_`"},
            },
    };
    return table;
}

const KeyTable& api_keys() {
    static const KeyTable table{
        .id = "api",
        .description = "The MyPreferences Profiles v2 API: where it is, the account, and where the token comes from.",
        .keys =
            {
                {.name = "base_url",
                 .required = "e.g. https://pm.mypreferences.com/Profiles/v2",
                 .doc_type = "URL",
                 .description =
                     "e.g. `https://pm.mypreferences.com/Profiles/v2` (sandbox `https://pmstg...`; `http://` "
                     "only for a loopback emulator, warned otherwise)"},
                {.name = "client_id",
                 .required = "your MyPreferences account id",
                 .description = "your MyPreferences account id"},
                {.name = "token_env", .doc_type = "name", .description = "environment variable holding the token"},
                {.name = "token_file",
                 .type = Path,
                 .description = "file holding the token (trailing newline ignored)"},
                {.name = "credential",
                 .doc_type = "name",
                 .description = "systemd credential name, read from `$CREDENTIALS_DIRECTORY`"},
                {.name = "token",
                 .description = "the token itself: refused unless `api.allow_inline_token: true`, then warned"},
                {.name = "allow_inline_token",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "accept `api.token`, a token written in the config file"},
                {.name = "oauth",
                 .type = Section,
                 .nested = oauth_keys,
                 .description = "OAuth client-credentials mode: the configured token is the client secret"},
            },
        .rules = {{KeyRule::Kind::ExactlyOne, "token_env|token_file|credential|token", true}},
    };
    return table;
}

const KeyTable& oauth_keys() {
    static const KeyTable table{
        .id = "api.oauth",
        .description =
            "OAuth client-credentials mode: the configured token is the client secret, exchanged for "
            "bearer tokens.",
        .keys =
            {
                {.name = "token_url",
                 .required = "where bearer tokens are issued",
                 .doc_type = "URL",
                 .description = "`https://` (`http://` only to a loopback host). OAuth client-credentials mode: the "
                                "configured token is the client secret, exchanged here for bearer tokens "
                                "(`grant_type=client_credentials`), refreshed before they expire and after a 401"},
                {.name = "client_id", .description = "sent as `client_id` to the token endpoint when set"},
                {.name = "refresh_before",
                 .type = Duration,
                 .default_value = "60s",
                 .description = "fetch a new token this long before the current one expires"},
            },
    };
    return table;
}

const KeyTable& http_keys() {
    static const KeyTable table{
        .id = "http",
        .description = "The keep-alive HTTPS connections to the API.",
        .keys =
            {
                {.name = "connections",
                 .type = Integer,
                 .min = 1,
                 .max = 1024,
                 .default_value = "16",
                 .description = "keep-alive connections to the API"},
                {.name = "connect_timeout",
                 .type = Duration,
                 .default_value = "10s",
                 .description = "for each of the TCP connect and the TLS handshake"},
                {.name = "request_timeout",
                 .type = Duration,
                 .default_value = "30s",
                 .description = "whole request, send to last byte"},
                {.name = "idle_timeout",
                 .type = Duration,
                 .default_value = "90s",
                 .description = "idle keep-alive connections are closed after this"},
                {.name = "max_response_bytes",
                 .type = Size,
                 .default_value = "8MiB",
                 .description = "a larger answer is not kept: a read (pull, lookup) then fails at once, not retried; a "
                                "write stands by its status"},
                {.name = "ca_file", .type = Path, .default_note = "system CAs", .description = "extra CA bundle (PEM)"},
                {.name = "insecure",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "the connection to the API is not protected: TLS certificates are not verified, and "
                                "`api.base_url` may be plain `http://` to a remote host (each warned at every start)"},
            },
    };
    return table;
}

const KeyTable& rate_limit_keys() {
    static const KeyTable table{
        .id = "rate_limit",
        .description = "The token bucket every request passes, shared by all jobs and processes.",
        .keys =
            {
                {.name = "requests_per_second",
                 .type = Number,
                 .min = 0.001,
                 .default_value = "50",
                 .description = "token bucket rate, shared by all jobs and, through the journal, by every prefsync "
                                "process on the host"},
                {.name = "burst",
                 .type = Integer,
                 .min = 1,
                 .max = 100000,
                 .default_value = "50",
                 .description =
                     "bucket size. A token bucket allows `rate + burst` requests in any one second: if the "
                     "server enforces exactly `rate` per second, set `burst: 1` (measured against the "
                     "emulator's limit at 100 req/s: burst 1 → 0 × 429 and 97% of the limit; burst 10 → 0.3% "
                     "429s, each pausing the run for its Retry-After)"},
                {.name = "daily_quota",
                 .type = Integer,
                 .min = 0,
                 .max = 1099511627776,
                 .default_value = "0",
                 .description =
                     "requests per UTC day across every process sharing the journal, counted in the journal "
                     "(survives restarts; a power loss can undo about the last second's count); when used up "
                     "the run pauses until the next UTC day instead of failing; 0 = none"},
                {.name = "adaptive",
                 .type = Boolean,
                 .default_value = "true",
                 .description = "on 429 (or 503 with Retry-After) cut the rate by a quarter, at most once a second; "
                                "recover 10% of the configured rate per second of success. A bare 503 is retried with "
                                "backoff but does not lower the rate"},
                {.name = "max_in_flight",
                 .type = Integer,
                 .min = 1,
                 .max = 4096,
                 .default_note = "`http.connections`",
                 .description = "concurrent requests"},
            },
    };
    return table;
}

const KeyTable& retry_keys() {
    static const KeyTable table{
        .id = "retry",
        .description = "How a request that failed transiently (408, 429, 5xx, connection lost) is retried.",
        .keys =
            {
                {.name = "max_attempts",
                 .type = Integer,
                 .min = 1,
                 .max = 1000,
                 .default_value = "8",
                 .description = "then the update is a failure"},
                {.name = "base_delay",
                 .type = Duration,
                 .default_value = "500ms",
                 .description = "exponential backoff with full jitter from here"},
                {.name = "max_delay",
                 .type = Duration,
                 .default_value = "5m",
                 .description = "backoff cap; not smaller than `retry.base_delay`"},
                {.name = "max_throttled",
                 .type = Duration,
                 .default_value = "1h",
                 .description =
                     "a 429 counts against no update's `max_attempts` (a row throttled again waits its own backoff, "
                     "up to `retry.max_delay`; one the API singles out fails: see docs/ARCHITECTURE.md): when the API "
                     "has answered nothing but 429 "
                     "(or failures) for this long, counted from the first 429 after the last request it processed, "
                     "the run stops as interrupted (exit 4): nothing is marked failed, what is left stays queued for "
                     "the next run, a daemon does not park the job (its retries wait 30 s, doubling to 1 h, after "
                     "each such run). Time waited for a `Retry-After` counts; each wait is still "
                     "honoured up to `retry.max_delay`, so the run stops at the first 429 after this span (up to "
                     "`retry.max_delay` after it). "
                     "Positive"},
            },
    };
    return table;
}

const KeyTable& journal_keys() {
    static const KeyTable table{
        .id = "journal",
        .description = "The SQLite journal: every update is recorded before it is sent.",
        .keys =
            {
                {.name = "path",
                 .type = Path,
                 .default_value = "/var/lib/prefsync/journal.db",
                 .description = "SQLite journal (holds PII: created 0600)"},
                {.name = "retain_days",
                 .type = Integer,
                 .min = 1,
                 .max = 36500,
                 .default_value = "30",
                 .description =
                     "ended runs older than this are deleted after each run and the space returned to the file "
                     "system (finished updates are not kept at all: an identity's outcome is its change-detection "
                     "row); pending and failed updates (dead letters, until retried), change-detection hashes and "
                     "watermarks are never pruned"},
            },
    };
    return table;
}

const KeyTable& log_keys() {
    static const KeyTable table{
        .id = "log",
        .description = "What is logged.",
        .keys =
            {
                {.name = "level",
                 .type = Enum,
                 .values = "error|warning|info|debug",
                 .default_value = "info",
                 .description = "the least severe events logged"},
                {.name = "format",
                 .type = Enum,
                 .values = "text|json",
                 .default_value = "text",
                 .description = "text: a sentence with key=value fields per line; json: one JSON object per line "
                                "(time, level, job, run, message, fields), for Loki or Elasticsearch"},
                {.name = "bodies",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "at debug level, the bodies of refused updates, emails and phones masked"},
            },
    };
    return table;
}

const KeyTable& daemon_keys() {
    static const KeyTable table{
        .id = "daemon",
        .description = "How `prefsync daemon` runs scheduled jobs and how the service is observed.",
        .keys =
            {
                {.name = "timezone",
                 .default_value = "UTC",
                 .doc_type = "IANA zone",
                 .description = "cron schedules are read in this zone (DST handled by tzdata)"},
                {.name = "catch_up",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "a scheduled run missed while the daemon was down runs once at start"},
                {.name = "shutdown_timeout",
                 .type = Duration,
                 .default_value = "30s",
                 .description = "SIGTERM: in-flight requests drain for at most this long, then the daemon exits 0 (the "
                                "journal resolves what was left in flight on restart)"},
                {.name = "metrics_listen",
                 .default_note = "off",
                 .doc_type = "loopback HOST:PORT",
                 .description = "serve `/metrics` (Prometheus text) and `/healthz` (port 0: any; printed on stdout)"},
                {.name = "verify",
                 .type = Boolean,
                 .default_value = "false",
                 .description =
                     "between runs, read 202-accepted updates back until \"Complete\" (as `prefsync verify`), "
                     "for the `prefsync_accepted_to_complete_seconds` metric; one GET per identity whose last "
                     "write was answered 202, per check"},
                {.name = "verify_interval",
                 .type = Duration,
                 .default_value = "1m",
                 .description = "at most one verify pass per job per interval (the metric's resolution)"},
            },
    };
    return table;
}

namespace {

constexpr KeySpec kScheduleKey{.name = "schedule",
                               .default_note = "none",
                               .doc_type = "cron / `@hourly` / `@daily` / `@weekly` / `every 15m`",
                               .description = "when the daemon runs the job (5-field cron, in `daemon.timezone`)"};

}  // namespace

const KeyTable& push_job_keys() {
    static const KeyTable table{
        .id = "job.push",
        .description = "A push job: rows of its source, mapped to Profile bodies, sent to the API.",
        .keys =
            {
                {.name = "mode",
                 .type = Enum,
                 .values = "create|update|upsert|replace|delete|archive|mirror",
                 .default_value = "upsert",
                 .description =
                     "the write endpoint: create (POST Profile; a profile the job created before is updated, by merge, "
                     "when its row changes or comes again), update (merge POST by profile id), upsert "
                     "(POST by alternate id), replace (PUT: absent fields are blanked, AlternateIds too: by "
                     "alternate id prefsync adds "
                     "the job's own to every body that maps none; by profile id the mapping must map "
                     "AlternateIds), delete, archive "
                     "(archive preferences), mirror (converge on the source with guarded JSON Patches)"},
                {.name = "on_removed",
                 .type = Enum,
                 .values = "deactivate|remove",
                 .default_value = "deactivate",
                 .description =
                     "mirror: a contact element the source no longer has is deactivated (IsActive false, its "
                     "consent trail kept) or removed"},
                {.name = "on_missing",
                 .type = Enum,
                 .values = "ignore|deactivate|archive|delete",
                 .default_value = "ignore",
                 .description =
                     "a profile whose row left a full-snapshot source (or whose deleted_column is set): left "
                     "alone, deactivated, its preferences archived, or deleted"},
                {.name = "max_missing",
                 .pattern = "[0-9]+(\\.[0-9]+)?%|[0-9]+",
                 .default_value = "5%",
                 .doc_type = "share or count",
                 .description =
                     "the most profiles one run removes (a share of those known, or a count); above it none "
                     "is removed and the run exits 2 (`--allow-mass-delete` overrides once); rows an "
                     "incremental source marked deleted stay refused, judged again by each later sync (their "
                     "writes held) until one allows them"},
                {.name = "deleted_column",
                 .doc_type = "column",
                 .description =
                     "soft deletes: a row whose value here is true-ish or any other non-empty value stands for "
                     "its profile's removal per on_missing (also of a profile a write whose answer was lost may "
                     "have made); its writes that never reached the API are dropped; a later row of the same "
                     "identity not marked takes the removal back (the last row decides; one rejected for its body "
                     "too: the source still lists it)"},
                kScheduleKey,
                {.name = "source",
                 .type = Custom,
                 .required = "where the rows come from",
                 .custom = custom::kSource,
                 .doc_type = "map",
                 .description = "where the rows come from; `type` says which keys it has (below)"},
                {.name = "identity",
                 .type = Section,
                 .required = "alternate_id_type + column, or profile_id_column",
                 .nested = identity_keys,
                 .description = "how each row's profile is addressed"},
                {.name = "mapping",
                 .type = Custom,
                 .default_note = "required except delete",
                 .custom = custom::kMapping,
                 .doc_type = "map",
                 .description = "how a row becomes the body (see Mapping)"},
                {.name = "sink",
                 .type = Refused,
                 .description = "is for pull jobs (with a pull: section); push jobs write to the API"},
            },
    };
    return table;
}

const KeyTable& pull_job_keys() {
    static const KeyTable table{
        .id = "job.pull",
        .description = "A pull job (it has a `pull:` section): profiles fetched from the API into its sink.",
        .keys =
            {
                kScheduleKey,
                {.name = "pull", .type = Section, .nested = pull_keys, .description = "what to fetch"},
                {.name = "source",
                 .type = Custom,
                 .custom = custom::kSource,
                 .doc_type = "map",
                 .description = "the identities to fetch, from any source (as for push)"},
                {.name = "identity",
                 .type = Section,
                 .nested = identity_keys,
                 .description =
                     "each source row's identity: `profile_id_column` → R2, `alternate_id_type` + `column` → R1"},
                {.name = "sink",
                 .type = Custom,
                 .required = "where pulled profiles go",
                 .custom = custom::kSink,
                 .doc_type = "map",
                 .description = "where pulled profiles go; `type` says which keys it has (below)"},
            },
        .rules = {{KeyRule::Kind::Together, "source+identity"}},
    };
    return table;
}

const KeyTable& pull_keys() {
    static const KeyTable table{
        .id = "pull",
        .description = "What a pull job fetches: the identities of a source (or of a push job), or searches.",
        .keys =
            {
                {.name = "searches",
                 .type = SectionList,
                 .nested = search_keys,
                 .doc_type = "list of `{endpoint, params}`",
                 .description = "S1–S14 searches; results are de-duplicated by ProfileId"},
                {.name = "history",
                 .type = Enum,
                 .values = "Consents|ContactElements|CustomFields|Preferences|StandardFields",
                 .description = "H1–H5 per identity instead of the profile"},
                {.name = "filter_id", .description = "history Preferences: `filterId`"},
                {.name = "implied",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "`implied=true` on reads (R1, R2) and on the searches whose reference lists it: all "
                                "but CustomFields, CustomFields/SelectList and Attributes"},
                {.name = "match_inactive",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "`matchInactive=true` on R1"},
                {.name = "reconcile",
                 .doc_type = "push job name",
                 .description =
                     "fetch the identities of that push job's source, and compare each profile with the body "
                     "the push job sends for its row (the round-trip report)"},
            },
    };
    return table;
}

const KeyTable& search_keys() {
    static const KeyTable table{
        .id = "pull.search",
        .description = "One search (S1–S14).",
        .keys =
            {
                {.name = "endpoint",
                 .type = Enum,
                 .values = "Address|CustomFields|CustomFields/SelectList|Email|Name|Name/Partial|Phone|Attributes|Tags|"
                           "Groups|Groups/AlternateId|Groups/Email|Groups/Phone",
                 .pattern = "Groups/Primary/[0-9]+",
                 .required = "e.g. Email, Tags, CustomFields",
                 .description = "the path under `Profile/` (`Groups/Primary/ID` with a profile id)"},
                {.name = "params",
                 .type = StringMap,
                 .doc_type = "map",
                 .description = "the query parameters as the reference names them, including the indexed forms "
                                "(`\"customFields[0].Name\": Tier`, `\"tag[0]\": vip`)"},
            },
    };
    return table;
}

const KeyTable& identity_keys() {
    static const KeyTable table{
        .id = "identity",
        .description = "How a row's profile is addressed: by an alternate id, or by ProfileId.",
        .keys =
            {
                {.name = "alternate_id_type",
                 .doc_type = "name",
                 .description =
                     "profiles addressed by alternate id of this type (required for create and upsert), with "
                     "`column`"},
                {.name = "column", .doc_type = "column", .description = "the column holding the alternate id"},
                {.name = "profile_id_column",
                 .doc_type = "column",
                 .description = "profiles addressed by ProfileId, from this column (required for archive)"},
                {.name = "normalize",
                 .type = EnumList,
                 .values = "lowercase|uppercase|digits|collapse_spaces",
                 .description = "clean the alternate id (after trimming) before it names the profile: an email "
                                "used as the identity wants `lowercase`, as its EmailAddress has, or a change of "
                                "case in the export is another identity; one or a list"},
            },
        .rules = {{KeyRule::Kind::ExactlyOne, "alternate_id_type+column|profile_id_column"}},
    };
    return table;
}

namespace {

// The cleaning keys a value spec and a split column share.
constexpr KeySpec kTrimKey{.name = "trim",
                           .type = Boolean,
                           .default_value = "true",
                           .description = "trim surrounding whitespace (`false` keeps it)"};
constexpr KeySpec kNormalizeKey{
    .name = "normalize",
    .type = EnumList,
    .values = "lowercase|uppercase|digits|collapse_spaces|trim",
    .description = "`lowercase`, `uppercase` (ASCII), `digits` (keep 0-9), `collapse_spaces`, `trim`; one or a list"};
constexpr KeySpec kMapKey{.name = "map",
                          .type = Custom,
                          .custom = custom::kFieldValueMap,
                          .doc_type = "map",
                          .description =
                              "translate values (after normalize); `\"*\"` matches anything else; an "
                              "unmapped value rejects the row"};

}  // namespace

const KeyTable& value_keys() {
    static const KeyTable table{
        .id = "mapping.value",
        .description = "A value read from a column (or a constant), cleaned and converted to the field's type.",
        .keys =
            {
                {.name = "column", .doc_type = "column", .description = "read this column"},
                {.name = "const",
                 .type = Custom,
                 .custom = custom::kFieldValue,
                 .doc_type = "value",
                 .description = "a constant (checked against the field's type at load time)"},
                kTrimKey,
                kNormalizeKey,
                kMapKey,
                {.name = "default",
                 .type = Custom,
                 .custom = custom::kFieldValue,
                 .doc_type = "value",
                 .description = "used when the value is empty"},
                {.name = "date",
                 .type = Custom,
                 .custom = custom::kDate,
                 .doc_type = "format or `{in, out}`",
                 .description = "reformat a date (`%Y %y %m %d %H %M %S`): the input format, or `{in: ..., out: ...}`; "
                                "output default `%Y-%m-%d`; the calendar is checked"},
                {.name = "empty",
                 .type = Enum,
                 .values = "absent|keep",
                 .default_value = "absent",
                 .description = "empty values are left out (`absent`), or sent as `\"\"` to clear a field on purpose "
                                "(`keep`, string fields only)"},
                {.name = "required",
                 .type = Boolean,
                 .default_value = "false",
                 .description = "an empty value rejects the row"},
            },
        .rules = {{KeyRule::Kind::ExactlyOne, "column|const"}},
    };
    return table;
}

const KeyTable& split_keys() {
    static const KeyTable table{
        .id = "mapping.split",
        .description = "A list built from one delimited column: \"a;b\" → one element per item, de-duplicated.",
        .keys =
            {
                {.name = "column",
                 .required = "the column to split",
                 .doc_type = "column",
                 .description = "the column holding the items"},
                {.name = "split",
                 .required = "the delimiter, e.g. \";\"",
                 .description = "the delimiter between items"},
                {.name = "field",
                 .doc_type = "field name",
                 .description = "the element field each item goes into; may be left out when the element has a single "
                                "string field (tags)"},
                {.name = "with",
                 .type = Custom,
                 .custom = custom::kSplitWith,
                 .doc_type = "map",
                 .description = "further fields of every element (constants or columns)"},
                kTrimKey,
                kNormalizeKey,
                kMapKey,
            },
    };
    return table;
}

const KeyTable& date_keys() {
    static const KeyTable table{
        .id = "mapping.date",
        .description = "A date's input and output formats.",
        .keys =
            {
                {.name = "in",
                 .required = "the input format, e.g. \"%m/%d/%Y\"",
                 .doc_type = "format",
                 .description = "the input format, e.g. `%m/%d/%Y`"},
                {.name = "out", .default_value = "%Y-%m-%d", .doc_type = "format", .description = "the format sent"},
            },
    };
    return table;
}

}  // namespace prefsync::config
