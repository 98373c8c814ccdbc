#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config/mapping_parser.hpp"
#include "config/yaml/yaml_reader.hpp"
#include "daemon/base/text.hpp"

namespace prefsync::config {
namespace fs = std::filesystem;

std::string_view to_string(Mode mode) {
    switch (mode) {
        case Mode::Create: return "create";
        case Mode::Update: return "update";
        case Mode::Upsert: return "upsert";
        case Mode::Replace: return "replace";
        case Mode::Delete: return "delete";
        case Mode::Archive: return "archive";
    }
    return "?";
}

std::string_view to_string(HistoryKind kind) {
    switch (kind) {
        case HistoryKind::Consents: return "Consents";
        case HistoryKind::ContactElements: return "ContactElements";
        case HistoryKind::CustomFields: return "CustomFields";
        case HistoryKind::Preferences: return "Preferences";
        case HistoryKind::StandardFields: return "StandardFields";
    }
    return "?";
}

const JobConfig* Config::find_job(std::string_view name) const {
    for (const auto& job : jobs)
        if (job.name == name) return &job;
    return nullptr;
}

namespace {

// One cron field: "*", "*/n", "a", "a-b", "a-b/n", and comma lists of those.
bool valid_cron_field(std::string_view field, int min, int max) {
    if (field.empty()) return false;
    std::size_t start = 0;
    while (start <= field.size()) {
        auto comma = field.find(',', start);
        auto part = field.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                        : comma - start);
        auto slash = part.find('/');
        auto range = part.substr(0, slash);
        if (slash != std::string_view::npos) {
            int step = 0;
            auto s = part.substr(slash + 1);
            auto [e, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
            if (ec != std::errc() || e != s.data() + s.size() || step <= 0) return false;
        }
        if (range != "*") {
            auto dash = range.find('-');
            auto parse = [&](std::string_view s, int& v) {
                auto [e, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
                return ec == std::errc() && e == s.data() + s.size() && v >= min && v <= max;
            };
            int a = 0, b = 0;
            if (dash == std::string_view::npos) {
                if (!parse(range, a)) return false;
            } else if (!parse(range.substr(0, dash), a) || !parse(range.substr(dash + 1), b) ||
                       a > b) {
                return false;
            }
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return true;
}

}  // namespace

std::string check_schedule(std::string_view schedule) {
    if (schedule == "@hourly" || schedule == "@daily" || schedule == "@weekly") return {};
    if (schedule.starts_with("every ")) {
        auto d = parse_duration(schedule.substr(6));
        if (!d || d->count() < 1000) return "\"every\" needs a duration of at least 1s, e.g. \"every 15m\"";
        return {};
    }
    std::istringstream in{std::string(schedule)};
    std::vector<std::string> fields;
    for (std::string f; in >> f;) fields.push_back(f);
    if (fields.size() != 5)
        return "expected a cron expression with 5 fields (minute hour day month weekday), "
               "@hourly, @daily, @weekly or \"every DURATION\"";
    const int limits[5][2] = {{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}};
    const char* names[5] = {"minute", "hour", "day of month", "month", "day of week"};
    for (int i = 0; i < 5; ++i)
        if (!valid_cron_field(fields[i], limits[i][0], limits[i][1]))
            return "invalid " + std::string(names[i]) + " field \"" + fields[i] + "\" (allowed " +
                   std::to_string(limits[i][0]) + "-" + std::to_string(limits[i][1]) + ")";
    return {};
}

namespace {

class ConfigParser {
public:
    ConfigParser(const std::string& file, const EnvLookup& env) : r_(file, env) {
        auto dir = fs::path(file).parent_path();
        base_dir_ = dir.empty() ? fs::path(".") : dir;
    }

    Config parse(const YAML::Node& root) {
        Config c;
        c.file = r_.file();
        if (!root || root.IsNull()) {
            r_.error(root, "", "the config file is empty");
            return c;
        }
        if (!r_.expect_map(root, "")) return c;
        r_.check_keys(root, "", {"api", "http", "rate_limit", "retry", "journal", "log", "daemon", "jobs"});
        if (root["daemon"]) parse_daemon(root["daemon"], c.daemon);
        if (root["api"]) parse_api(root["api"], c);
        else r_.error(SourcePos{r_.file(), 1, 1}, "api", "is required (base_url, client_id, token)");
        if (root["http"]) parse_http(root["http"], c.http, c.warnings);
        if (root["rate_limit"]) parse_rate_limit(root["rate_limit"], c.rate_limit);
        if (root["retry"]) parse_retry(root["retry"], c.retry);
        if (root["journal"]) parse_journal(root["journal"], c.journal);
        c.journal.path = resolve(c.journal.path);
        if (root["log"]) parse_log(root["log"], c.log);
        if (c.log.bodies)
            c.warnings.push_back("log.bodies is true: profile bodies (personal data) will be logged");
        if (root["jobs"]) parse_jobs(root["jobs"], c);
        for (const auto& job : c.jobs) {
            if (!job.pull || job.pull->reconcile.empty()) continue;
            const auto* target = c.find_job(job.pull->reconcile);
            auto where = root["jobs"][job.name]["pull"]["reconcile"];
            if (!target)
                r_.error(where, "jobs." + job.name + ".pull.reconcile", "no job named \"" + job.pull->reconcile + "\"");
            else if (target->pull)
                r_.error(where, "jobs." + job.name + ".pull.reconcile", "\"" + job.pull->reconcile + "\" is a pull job; name a push job");
        }
        if (c.rate_limit.max_in_flight == 0) c.rate_limit.max_in_flight = c.http.connections;
        return c;
    }

    std::vector<Diagnostic>& diagnostics() { return r_.diagnostics(); }

private:
    std::string resolve(const std::string& path) const {
        if (path.empty() || fs::path(path).is_absolute()) return path;
        return (base_dir_ / path).lexically_normal().string();
    }

    void parse_api(const YAML::Node& n, Config& c) {
        const std::string p = "api";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"base_url", "client_id", "token_env", "token_file", "credential",
                             "token", "allow_inline_token", "oauth"});
        if (auto o = n["oauth"]) {
            std::string op = p + ".oauth";
            if (r_.expect_map(o, op)) {
                r_.check_keys(o, op, {"token_url", "client_id", "refresh_before"});
                if (auto v = o["token_url"]) {
                    if (auto url = r_.string(v, op + ".token_url")) {
                        if (!url->starts_with("https://") && !url->starts_with("http://"))
                            r_.error(v, op + ".token_url", "must be an https:// URL");
                        c.api.oauth.token_url = *url;
                    }
                } else {
                    r_.error(o, op + ".token_url", "is required (where bearer tokens are issued)");
                }
                r_.optional_field(o, op, "client_id", c.api.oauth.client_id,
                                  [&](auto& v, auto path) { return r_.string(v, path); });
                r_.optional_field(o, op, "refresh_before", c.api.oauth.refresh_before,
                                  [&](auto& v, auto path) { return r_.duration(v, path); });
            }
        }
        if (auto v = n["base_url"]) {
            if (auto s = r_.string(v, p + ".base_url")) {
                if (!s->starts_with("https://") && !s->starts_with("http://"))
                    r_.error(v, p + ".base_url", "must start with https:// (or http:// for a local emulator)");
                c.api.base_url = *s;
                while (c.api.base_url.ends_with('/')) c.api.base_url.pop_back();
                if (s->starts_with("http://") && !is_loopback_url(*s))
                    c.warnings.push_back("api.base_url uses plain http:// to a non-loopback host: "
                                         "the token would travel unencrypted");
            }
        } else {
            r_.error(n, p + ".base_url", "is required, e.g. https://pm.mypreferences.com/Profiles/v2");
        }
        if (auto v = n["client_id"]) {
            if (auto s = r_.string(v, p + ".client_id")) {
                if (s->empty()) r_.error(v, p + ".client_id", "must not be empty");
                c.api.client_id = *s;
            }
        } else {
            r_.error(n, p + ".client_id", "is required (your MyPreferences account id)");
        }
        bool allow_inline = false;
        r_.optional_field(n, p, "allow_inline_token", allow_inline,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        int sources = 0;
        auto take = [&](const char* key, TokenSpec::Kind kind) {
            auto v = n[key];
            if (!v) return;
            ++sources;
            if (auto s = r_.string(v, p + "." + key)) {
                c.api.token.kind = kind;
                c.api.token.value = kind == TokenSpec::Kind::File ? resolve(*s) : *s;
                c.api.token.pos = r_.pos(v);
                c.api.token.key = p + "." + key;
            }
        };
        take("token_env", TokenSpec::Kind::Env);
        take("token_file", TokenSpec::Kind::File);
        take("credential", TokenSpec::Kind::Credential);
        if (n["token"]) {
            if (!allow_inline) {
                r_.error(n["token"], p + ".token",
                         "a token written in the config file is refused; use token_env, token_file "
                         "or credential (or set allow_inline_token: true)");
                ++sources;
            } else {
                take("token", TokenSpec::Kind::Inline);
                c.warnings.push_back("api.token is written in the config file; prefer token_env, "
                                     "token_file or credential");
            }
        }
        if (sources > 1)
            r_.error(n, p, "give exactly one of token_env, token_file, credential, token");
    }

    static bool is_loopback_url(std::string_view url) {
        auto rest = url.substr(url.find("//") + 2);
        return rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]");
    }

    void parse_http(const YAML::Node& n, HttpConfig& h, std::vector<std::string>& warnings) {
        const std::string p = "http";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"connections", "connect_timeout", "request_timeout", "idle_timeout",
                             "max_response_bytes", "ca_file", "insecure"});
        auto integer = [&](long long lo, long long hi) {
            return [&, lo, hi](auto& v, auto path) { return r_.integer(v, path, lo, hi); };
        };
        auto duration = [&](auto& v, auto path) { return r_.duration(v, path); };
        r_.optional_field(n, p, "connections", h.connections, integer(1, 1024));
        r_.optional_field(n, p, "connect_timeout", h.connect_timeout, duration);
        r_.optional_field(n, p, "request_timeout", h.request_timeout, duration);
        r_.optional_field(n, p, "idle_timeout", h.idle_timeout, duration);
        r_.optional_field(n, p, "max_response_bytes", h.max_response_bytes,
                          [&](auto& v, auto path) { return r_.size(v, path); });
        r_.optional_field(n, p, "ca_file", h.ca_file,
                          [&](auto& v, auto path) { return r_.string(v, path); });
        h.ca_file = resolve(h.ca_file);
        r_.optional_field(n, p, "insecure", h.insecure,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        if (h.insecure)
            warnings.push_back("http.insecure is true: TLS certificates are NOT verified");
    }

    void parse_rate_limit(const YAML::Node& n, RateLimitConfig& rl) {
        const std::string p = "rate_limit";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"requests_per_second", "burst", "daily_quota", "adaptive",
                             "max_in_flight"});
        r_.optional_field(n, p, "requests_per_second", rl.requests_per_second,
                          [&](auto& v, auto path) { return r_.number(v, path, 0.001); });
        r_.optional_field(n, p, "burst", rl.burst,
                          [&](auto& v, auto path) { return r_.integer(v, path, 1, 100000); });
        r_.optional_field(n, p, "daily_quota", rl.daily_quota,
                          [&](auto& v, auto path) { return r_.integer(v, path, 0, 1LL << 40); });
        r_.optional_field(n, p, "adaptive", rl.adaptive,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(n, p, "max_in_flight", rl.max_in_flight,
                          [&](auto& v, auto path) { return r_.integer(v, path, 1, 4096); });
    }

