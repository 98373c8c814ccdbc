#include "config/config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>
#include <type_traits>

#include <boost/url/parse.hpp>

#include "config/mapping_parser.hpp"
#include "config/yaml/yaml_reader.hpp"
#include "connectors/csv/csv_config.hpp"
#include "connectors/jsonl/jsonl_config.hpp"
#include "connectors/postgres/postgres_config.hpp"
#include "connectors/sqlite/sqlite_config.hpp"
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

// A connector as `type:` names it, and its parser of the rest of the section.
template <class Settings>
struct ConnectorType {
    std::string_view name;
    Settings (*parse)(YamlReader&, const YAML::Node&, const std::string&);
};

template <class Settings, auto parse>
Settings parse_as(YamlReader& r, const YAML::Node& n, const std::string& p) {
    return parse(r, n, p);
}

// The type's name is the one its settings report (SourceConfig::type()), so the two agree.
template <class Settings, auto parse>
constexpr ConnectorType<Settings> connector() {
    using Parsed = std::invoke_result_t<decltype(parse), YamlReader&, const YAML::Node&, const std::string&>;
    return {Parsed::kType, parse_as<Settings, parse>};
}

// In the order messages list them.
const std::array<ConnectorType<connectors::SourceSettings>, 3> kSourceTypes{
    connector<connectors::SourceSettings, connectors::parse_csv_source>(),
    connector<connectors::SourceSettings, connectors::parse_sqlite_source>(),
    connector<connectors::SourceSettings, connectors::parse_postgres_source>(),
};
const std::array<ConnectorType<connectors::SinkSettings>, 4> kSinkTypes{
    connector<connectors::SinkSettings, connectors::parse_csv_sink>(),
    connector<connectors::SinkSettings, connectors::parse_jsonl_sink>(),
    connector<connectors::SinkSettings, connectors::parse_sqlite_sink>(),
    connector<connectors::SinkSettings, connectors::parse_postgres_sink>(),
};

