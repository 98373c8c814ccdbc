#include "config/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <boost/url/parse.hpp>

#include "config/config_keys.hpp"
#include "config/connector_types.hpp"
#include "connectors/source_keys.hpp"
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
        case Mode::Mirror: return "mirror";
    }
    return "?";
}

std::string_view to_string(OnMissing action) {
    switch (action) {
        case OnMissing::Ignore: return "ignore";
        case OnMissing::Deactivate: return "deactivate";
        case OnMissing::Archive: return "archive";
        case OnMissing::Delete: return "delete";
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
        auto part = field.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
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
            } else if (!parse(range.substr(0, dash), a) || !parse(range.substr(dash + 1), b) || a > b) {
                return false;
            }
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return true;
}

}  // namespace

std::string default_reject_file(const std::string& journal_path, const std::string& job) {
    return (fs::path(journal_path).parent_path() / "rejects" / (job + ".rejects.txt")).string();
}

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

// "csv, sqlite or postgres"
template <class Types>
std::vector<std::string_view> names_of(const Types& types) {
    std::vector<std::string_view> out;
    for (const auto& type : types) out.push_back(type.name);
    return out;
}

template <class Types>
auto find_type(const Types& types, std::string_view name) -> decltype(&types[0]) {
    for (const auto& type : types)
        if (type.name == name) return &type;
    return nullptr;
}

// The value of an Enum key, which read() has checked against the table, as the parser's enum.
template <class E>
E enum_of(const std::vector<std::pair<std::string_view, E>>& names, const std::string& value, const KeySpec& key) {
    for (const auto& [name, e] : names)
        if (name == value) return e;
    throw std::logic_error("config key " + std::string(key.name) + ": the parser has no value " + value);
}

class ConfigParser {
public:
    ConfigParser(const std::string& file, const EnvLookup& env) : r_(file, env) {}

    Config parse(const YAML::Node& root) {
        Config c;
        c.file = r_.file();
        if (!root || root.IsNull()) {
            r_.error(root, "", "the config file is empty");
            return c;
        }
        if (!r_.expect_map(root, "")) return c;
        r_.check_keys(root, "", root_keys());
        if (root["daemon"]) parse_daemon(root["daemon"], c.daemon);
        if (root["api"]) parse_api(root["api"], c);
        if (root["http"]) parse_http(root["http"], c.http);
        check_plain_http(root, c);
        if (root["rate_limit"]) parse_rate_limit(root["rate_limit"], c.rate_limit);
        if (root["retry"]) parse_retry(root["retry"], c.retry);
        if (root["journal"]) parse_journal(root["journal"], c.journal);
        if (root["log"]) parse_log(root["log"], c.log);
        if (c.log.bodies) r_.warn("log.bodies is true: profile bodies (personal data) will be logged");
        if (root["jobs"]) parse_jobs(root["jobs"], c);
        for (const auto& job : c.jobs) {
            if (!job.pull || job.pull->reconcile.empty()) continue;
            const auto* target = c.find_job(job.pull->reconcile);
            auto where = root["jobs"][job.name]["pull"]["reconcile"];
            if (!target)
                r_.error(where, "jobs." + job.name + ".pull.reconcile", "no job named \"" + job.pull->reconcile + "\"");
            else if (target->pull)
                r_.error(where, "jobs." + job.name + ".pull.reconcile",
                         "\"" + job.pull->reconcile + "\" is a pull job; name a push job");
        }
        if (c.rate_limit.max_in_flight == 0) c.rate_limit.max_in_flight = c.http.connections;
        c.warnings = std::move(r_.warnings());
        return c;
    }