    void parse_retry(const YAML::Node& n, RetryConfig& rt) {
        const std::string p = "retry";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"max_attempts", "base_delay", "max_delay"});
        r_.optional_field(n, p, "max_attempts", rt.max_attempts,
                          [&](auto& v, auto path) { return r_.integer(v, path, 1, 1000); });
        auto duration = [&](auto& v, auto path) { return r_.duration(v, path); };
        r_.optional_field(n, p, "base_delay", rt.base_delay, duration);
        r_.optional_field(n, p, "max_delay", rt.max_delay, duration);
        if (rt.max_delay < rt.base_delay)
            r_.error(n, p + ".max_delay", "must not be smaller than retry.base_delay");
    }

    void parse_journal(const YAML::Node& n, JournalConfig& j) {
        const std::string p = "journal";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"path", "retain_days"});
        r_.optional_field(n, p, "path", j.path,
                          [&](auto& v, auto path) { return r_.string(v, path); });
        r_.optional_field(n, p, "retain_days", j.retain_days,
                          [&](auto& v, auto path) { return r_.integer(v, path, 1, 36500); });
    }

    void parse_log(const YAML::Node& n, LogConfig& l) {
        const std::string p = "log";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"level", "bodies"});
        if (auto v = n["level"]) {
            if (auto s = r_.string(v, p + ".level")) {
                static const std::vector<std::string_view> levels{"trace", "debug", "info", "warn",
                                                                  "error"};
                if (std::find(levels.begin(), levels.end(), *s) == levels.end())
                    r_.error(v, p + ".level", "expected one of trace, debug, info, warn, error");
                else
                    l.level = *s;
            }
        }
        r_.optional_field(n, p, "bodies", l.bodies,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
    }

    void parse_jobs(const YAML::Node& n, Config& c) {
        if (!r_.expect_map(n, "jobs")) return;
        for (auto& [name, node] : r_.entries(n, "jobs")) {
            std::string p = "jobs." + name;
            bool valid_name = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
                return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
            });
            if (!valid_name) {
                r_.error(node, p, "job names may use letters, digits, '-' and '_' only");
                continue;
            }
            if (!r_.expect_map(node, p)) continue;
            c.jobs.push_back(parse_job(name, node, p, c));
        }
    }

    JobConfig parse_job(const std::string& name, const YAML::Node& n, const std::string& p,
                        Config& c) {
        JobConfig job;
        job.name = name;
        job.pos = r_.pos(n);
        if (n["pull"]) return parse_pull_job(std::move(job), n, p, c);
        r_.check_keys(n, p, {"mode", "schedule", "source", "identity", "mapping", "sink", "pull"});
        if (auto v = n["mode"]) {
            if (auto s = r_.string(v, p + ".mode")) {
                static const std::vector<std::pair<std::string_view, Mode>> modes{
                    {"create", Mode::Create},   {"update", Mode::Update},
                    {"upsert", Mode::Upsert},   {"replace", Mode::Replace},
                    {"delete", Mode::Delete},   {"archive", Mode::Archive}};
                auto it = std::find_if(modes.begin(), modes.end(),
                                       [&](auto& m) { return m.first == *s; });
                if (it != modes.end()) {
                    job.mode = it->second;
                } else {
                    std::vector<std::string_view> names;
                    for (auto& m : modes) names.push_back(m.first);
                    auto hint = base::suggest(*s, names);
                    r_.error(v, p + ".mode",
                             "unknown mode \"" + *s + "\"" +
                                 (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                                 "; expected create, update, upsert, replace, delete or archive");
                }
            }
        }
        parse_schedule(n, p, job);
        if (auto v = n["source"]) parse_source(v, p + ".source", job, c);
        else r_.error(n, p + ".source", "is required (where the rows come from)");
        if (auto v = n["identity"]) parse_identity(v, p + ".identity", job);
        else r_.error(n, p + ".identity", "is required (alternate_id_type + column, or profile_id_column)");

        bool needs_body = job.mode != Mode::Delete;
        if (auto v = n["mapping"]) {
            if (!needs_body) {
                r_.error(v, p + ".mapping", "delete jobs send no body; remove the mapping");
            } else {
                const auto& schema =
                    job.mode == Mode::Archive ? api::archive_schema() : api::profile_schema();
                job.mapping = parse_mapping(r_, v, p + ".mapping", schema);
            }
        } else if (needs_body) {
            r_.error(n, p + ".mapping", "is required for mode " + std::string(to_string(job.mode)));
        }
        if (job.mode == Mode::Archive && !job.identity.by_profile_id() && n["identity"])
            r_.error(n["identity"], p + ".identity",
                     "archive addresses profiles by id: use profile_id_column");
        if (auto v = n["sink"]) r_.error(v, p + ".sink", "is for pull jobs (with a pull: section); push jobs write to the API");
        return job;
    }

    void parse_daemon(const YAML::Node& n, DaemonConfig& d) {
        const std::string p = "daemon";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"timezone", "catch_up", "shutdown_timeout", "metrics_listen", "verify", "verify_interval"});
        r_.optional_field(n, p, "verify", d.verify, [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(n, p, "verify_interval", d.verify_interval,
                          [&](auto& v, auto path) { return r_.duration(v, path); });
        r_.optional_field(n, p, "timezone", d.timezone, [&](auto& v, auto path) { return r_.string(v, path); });
        if (d.timezone != "UTC" && !fs::exists(fs::path("/usr/share/zoneinfo") / d.timezone))
            r_.error(n["timezone"], p + ".timezone", "unknown time zone \"" + d.timezone +
                                                         "\" (an IANA name such as Europe/Berlin; tzdata installed?)");
        r_.optional_field(n, p, "catch_up", d.catch_up, [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(n, p, "shutdown_timeout", d.shutdown_timeout,
                          [&](auto& v, auto path) { return r_.duration(v, path); });
        r_.optional_field(n, p, "metrics_listen", d.metrics_listen, [&](auto& v, auto path) { return r_.string(v, path); });
        if (!d.metrics_listen.empty()) {
            auto colon = d.metrics_listen.rfind(':');
            bool loopback = d.metrics_listen.starts_with("127.") || d.metrics_listen.starts_with("localhost:") ||
                            d.metrics_listen.starts_with("[::1]:");
            if (colon == std::string::npos || !loopback)
                r_.error(n["metrics_listen"], p + ".metrics_listen",
                         "must be a loopback HOST:PORT such as 127.0.0.1:9464 (metrics are not for the network)");
        }
    }

    void parse_schedule(const YAML::Node& n, const std::string& p, JobConfig& job) {
        if (auto v = n["schedule"]) {
            if (auto s = r_.string(v, p + ".schedule")) {
                if (auto problem = check_schedule(*s); !problem.empty())
                    r_.error(v, p + ".schedule", problem);
                job.schedule = *s;
            }
        }
    }

    JobConfig parse_pull_job(JobConfig job, const YAML::Node& n, const std::string& p, Config& c) {
        r_.check_keys(n, p, {"schedule", "pull", "source", "identity", "sink"});
        parse_schedule(n, p, job);
        auto& pull = job.pull.emplace();
        auto pn = n["pull"];
        auto pp = p + ".pull";
        pull.pos = r_.pos(pn);
        if (!r_.expect_map(pn, pp)) return job;
        r_.check_keys(pn, pp, {"searches", "history", "filter_id", "implied", "match_inactive", "reconcile"});
        if (auto v = pn["searches"]) {
            if (!v.IsSequence()) {
                r_.error(v, pp + ".searches", "must be a list of { endpoint: ..., params: {...} }");
            } else {
                for (std::size_t i = 0; i < v.size(); ++i) parse_search(v[i], pp + ".searches[" + std::to_string(i) + "]", pull);
            }
        }
        if (auto v = pn["history"]) {
            if (auto s = r_.string(v, pp + ".history")) {
                static const std::vector<std::pair<std::string_view, HistoryKind>> kinds{
                    {"Consents", HistoryKind::Consents}, {"ContactElements", HistoryKind::ContactElements},
                    {"CustomFields", HistoryKind::CustomFields}, {"Preferences", HistoryKind::Preferences},
                    {"StandardFields", HistoryKind::StandardFields}};
                auto it = std::find_if(kinds.begin(), kinds.end(), [&](auto& k) { return k.first == *s; });
                if (it != kinds.end()) {
                    pull.history = it->second;
                } else {
                    std::vector<std::string_view> names;
                    for (auto& k : kinds) names.push_back(k.first);
                    auto hint = base::suggest(*s, names);
                    r_.error(v, pp + ".history", "unknown history \"" + *s + "\"" +
                                                     (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                                                     "; expected Consents, ContactElements, CustomFields, "
                                                     "Preferences or StandardFields");
                }
            }
        }
        r_.optional_field(pn, pp, "filter_id", pull.filter_id, [&](auto& v, auto path) { return r_.string(v, path); });
        if (!pull.filter_id.empty() && pull.history != HistoryKind::Preferences)
            r_.error(pn["filter_id"], pp + ".filter_id", "applies to history: Preferences only");
        r_.optional_field(pn, pp, "implied", pull.implied, [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(pn, pp, "match_inactive", pull.match_inactive,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(pn, pp, "reconcile", pull.reconcile, [&](auto& v, auto path) { return r_.string(v, path); });

        if (auto v = n["source"]) {
            job.has_source = true;
            parse_source(v, p + ".source", job, c);
            if (auto id = n["identity"]) parse_identity(id, p + ".identity", job);
            else r_.error(n, p + ".identity", "is required with a source (alternate_id_type + column, or profile_id_column)");
        } else if (n["identity"]) {
            r_.error(n["identity"], p + ".identity", "goes with a source (the identities to pull)");
        }
        if (job.has_source && !pull.reconcile.empty())
            r_.error(pn["reconcile"], pp + ".reconcile", "reads the push job's source; remove this job's source");
        bool identities = job.has_source || !pull.reconcile.empty();
        if (!identities && pull.searches.empty())
            r_.error(pn, pp, "give identities to pull (source + identity, or reconcile: PUSH_JOB) or searches");
        if (pull.history && !identities)
            r_.error(pn["history"], pp + ".history", "is pulled per identity: give a source + identity (or reconcile)");
        if (pull.history && !pull.searches.empty())
            r_.error(pn["history"], pp + ".history", "and searches go in separate jobs");
        if (auto v = n["sink"]) parse_sink(v, p + ".sink", job, c.warnings);
        else r_.error(n, p + ".sink", "is required (where pulled profiles go)");
        return job;
    }

    void parse_search(const YAML::Node& n, const std::string& p, PullConfig& pull) {
        SearchSpec search;
        search.pos = r_.pos(n);
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"endpoint", "params"});
        static const std::vector<std::string_view> endpoints{
            "Address", "CustomFields", "CustomFields/SelectList", "Email", "Name", "Name/Partial", "Phone",
            "Attributes", "Tags", "Groups/AlternateId", "Groups/Email", "Groups", "Groups/Phone", "Groups/Primary"};
        if (auto v = n["endpoint"]) {
            if (auto s = r_.string(v, p + ".endpoint")) {
                search.endpoint = *s;
                bool primary = s->starts_with("Groups/Primary/") && s->size() > 15 &&
                               std::all_of(s->begin() + 15, s->end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
                if (!primary && std::find(endpoints.begin(), endpoints.end(), *s) == endpoints.end()) {
                    auto hint = base::suggest(*s, endpoints);
                    r_.error(v, p + ".endpoint", "unknown search \"" + *s + "\"" +
                                                     (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                                                     "; expected Address, CustomFields, CustomFields/SelectList, Email, "
                                                     "Name, Name/Partial, Phone, Attributes, Tags, Groups, Groups/AlternateId, "
                                                     "Groups/Email, Groups/Phone or Groups/Primary/PROFILE_ID");
                }
            }
        } else {
            r_.error(n, p + ".endpoint", "is required (e.g. Email, Tags, CustomFields)");
        }
        if (auto v = n["params"]) {
            for (auto& [key, value] : r_.entries(v, p + ".params")) {
                if (auto s = r_.string(value, p + ".params." + key)) search.params.emplace_back(key, *s);
            }
        }
        pull.searches.push_back(std::move(search));
    }

    void parse_source(const YAML::Node& n, const std::string& p, JobConfig& job, Config& c) {
        auto& s = job.source;
        s.pos = r_.pos(n);
        s.key_path = p;
        if (!r_.expect_map(n, p)) return;
        auto type = n["type"] ? r_.string(n["type"], p + ".type") : std::optional<std::string>();
        if (!n["type"]) r_.error(n, p + ".type", "is required (csv, sqlite or postgres)");
        if (!type) return;
        s.type = *type;
        if (s.type == "csv") {
            parse_csv_source(n, p, s);
        } else if (s.type == "sqlite" || s.type == "postgres") {
            parse_sql_source(n, p, s, c.warnings);
        } else {
            auto hint = base::suggest(s.type, {"csv", "sqlite", "postgres"});
            r_.error(n["type"], p + ".type",
                     "unknown source type \"" + s.type + "\"" +
                         (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                         "; expected csv, sqlite or postgres");
            return;
        }
        r_.optional_field(n, p, "reject_file", s.reject_file,
                          [&](auto& v, auto path) { return r_.string(v, path); });
        if (s.reject_file.empty()) {
            auto dir = fs::path(c.journal.path).parent_path();
            s.reject_file = (dir / "rejects" / (job.name + ".rejects.txt")).string();
        } else {
            s.reject_file = resolve(s.reject_file);
        }
    }

    void parse_csv_source(const YAML::Node& n, const std::string& p, SourceConfig& s) {
        r_.check_keys(n, p, {"type", "path", "delimiter", "header", "columns", "reject_file",
                             "max_record_bytes"});
        if (auto v = n["path"]) {
            if (auto path = r_.string(v, p + ".path")) s.path = resolve(*path);
        } else {
            r_.error(n, p + ".path", "is required (the CSV file to read)");
        }
        if (auto v = n["delimiter"]) {
            if (auto d = r_.string(v, p + ".delimiter")) {
                std::string delim = *d == "\\t" ? "\t" : *d;
                if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
                    r_.error(v, p + ".delimiter", "must be one character (not a quote or newline); "
                                                  "write \"\\t\" for tab");
                else
                    s.delimiter = delim[0];
            }
        }
        r_.optional_field(n, p, "header", s.header,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        if (auto v = n["columns"]) {
            if (auto cols = r_.string_list(v, p + ".columns")) s.columns = *cols;
        }
        if (!s.header && s.columns.empty())
            r_.error(n, p + ".columns", "is required when header: false (the column names)");
        if (s.header && !s.columns.empty())
            r_.error(n["columns"], p + ".columns",
                     "is only for files without a header row (header: false)");
        r_.optional_field(n, p, "max_record_bytes", s.max_record_bytes,
                          [&](auto& v, auto path) { return r_.size(v, path); });
    }

    static constexpr std::array<std::string_view, 6> kPostgresKeys{
        "conninfo", "password_env", "password_file", "password_credential", "sslmode", "sslrootcert"};

    void parse_postgres(const YAML::Node& n, const std::string& p, PostgresConfig& pg,
                        std::vector<std::string>& warnings) {
        auto str = [&](const char* key, std::string& out) {
            if (auto v = n[key])
                if (auto value = r_.string(v, p + "." + key)) out = *value;
        };
        str("conninfo", pg.conninfo);
        if (!n["conninfo"])
            r_.error(n, p + ".conninfo",
                     "is required (libpq conninfo or URI, e.g. \"host=db dbname=crm user=prefsync\")");
        int passwords = 0;
        for (auto [key, kind] : {std::pair{"password_env", TokenSpec::Kind::Env},
                                 std::pair{"password_file", TokenSpec::Kind::File},
                                 std::pair{"password_credential", TokenSpec::Kind::Credential}}) {
            auto v = n[key];
            if (!v) continue;
            ++passwords;
            if (auto value = r_.string(v, p + "." + key)) {
                pg.password.kind = kind;
                pg.password.value = kind == TokenSpec::Kind::File ? resolve(*value) : *value;
                pg.password.pos = r_.pos(v);
                pg.password.key = p + "." + key;
            }
        }
        if (passwords > 1)
            r_.error(n, p, "give at most one of password_env, password_file, password_credential");
        if (pg.conninfo.find("password") != std::string::npos ||
            (pg.conninfo.find("://") != std::string::npos && pg.conninfo.find(':', pg.conninfo.find("://") + 3) <
                                                                  pg.conninfo.find('@')))
            warnings.push_back(p + ".conninfo contains a password; use password_env, password_file "
                                   "or password_credential");
        str("sslmode", pg.sslmode);
        if (!pg.sslmode.empty()) {
            static const std::vector<std::string_view> modes{"disable", "allow", "prefer", "require",
                                                             "verify-ca", "verify-full"};
            if (std::find(modes.begin(), modes.end(), pg.sslmode) == modes.end())
                r_.error(n["sslmode"], p + ".sslmode",
                         "expected disable, allow, prefer, require, verify-ca or verify-full");
        }
        str("sslrootcert", pg.sslrootcert);
        if (!pg.sslrootcert.empty()) pg.sslrootcert = resolve(pg.sslrootcert);
    }

    // Names that end up inside double-quoted SQL identifiers: a quote or NUL could break out.
    void check_identifier(const YAML::Node& v, const std::string& path, const std::string& name) {
        if (name.empty() || name.find('"') != std::string::npos || name.find('\0') != std::string::npos)
            r_.error(v, path, "must be a non-empty name without double quotes");
    }

    void parse_sql_source(const YAML::Node& n, const std::string& p, SourceConfig& s,
                          std::vector<std::string>& warnings) {
        bool pg = s.type == "postgres";
        std::vector<std::string_view> keys{"type", "table", "query", "incremental", "fetch_rows",
                                           "reject_file"};
        if (pg) {
            keys.insert(keys.end(), kPostgresKeys.begin(), kPostgresKeys.end());
        } else {
            keys.push_back("path");
        }
        r_.check_keys(n, p, keys);
        auto str = [&](const char* key, std::string& out) {
            if (auto v = n[key])
                if (auto value = r_.string(v, p + "." + key)) out = *value;
        };
        if (pg) {
            parse_postgres(n, p, s.postgres, warnings);
        } else {
            if (auto v = n["path"]) {
                if (auto path = r_.string(v, p + ".path")) s.path = resolve(*path);
            } else {
                r_.error(n, p + ".path", "is required (the SQLite database file)");
            }
        }
        str("table", s.table);
        str("query", s.query);
        if (n["table"]) check_identifier(n["table"], p + ".table", s.table);
        if (n["table"] && n["query"])
            r_.error(n, p, "give either table or query, not both");
        else if (!n["table"] && !n["query"])
            r_.error(n, p + ".table", "is required (or a query: SELECT ...)");
        r_.optional_field(n, p, "fetch_rows", s.fetch_rows, [&](auto& v, auto path) {
            return r_.integer(v, path, 1, 1000000);
        });
        if (auto v = n["incremental"]) {
            auto ip = p + ".incremental";
            if (!r_.expect_map(v, ip)) return;
            r_.check_keys(v, ip, {"column", "key", "overlap"});
            IncrementalConfig inc;
            inc.pos = r_.pos(v);
            for (auto [key, out] : {std::pair{"column", &inc.column}, std::pair{"key", &inc.key}}) {
                if (auto field = v[key]) {
                    if (auto value = r_.string(field, ip + "." + key)) {
                        *out = *value;
                        check_identifier(field, ip + "." + key, *out);
                    }
                } else {
                    r_.error(v, ip + "." + key,
                             std::string("is required (") +
                                 (std::string_view(key) == "column" ? "the column that grows with each change, e.g. updated_at"
                                                                     : "a unique column, e.g. id") + ")");
                }
            }
            r_.optional_field(v, ip, "overlap", inc.overlap,
                              [&](auto& node, auto path) { return r_.duration(node, path); });
            s.incremental = inc;
        }
    }

    void parse_identity(const YAML::Node& n, const std::string& p, JobConfig& job) {
        auto& id = job.identity;
        id.pos = r_.pos(n);
        id.key_path = p;
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"alternate_id_type", "column", "profile_id_column"});
        auto str = [&](const char* key, std::string& out) {
            if (auto v = n[key])
                if (auto s = r_.string(v, p + "." + key)) out = *s;
        };
        str("alternate_id_type", id.alternate_id_type);
        str("column", id.column);
        str("profile_id_column", id.profile_id_column);
        bool by_alt = !id.alternate_id_type.empty() || !id.column.empty();
        if (by_alt && id.by_profile_id())
            r_.error(n, p, "give either alternate_id_type + column, or profile_id_column, not both");
        else if (by_alt && (id.alternate_id_type.empty() || id.column.empty()))
            r_.error(n, p, "alternate_id_type and column go together");
        else if (!by_alt && !id.by_profile_id())
            r_.error(n, p, "give alternate_id_type + column, or profile_id_column");
        bool needs_alt = !job.pull && (job.mode == Mode::Create || job.mode == Mode::Upsert);
        if (needs_alt && id.by_profile_id())
            r_.error(n, p, "mode " + std::string(to_string(job.mode)) +
                               " identifies profiles by alternate id: use alternate_id_type + column");
    }

    void parse_sink(const YAML::Node& n, const std::string& p, JobConfig& job,
                    std::vector<std::string>& warnings) {
        SinkConfig sink;
        sink.pos = r_.pos(n);
        sink.key_path = p;
        if (!r_.expect_map(n, p)) return;
        if (auto v = n["type"]) {
            if (auto s = r_.string(v, p + ".type")) {
                if (*s != "csv" && *s != "jsonl" && *s != "sqlite" && *s != "postgres")
                    r_.error(v, p + ".type", "expected csv, jsonl, sqlite or postgres");
                sink.type = *s;
            }
        } else {
            r_.error(n, p + ".type", "is required (csv, jsonl, sqlite or postgres)");
        }
        bool sql = sink.type == "sqlite" || sink.type == "postgres";
        std::vector<std::string_view> keys{"type", "columns"};
        if (sink.type == "csv") keys.push_back("each");
        if (sql) keys.push_back("key");
        if (sink.type != "postgres") keys.push_back("path");
        if (sql) keys.push_back("table");
        if (sink.type == "postgres") keys.insert(keys.end(), kPostgresKeys.begin(), kPostgresKeys.end());
        r_.check_keys(n, p, keys);
        if (sink.type != "postgres") {
            if (auto v = n["path"]) {
                if (auto s = r_.string(v, p + ".path")) sink.path = resolve(*s);
            } else {
                r_.error(n, p + ".path", "is required (the file to write)");
            }
        }
        if (sql) {
            if (auto v = n["table"]) {
                if (auto s = r_.string(v, p + ".table")) {
                    sink.table = *s;
                    check_identifier(v, p + ".table", sink.table);
                }
            } else {
                r_.error(n, p + ".table", "is required (created if missing)");
            }
        }
        if (sink.type == "postgres") parse_postgres(n, p, sink.postgres, warnings);
        if (auto v = n["columns"]) {
            for (auto& [name, value] : r_.entries(v, p + ".columns")) {
                if (auto path = r_.string(value, p + ".columns." + name)) {
                    if (sql) check_identifier(value, p + ".columns." + name, name);
                    sink.columns.push_back({name, *path, r_.pos(value)});
                }
            }
        } else if (sink.type == "csv" || sql) {
            r_.error(n, p + ".columns", "is required (output column: JSON path, e.g. first_name: CustomerName.FirstName)");
        }
        r_.optional_field(n, p, "each", sink.each, [&](auto& v, auto path) { return r_.string(v, path); });
        r_.optional_field(n, p, "key", sink.key, [&](auto& v, auto path) { return r_.string(v, path); });
        if (sql && n["columns"]) {
            if (sink.key.empty()) {
                for (auto& col : sink.columns)
                    if (col.path == "ProfileId") sink.key = col.name;
                if (sink.key.empty())
                    r_.error(n, p + ".key", "is required: a column with path ProfileId, or name the upsert key column");
            } else if (std::none_of(sink.columns.begin(), sink.columns.end(), [&](auto& col) { return col.name == sink.key; })) {
                r_.error(n["key"], p + ".key", "must name one of the columns");
            }
        }
        job.sink = sink;
    }

    YamlReader r_;
    fs::path base_dir_;
};

}  // namespace

Config parse_config(std::string_view yaml_text, const std::string& file_name,
                    const EnvLookup& env) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        SourcePos pos{file_name, e.mark.line >= 0 ? e.mark.line + 1 : 0,
                      e.mark.column >= 0 ? e.mark.column + 1 : 0};
        throw ConfigError({{pos, "", "invalid YAML: " + e.msg}});
    }
    ConfigParser parser(file_name, env);
    Config config = parser.parse(root);
    auto& diagnostics = parser.diagnostics();
    if (!diagnostics.empty()) {
        // In file order, whatever order the sections were checked in.
        std::stable_sort(diagnostics.begin(), diagnostics.end(), [](auto& a, auto& b) {
            return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
        });
        throw ConfigError(std::move(diagnostics));
    }
    return config;
}

Config load_config(const std::string& path, const EnvLookup& env) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError({{SourcePos{path, 0, 0}, "", "cannot read the config file"}});
    std::stringstream text;
    text << in.rdbuf();
    return parse_config(text.str(), path, env);
}

std::string resolve_token(const Config& config, const EnvLookup& env) {
    if (config.api.token.kind == TokenSpec::Kind::None)
        throw ConfigError({{SourcePos{config.file, 0, 0}, "api",
                            "no API token configured: set api.token_env, api.token_file or api.credential"}});
    return read_secret(config.api.token, SourcePos{config.file, 0, 0}, "api", "API token", env);
}

std::string resolve_password(const PostgresConfig& postgres, const EnvLookup& env) {
    return read_secret(postgres.password, postgres.password.pos, postgres.password.key, "database password", env);
}

}  // namespace prefsync::config