// "csv, sqlite or postgres"
template <class Types>
std::string names_of(const Types& types) {
    std::string out;
    for (std::size_t i = 0; i < types.size(); ++i)
        out += std::string(i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + std::string(types[i].name);
    return out;
}

template <class Types>
auto find_type(const Types& types, std::string_view name) -> decltype(&types[0]) {
    for (const auto& type : types)
        if (type.name == name) return &type;
    return nullptr;
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
        r_.check_keys(root, "", {"api", "http", "rate_limit", "retry", "journal", "log", "daemon", "jobs"});
        if (root["daemon"]) parse_daemon(root["daemon"], c.daemon);
        if (root["api"]) parse_api(root["api"], c);
        else r_.error(SourcePos{r_.file(), 1, 1}, "api", "is required (base_url, client_id, token)");
        if (root["http"]) parse_http(root["http"], c.http);
        check_plain_http(root, c);
        if (root["rate_limit"]) parse_rate_limit(root["rate_limit"], c.rate_limit);
        if (root["retry"]) parse_retry(root["retry"], c.retry);
        if (root["journal"]) parse_journal(root["journal"], c.journal);
        c.journal.path = r_.resolve_path(c.journal.path);
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
                r_.error(where, "jobs." + job.name + ".pull.reconcile", "\"" + job.pull->reconcile + "\" is a pull job; name a push job");
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
                        else if (url->starts_with("http://") && !is_loopback_url(*url))
                            r_.error(v, op + ".token_url",
                                     "plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, "
                                     "localhost: a local emulator); the client secret would travel unencrypted, "
                                     "so use https://");
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
                ++sources;
            } else {
                take("token", TokenSpec::Kind::Inline);
                r_.warn("api.token is written in the config file; prefer token_env, token_file or credential");
            }
        }
        if (sources > 1)
            r_.error(n, p, "give exactly one of token_env, token_file, credential, token");
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
            r_.warn("api.base_url uses plain http:// to a host that is not loopback: the API token travels "
                    "UNENCRYPTED in every request (allowed by http.insecure)");
        else
            r_.error(root["api"]["base_url"], "api.base_url",
                     "plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost: a local "
                     "emulator); the token would travel unencrypted, so use https:// (or set http.insecure: true "
                     "to allow it anyway)");
    }

    void parse_http(const YAML::Node& n, HttpConfig& h) {
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
        h.ca_file = r_.resolve_path(h.ca_file);
        r_.optional_field(n, p, "insecure", h.insecure,
                          [&](auto& v, auto path) { return r_.boolean(v, path); });
        if (h.insecure) r_.warn("http.insecure is true: TLS certificates are NOT verified");
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
        r_.check_keys(n, p, {"level", "format", "bodies"});
        // Only what the logger implements: a level or format it would ignore is an error here.
        auto one_of = [&](const char* key, auto parse, std::string_view allowed, auto& out) {
            auto v = n[key];
            if (!v) return;
            auto s = r_.string(v, p + "." + key);
            if (!s) return;
            if (auto parsed = parse(*s)) return void(out = *parsed);
            r_.error(v, p + "." + key, "expected one of " + std::string(allowed) + ", got \"" + *s + "\"");
        };
        one_of("level", base::parse_log_level, base::kLogLevels, l.level);
        one_of("format", base::parse_log_format, base::kLogFormats, l.format);
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
        r_.check_keys(n, p, {"mode", "schedule", "source", "identity", "mapping", "sink", "pull", "on_removed",
                             "on_missing", "max_missing", "deleted_column"});
        if (auto v = n["mode"]) {
            if (auto s = r_.string(v, p + ".mode")) {
                static const std::vector<std::pair<std::string_view, Mode>> modes{
                    {"create", Mode::Create},   {"update", Mode::Update},
                    {"upsert", Mode::Upsert},   {"replace", Mode::Replace},
                    {"delete", Mode::Delete},   {"archive", Mode::Archive},
                    {"mirror", Mode::Mirror}};
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
                                 "; expected create, update, upsert, replace, delete, archive or mirror");
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
        parse_convergence(n, p, job);
        return job;
    }

    // on_removed, on_missing, max_missing, deleted_column: how a job follows what leaves the source.
    void parse_convergence(const YAML::Node& n, const std::string& p, JobConfig& job) {
        auto choice = [&](const char* key, const std::vector<std::string_view>& names) -> std::optional<std::size_t> {
            auto v = n[key];
            if (!v) return std::nullopt;
            auto s = r_.string(v, p + "." + key);
            if (!s) return std::nullopt;
            for (std::size_t i = 0; i < names.size(); ++i)
                if (names[i] == *s) return i;
            std::string list;
            for (auto name : names) list += (list.empty() ? "" : ", ") + std::string(name);
            auto hint = base::suggest(*s, names);
            r_.error(v, p + "." + key, "unknown value \"" + *s + "\"" + (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                                          "; expected " + list);
            return std::nullopt;
        };
        if (auto i = choice("on_removed", {"deactivate", "remove"})) {
            job.on_removed = *i == 0 ? OnRemoved::Deactivate : OnRemoved::Remove;
            if (job.mode != Mode::Mirror)
                r_.error(n["on_removed"], p + ".on_removed", "applies to mode mirror (elements removed from a profile)");
        }
        if (auto i = choice("on_missing", {"ignore", "deactivate", "archive", "delete"})) {
            job.on_missing = static_cast<OnMissing>(*i);
            if (job.mode == Mode::Delete || job.mode == Mode::Archive)
                r_.error(n["on_missing"], p + ".on_missing",
                         "does not apply to mode " + std::string(to_string(job.mode)) + " (its rows are what it removes)");
        }
        if (auto v = n["max_missing"]) {
            if (auto s = r_.string(v, p + ".max_missing")) {
                MissingLimit limit;
                limit.text = *s;
                limit.percent = !s->empty() && s->back() == '%';
                auto digits = limit.percent ? s->substr(0, s->size() - 1) : *s;
                char* end = nullptr;
                double value = digits.empty() ? -1 : std::strtod(digits.c_str(), &end);
                bool ok = end && *end == '\0' && value >= 0 && (!limit.percent || value <= 100) &&
                          (limit.percent || value == static_cast<double>(static_cast<std::int64_t>(value)));
                if (ok) {
                    limit.value = value;
                    job.max_missing = limit;
                } else {
                    r_.error(v, p + ".max_missing", "expected a share such as 5% or a number of rows such as 200, got \"" + *s + "\"");
                }
            }
        }
        r_.optional_string(n, p, "deleted_column", job.deleted_column);
        if (!job.deleted_column.empty() && job.on_missing == OnMissing::Ignore)
            r_.error(n["deleted_column"], p + ".deleted_column",
                     "says which rows are deleted, but on_missing is ignore: set on_missing to deactivate, archive or delete");
    }

    void parse_daemon(const YAML::Node& n, DaemonConfig& d) {
        const std::string p = "daemon";
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"timezone", "catch_up", "shutdown_timeout", "metrics_listen", "verify", "verify_interval"});
        r_.optional_field(n, p, "verify", d.verify, [&](auto& v, auto path) { return r_.boolean(v, path); });
        r_.optional_field(n, p, "verify_interval", d.verify_interval,
                          [&](auto& v, auto path) { return r_.duration(v, path); });
        r_.optional_field(n, p, "timezone", d.timezone, [&](auto& v, auto path) { return r_.string(v, path); });
        std::error_code tz_error;  // a name too long for a path is unknown too, not an exception
        if (d.timezone != "UTC" && !fs::exists(fs::path("/usr/share/zoneinfo") / d.timezone, tz_error))
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
            else if (!parse_port(std::string_view(d.metrics_listen).substr(colon + 1)))
                r_.error(n["metrics_listen"], p + ".metrics_listen",
                         "port \"" + d.metrics_listen.substr(colon + 1) + "\" is not a number from 0 to 65535");
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
        if (auto v = n["sink"]) parse_sink(v, p + ".sink", job);
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
        auto name = r_.required_string(n, p, "type", names_of(kSourceTypes));
        if (!name) return;
        const auto* type = find_type(kSourceTypes, *name);
        if (!type) {
            std::vector<std::string_view> names;
            for (const auto& t : kSourceTypes) names.push_back(t.name);
            auto hint = base::suggest(*name, names);
            r_.error(n["type"], p + ".type",
                     "unknown source type \"" + *name + "\"" + (hint.empty() ? "" : " (did you mean \"" + hint + "\"?)") +
                         "; expected " + names_of(kSourceTypes));
            return;
        }
        s.settings = type->parse(r_, n, p);
        r_.optional_string(n, p, "reject_file", s.reject_file);
        if (s.reject_file.empty()) {
            auto dir = fs::path(c.journal.path).parent_path();
            s.reject_file = (dir / "rejects" / (job.name + ".rejects.txt")).string();
        } else {
            s.reject_file = r_.resolve_path(s.reject_file);
        }
    }

    void parse_identity(const YAML::Node& n, const std::string& p, JobConfig& job) {
        auto& id = job.identity;
        id.pos = r_.pos(n);
        id.key_path = p;
        if (!r_.expect_map(n, p)) return;
        r_.check_keys(n, p, {"alternate_id_type", "column", "profile_id_column"});
        r_.optional_string(n, p, "alternate_id_type", id.alternate_id_type);
        r_.optional_string(n, p, "column", id.column);
        r_.optional_string(n, p, "profile_id_column", id.profile_id_column);
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

    void parse_sink(const YAML::Node& n, const std::string& p, JobConfig& job) {
        SinkConfig sink;
        sink.pos = r_.pos(n);
        sink.key_path = p;
        if (!r_.expect_map(n, p)) return;
        auto name = r_.required_string(n, p, "type", names_of(kSinkTypes));
        if (!name) return;
        const auto* type = find_type(kSinkTypes, *name);
        if (!type) {
            r_.error(n["type"], p + ".type", "expected " + names_of(kSinkTypes));
            return;
        }
        sink.settings = type->parse(r_, n, p);
        job.sink = std::move(sink);
    }

    YamlReader r_;
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

}  // namespace prefsync::config