    std::vector<Diagnostic>& diagnostics() { return r_.diagnostics(); }

private:
    void parse_api(const YAML::Node& n, Config& c) {
        const std::string p = "api";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = api_keys();
        r_.check_keys(n, p, keys);
        if (auto o = n["oauth"]) {
            std::string op = p + ".oauth";
            if (r_.expect_map(o, op)) {
                const auto& oauth = oauth_keys();
                r_.check_keys(o, op, oauth);
                if (r_.read(o, op, oauth.key("token_url"), c.api.oauth.token_url)) {
                    const auto& url = c.api.oauth.token_url;
                    if (!url.starts_with("https://") && !url.starts_with("http://"))
                        r_.error(o["token_url"], op + ".token_url", "must be an https:// URL");
                    else if (url.starts_with("http://") && !is_loopback_url(url))
                        r_.error(o["token_url"], op + ".token_url",
                                 "plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, "
                                 "localhost: a local emulator); the client secret would travel unencrypted, "
                                 "so use https://");
                }
                r_.read(o, op, oauth.key("client_id"), c.api.oauth.client_id);
                r_.read(o, op, oauth.key("refresh_before"), c.api.oauth.refresh_before);
            }
        }
        std::string base_url;
        if (r_.read(n, p, keys.key("base_url"), base_url)) {
            if (!base_url.starts_with("https://") && !base_url.starts_with("http://"))
                r_.error(n["base_url"], p + ".base_url", "must start with https:// (or http:// for a local emulator)");
            c.api.base_url = base_url;
            while (c.api.base_url.ends_with('/')) c.api.base_url.pop_back();
        }
        if (r_.read(n, p, keys.key("client_id"), c.api.client_id) && c.api.client_id.empty())
            r_.error(n["client_id"], p + ".client_id", "must not be empty");
        bool allow_inline = false;
        r_.read(n, p, keys.key("allow_inline_token"), allow_inline);
        // Which one is given is the table's rule (exactly one; none is reported where the token
        // is read): here each is read into the TokenSpec.
        auto take = [&](const char* key, TokenSpec::Kind kind) {
            auto v = n[key];
            if (!v) return;
            if (auto spec = read_secret_location(r_, v, p + "." + key, kind, "token")) c.api.token = std::move(*spec);
        };
        take("token_env", TokenSpec::Kind::Env);
        take("token_file", TokenSpec::Kind::File);
        take("credential", TokenSpec::Kind::Credential);
        if (n["token"]) {
            if (!allow_inline) {
                r_.error(n["token"], p + ".token",
                         "a token written in the config file is refused; use token_env, token_file "
                         "or credential (or set allow_inline_token: true)");
            } else {
                take("token", TokenSpec::Kind::Inline);
                r_.warn("api.token is written in the config file; prefer token_env, token_file or credential");
            }
        }
    }

    // The host as the HTTP client will parse it (Boost.URL), so "127.0.0.1@example.com" is
    // not taken for the loopback address it starts with. Boost 1.81 reads
    // "127.0.0.1.example.com/x" as the address 127.0.0.1 and the path ".example.com/x"; a
    // path after a host must start with "/", so such a URL is not loopback either.
    static bool is_loopback_url(std::string_view url) {
        auto parsed = boost::urls::parse_absolute_uri(url);
        if (!parsed || (!parsed->encoded_path().empty() && !parsed->encoded_path().starts_with("/"))) return false;
        switch (parsed->host_type()) {
            case boost::urls::host_type::ipv4: return parsed->host_ipv4_address().is_loopback();
            case boost::urls::host_type::ipv6: return parsed->host_ipv6_address().is_loopback();
            case boost::urls::host_type::name: {
                std::string host(parsed->encoded_host());
                std::transform(host.begin(), host.end(), host.begin(),
                               [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
                return host == "localhost";
            }
            default: return false;
        }
    }

    // Plain http:// hands the token, in every request, to anyone on the path. Only the local
    // emulator needs it; for anything else it takes http.insecure, which already says "this
    // connection is not protected" (TLS unverified), rather than a second opt-in to forget.
    void check_plain_http(const YAML::Node& root, const Config& c) {
        if (!c.api.base_url.starts_with("http://") || is_loopback_url(c.api.base_url)) return;
        if (c.http.insecure)
            r_.warn(
                "api.base_url uses plain http:// to a host that is not loopback: the API token travels "
                "UNENCRYPTED in every request (allowed by http.insecure)");
        else
            r_.error(root["api"]["base_url"], "api.base_url",
                     "plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost: a local "
                     "emulator); the token would travel unencrypted, so use https:// (or set http.insecure: true "
                     "to allow it anyway)");
    }

    // Reads every key of `keys` named in `fields` into its member: the sections whose keys
    // need nothing but their table's checks.
    template <class... Fields>
    void read_all(const YAML::Node& n, const std::string& p, const KeyTable& keys, Fields&&... fields) {
        (r_.read(n, p, keys.key(fields.first), *fields.second), ...);
    }

    void parse_http(const YAML::Node& n, HttpConfig& h) {
        const std::string p = "http";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = http_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"connections", &h.connections}, std::pair{"connect_timeout", &h.connect_timeout},
                 std::pair{"request_timeout", &h.request_timeout}, std::pair{"idle_timeout", &h.idle_timeout},
                 std::pair{"max_response_bytes", &h.max_response_bytes}, std::pair{"ca_file", &h.ca_file},
                 std::pair{"insecure", &h.insecure});
        if (h.insecure) r_.warn("http.insecure is true: TLS certificates are NOT verified");
    }

    void parse_rate_limit(const YAML::Node& n, RateLimitConfig& rl) {
        const std::string p = "rate_limit";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = rate_limit_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"requests_per_second", &rl.requests_per_second}, std::pair{"burst", &rl.burst},
                 std::pair{"daily_quota", &rl.daily_quota}, std::pair{"adaptive", &rl.adaptive},
                 std::pair{"max_in_flight", &rl.max_in_flight});
    }

    void parse_retry(const YAML::Node& n, RetryConfig& rt) {
        const std::string p = "retry";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = retry_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"max_attempts", &rt.max_attempts}, std::pair{"base_delay", &rt.base_delay},
                 std::pair{"max_delay", &rt.max_delay}, std::pair{"max_throttled", &rt.max_throttled});
        if (rt.max_delay < rt.base_delay) r_.error(n, p + ".max_delay", "must not be smaller than retry.base_delay");
        if (rt.max_throttled.count() <= 0)
            r_.error(n["max_throttled"], p + ".max_throttled",
                     "must be positive: a run answered only 429 for this long stops (set a long one, e.g. 1d, to "
                     "wait longer)");
    }

    void parse_journal(const YAML::Node& n, JournalConfig& j) {
        const std::string p = "journal";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = journal_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"path", &j.path}, std::pair{"retain_days", &j.retain_days});
    }

    void parse_log(const YAML::Node& n, LogConfig& l) {
        const std::string p = "log";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = log_keys();
        r_.check_keys(n, p, keys);
        std::string level, format;
        // The table allows only what the logger implements; its parse gives the value.
        if (r_.read(n, p, keys.key("level"), level))
            if (auto v = base::parse_log_level(level)) l.level = *v;
        if (r_.read(n, p, keys.key("format"), format))
            if (auto v = base::parse_log_format(format)) l.format = *v;
        r_.read(n, p, keys.key("bodies"), l.bodies);
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

    JobConfig parse_job(const std::string& name, const YAML::Node& n, const std::string& p, Config& c) {
        JobConfig job;
        job.name = name;
        job.pos = r_.pos(n);
        if (n["pull"]) return parse_pull_job(std::move(job), n, p, c);
        const auto& keys = push_job_keys();
        r_.check_keys(n, p, keys);
        std::string mode;
        if (r_.read(n, p, keys.key("mode"), mode)) {
            static const std::vector<std::pair<std::string_view, Mode>> modes{
                {"create", Mode::Create},   {"update", Mode::Update}, {"upsert", Mode::Upsert},
                {"replace", Mode::Replace}, {"delete", Mode::Delete}, {"archive", Mode::Archive},
                {"mirror", Mode::Mirror}};
            job.mode = enum_of(modes, mode, keys.key("mode"));
        }
        parse_schedule(n, p, keys, job);
        if (auto v = n["source"]) parse_source(v, p + ".source", job, c);
        if (auto v = n["identity"]) parse_identity(v, p + ".identity", job);

        bool needs_body = job.mode != Mode::Delete;
        if (auto v = n["mapping"]) {
            if (!needs_body) {
                r_.error(v, p + ".mapping", "delete jobs send no body; remove the mapping");
            } else {
                const auto& schema = job.mode == Mode::Archive ? api::archive_schema() : api::profile_schema();
                job.mapping = parse_mapping(r_, v, p + ".mapping", schema);
            }
        } else if (needs_body) {
            r_.error(n, p + ".mapping", "is required for mode " + std::string(to_string(job.mode)));
        }
        // W7 blanks every collection it is not sent: the AlternateIds too, which cuts the
        // profile off from every system that finds it by one (the next upsert by one creates
        // another profile). By alternate id, prefsync adds the job's own to each body.
        if (job.mode == Mode::Replace && job.identity.by_profile_id() && n["mapping"] &&
            std::none_of(job.mapping.fields.begin(), job.mapping.fields.end(),
                         [](const FieldEntry& f) { return f.name == "AlternateIds"; }))
            r_.error(n["mapping"], p + ".mapping",
                     "mode replace by profile id sends a PUT, which blanks what it does not send, the profile's "
                     "AlternateIds too: map AlternateIds, or address profiles by alternate id "
                     "(identity.alternate_id_type and column; prefsync then keeps that id in every body), or use mode "
                     "update");
        if (job.mode == Mode::Archive && !job.identity.by_profile_id() && n["identity"])
            r_.error(n["identity"], p + ".identity", "archive addresses profiles by id: use profile_id_column");
        parse_convergence(n, p, keys, job);
        return job;
    }

    // on_removed, on_missing, max_missing, deleted_column: how a job follows what leaves the source.
    void parse_convergence(const YAML::Node& n, const std::string& p, const KeyTable& keys, JobConfig& job) {
        std::string value;
        if (r_.read(n, p, keys.key("on_removed"), value)) {
            job.on_removed =
                enum_of(std::vector<std::pair<std::string_view, OnRemoved>>{{"deactivate", OnRemoved::Deactivate},
                                                                            {"remove", OnRemoved::Remove}},
                        value, keys.key("on_removed"));
            if (job.mode != Mode::Mirror)
                r_.error(n["on_removed"], p + ".on_removed",
                         "applies to mode mirror (elements removed from a profile)");
        }
        if (r_.read(n, p, keys.key("on_missing"), value)) {
            job.on_missing =
                enum_of(std::vector<std::pair<std::string_view, OnMissing>>{{"ignore", OnMissing::Ignore},
                                                                            {"deactivate", OnMissing::Deactivate},
                                                                            {"archive", OnMissing::Archive},
                                                                            {"delete", OnMissing::Delete}},
                        value, keys.key("on_missing"));
            if (job.mode == Mode::Delete || job.mode == Mode::Archive)
                r_.error(
                    n["on_missing"], p + ".on_missing",
                    "does not apply to mode " + std::string(to_string(job.mode)) + " (its rows are what it removes)");
        }
        if (r_.read(n, p, keys.key("max_missing"), value)) {
            MissingLimit limit;
            limit.text = value;
            limit.percent = !value.empty() && value.back() == '%';
            auto digits = limit.percent ? value.substr(0, value.size() - 1) : value;
            char* end = nullptr;
            double number = digits.empty() ? -1 : std::strtod(digits.c_str(), &end);
            bool ok = end && *end == '\0' && number >= 0 && (!limit.percent || number <= 100) &&
                      (limit.percent || number == static_cast<double>(static_cast<std::int64_t>(number)));
            if (ok) {
                limit.value = number;
                job.max_missing = limit;
            } else {
                r_.error(n["max_missing"], p + ".max_missing",
                         "expected a share such as 5% or a number of rows such as 200, got \"" + value + "\"");
            }
        }
        r_.read(n, p, keys.key("deleted_column"), job.deleted_column);
        if (!job.deleted_column.empty() && job.on_missing == OnMissing::Ignore)
            r_.error(n["deleted_column"], p + ".deleted_column",
                     "says which rows are deleted, but on_missing is ignore: set on_missing to deactivate, archive or "
                     "delete");
    }

    void parse_daemon(const YAML::Node& n, DaemonConfig& d) {
        const std::string p = "daemon";
        if (!r_.expect_map(n, p)) return;
        const auto& keys = daemon_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"verify", &d.verify}, std::pair{"verify_interval", &d.verify_interval},
                 std::pair{"timezone", &d.timezone}, std::pair{"catch_up", &d.catch_up},
                 std::pair{"shutdown_timeout", &d.shutdown_timeout}, std::pair{"metrics_listen", &d.metrics_listen});
        std::error_code tz_error;  // a name too long for a path is unknown too, not an exception
        if (d.timezone != "UTC" && !fs::exists(fs::path("/usr/share/zoneinfo") / d.timezone, tz_error))
            r_.error(
                n["timezone"], p + ".timezone",
                "unknown time zone \"" + d.timezone + "\" (an IANA name such as Europe/Berlin; tzdata installed?)");
        if (!d.metrics_listen.empty()) {
            auto colon = d.metrics_listen.rfind(':');
            bool loopback = d.metrics_listen.starts_with("127.") || d.metrics_listen.starts_with("localhost:") ||
                            d.metrics_listen.starts_with("[::1]:");
            if (colon == std::string::npos || !loopback)
                r_.error(n["metrics_listen"], p + ".metrics_listen",
                         "must be a loopback HOST:PORT such as 127.0.0.1:9464 (metrics are not for the network)");
            else if (!parse_port(std::string_view(d.metrics_listen).substr(colon + 1)))
                r_.error(n["metrics_listen"], p + ".metrics_listen",
                         "port \"" + d.metrics_listen.substr(colon + 1) + "\" is not a number from 0 to 65535");
        }
    }

    void parse_schedule(const YAML::Node& n, const std::string& p, const KeyTable& keys, JobConfig& job) {
        if (!r_.read(n, p, keys.key("schedule"), job.schedule)) return;
        if (auto problem = check_schedule(job.schedule); !problem.empty())
            r_.error(n["schedule"], p + ".schedule", problem);
    }

    JobConfig parse_pull_job(JobConfig job, const YAML::Node& n, const std::string& p, Config& c) {
        const auto& job_keys = pull_job_keys();
        r_.check_keys(n, p, job_keys);
        parse_schedule(n, p, job_keys, job);
        auto& pull = job.pull.emplace();
        auto pn = n["pull"];
        auto pp = p + ".pull";
        pull.pos = r_.pos(pn);
        if (!r_.expect_map(pn, pp)) return job;
        const auto& keys = pull_keys();
        r_.check_keys(pn, pp, keys);
        if (auto v = pn["searches"]) {
            if (!v.IsSequence()) {
                r_.error(v, pp + ".searches", "must be a list of { endpoint: ..., params: {...} }");
            } else {
                for (std::size_t i = 0; i < v.size(); ++i)
                    parse_search(v[i], pp + ".searches[" + std::to_string(i) + "]", pull);
            }
        }
        std::string history;
        if (r_.read(pn, pp, keys.key("history"), history)) {
            static const std::vector<std::pair<std::string_view, HistoryKind>> kinds{
                {"Consents", HistoryKind::Consents},
                {"ContactElements", HistoryKind::ContactElements},
                {"CustomFields", HistoryKind::CustomFields},
                {"Preferences", HistoryKind::Preferences},
                {"StandardFields", HistoryKind::StandardFields}};
            pull.history = enum_of(kinds, history, keys.key("history"));
        }
        r_.read(pn, pp, keys.key("filter_id"), pull.filter_id);
        if (!pull.filter_id.empty() && pull.history != HistoryKind::Preferences)
            r_.error(pn["filter_id"], pp + ".filter_id", "applies to history: Preferences only");
        read_all(pn, pp, keys, std::pair{"implied", &pull.implied}, std::pair{"match_inactive", &pull.match_inactive},
                 std::pair{"reconcile", &pull.reconcile});

        // source and identity go together: the table's rule.
        if (auto v = n["source"]) {
            job.has_source = true;
            parse_source(v, p + ".source", job, c);
            if (auto id = n["identity"]) parse_identity(id, p + ".identity", job);
        }
        if (job.has_source && !pull.reconcile.empty())
            r_.error(pn["reconcile"], pp + ".reconcile", "reads the push job's source; remove this job's source");
        bool identities = job.has_source || !pull.reconcile.empty();
        if (!identities && pull.searches.empty())
            r_.error(pn, pp, "give identities to pull (source + identity, or reconcile: PUSH_JOB) or searches");
        if (pull.history && !identities)
            r_.error(pn["history"], pp + ".history", "is pulled per identity: give a source + identity (or reconcile)");
        // The push job's body is a profile; a history answer is the profile's basic fields and
        // one trail, so every identity would be reported differing.
        if (pull.history && !pull.reconcile.empty())
            r_.error(pn["reconcile"], pp + ".reconcile",
                     "compares the push job's bodies with profiles, not with history answers: remove history (or "
                     "reconcile, and pull the history in a job with source + identity)");
        if (pull.history && !pull.searches.empty())
            r_.error(pn["history"], pp + ".history", "and searches go in separate jobs");
        if (auto v = n["sink"]) parse_sink(v, p + ".sink", job);
        if (pull.history == HistoryKind::StandardFields && job.sink)
            check_history_key(n["sink"], p + ".sink", *job.sink);
        return job;
    }

    // H5 answers {"UserProfilePreferences": [...]}: the ProfileId is in each entry, not at the
    // top (H1–H4 have it there), so a table keyed on the path ProfileId would have no key for
    // any profile and every item would fail.
    void check_history_key(const YAML::Node& n, const std::string& p, const SinkConfig& sink) {
        for (const auto& column : sink.columns())
            if (column.name == sink.key() && column.path == "ProfileId")
                r_.error(n, p + ".key",
                         "history StandardFields answers have no top-level ProfileId (each entry of "
                         "UserProfilePreferences has one), so column \"" +
                             column.name +
                             "\" would be empty for every profile: key the table on "
                             "UserProfilePreferences[0].ProfileId, or write a csv sink with each: "
                             "UserProfilePreferences");
    }

    void parse_search(const YAML::Node& n, const std::string& p, PullConfig& pull) {
        SearchSpec search;
        search.pos = r_.pos(n);
        if (!r_.expect_map(n, p)) return;
        const auto& keys = search_keys();
        r_.check_keys(n, p, keys);
        r_.read(n, p, keys.key("endpoint"), search.endpoint);
        if (auto v = n["params"]; v && r_.expect_map(v, p + ".params")) {
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
        const auto* type = connector_type(n, p, source_types(), "source");
        if (!type) return;
        s.settings = type->parse(r_, n, p);
        r_.read(n, p, connectors::kRejectFileKey, s.reject_file);
        if (s.reject_file.empty()) s.reject_file = default_reject_file(c.journal.path, job.name);
    }

    void parse_identity(const YAML::Node& n, const std::string& p, JobConfig& job) {
        auto& id = job.identity;
        id.pos = r_.pos(n);
        id.key_path = p;
        if (!r_.expect_map(n, p)) return;
        // Which of them are given together is the table's rule.
        const auto& keys = identity_keys();
        r_.check_keys(n, p, keys);
        read_all(n, p, keys, std::pair{"alternate_id_type", &id.alternate_id_type}, std::pair{"column", &id.column},
                 std::pair{"profile_id_column", &id.profile_id_column});
        std::vector<std::string> names;
        if (r_.read(n, p, keys.key("normalize"), names)) {
            static const std::vector<std::pair<std::string_view, Normalize>> kinds{
                {"lowercase", Normalize::Lowercase},
                {"uppercase", Normalize::Uppercase},
                {"digits", Normalize::Digits},
                {"collapse_spaces", Normalize::CollapseSpaces}};
            for (const auto& name : names) id.normalize.push_back(enum_of(kinds, name, keys.key("normalize")));
            if (id.by_profile_id())
                r_.error(n["normalize"], p + ".normalize", "cleans an alternate id; a profile id is read as a number");
        }
        bool needs_alt = !job.pull && (job.mode == Mode::Create || job.mode == Mode::Upsert);
        if (needs_alt && id.by_profile_id())
            r_.error(n, p,
                     "mode " + std::string(to_string(job.mode)) +
                         " identifies profiles by alternate id: use alternate_id_type + column");
    }

    void parse_sink(const YAML::Node& n, const std::string& p, JobConfig& job) {
        SinkConfig sink;
        sink.pos = r_.pos(n);
        sink.key_path = p;
        if (!r_.expect_map(n, p)) return;
        const auto* type = connector_type(n, p, sink_types(), "sink");
        if (!type) return;
        sink.settings = type->parse(r_, n, p);
        job.sink = std::move(sink);
    }

    // The connector the section's `type` names; nullptr (reported) when it is missing or unknown.
    template <class Types>
    auto connector_type(const YAML::Node& n, const std::string& p, const Types& types, std::string_view what)
        -> decltype(&types[0]) {
        auto names = names_of(types);
        auto v = n["type"];
        if (!v) {
            r_.error(n, p + ".type", "is required (" + join_alternatives(names) + ")");
            return nullptr;
        }
        auto name = r_.string(v, p + ".type");
        if (!name) return nullptr;
        if (const auto* type = find_type(types, *name)) return type;
        auto hint = base::suggest(*name, names);
        r_.error(v, p + ".type",
                 "unknown " + std::string(what) + " type \"" + *name + "\"" +
                     (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") + "; expected " +
                     join_alternatives(names));
        return nullptr;
    }

    YamlReader r_;
};

}  // namespace

Config parse_config(std::string_view yaml_text, const std::string& file_name, const EnvLookup& env) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        SourcePos pos{file_name, e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0};
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
    auto token = read_secret(config.api.token, SourcePos{config.file, 0, 0}, "api", "API token", env);
    // The token becomes an HTTP header value. An env file saved with Windows line endings
    // leaves a "\r" behind (as an editor leaves a newline in a file, already trimmed); a
    // line break or another control character inside would end the header early.
    while (!token.empty() && (token.back() == '\r' || token.back() == '\n')) token.pop_back();
    if (token.empty() || std::any_of(token.begin(), token.end(),
                                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
        throw ConfigError(
            {{config.api.token.pos.file.empty() ? SourcePos{config.file, 0, 0} : config.api.token.pos, "api",
              "the API token read through " + config.api.token.key +
                  (token.empty() ? " is empty" : " contains a line break or another control character") +
                  " (not shown)"}});
    return token;
}

}  // namespace prefsync::config
