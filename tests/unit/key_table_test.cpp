#include "config/yaml/key_table.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <charconv>
#include <set>
#include <stdexcept>

#include "config/config.hpp"
#include "config/config_keys.hpp"
#include "config/connector_types.hpp"
#include "config/yaml/yaml_reader.hpp"

namespace prefsync::config {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const KeyTable& test_keys() {
    static const KeyTable table{
        .id = "test",
        .keys =
            {
                {.name = "count", .type = ValueType::Integer, .min = 1, .max = 10, .default_value = "3"},
                {.name = "file", .type = ValueType::Path},
                {.name = "colour", .type = ValueType::Enum, .values = "red|green", .pattern = "rgb\\([0-9]+\\)"},
                {.name = "tags", .type = ValueType::EnumList, .values = "a|b"},
                {.name = "flag", .type = ValueType::Boolean},
                {.name = "a"},
                {.name = "b"},
                {.name = "c"},
                {.name = "x"},
                {.name = "y"},
                {.name = "p"},
                {.name = "q"},
                {.name = "needed", .required = "because"},
                {.name = "old", .type = ValueType::Refused, .description = "is gone; use new"},
            },
        .rules = {{KeyRule::Kind::ExactlyOne, "a+b|c"},
                  {KeyRule::Kind::AtMostOne, "x|y"},
                  {KeyRule::Kind::Together, "p+q"}},
    };
    return table;
}

// check_keys on a YAML map, with the messages as "path: message".
std::vector<std::string> check(const std::string& yaml, const KeyTable& table = test_keys()) {
    const EnvLookup env = [](const std::string&) { return std::optional<std::string>(); };
    YamlReader r("/etc/prefsync/t.yaml", env);
    r.check_keys(YAML::Load(yaml), "s", table);
    std::vector<std::string> out;
    for (const auto& d : r.diagnostics()) out.push_back(d.key_path + ": " + d.message);
    return out;
}

TEST(KeyTable, RulesSayWhatIsMissingWhatIsTooMuchAndWhatGoesTogether) {
    EXPECT_THAT(check("{ needed: 1, c: 1 }"), IsEmpty());
    EXPECT_THAT(check("{ needed: 1, a: 1, b: 1 }"), IsEmpty());
    EXPECT_THAT(check("{ needed: 1 }"), ElementsAre("s: give a + b or c"));
    EXPECT_THAT(check("{ needed: 1, a: 1, b: 1, c: 1 }"), ElementsAre("s: give exactly one of a + b, c"));
    EXPECT_THAT(check("{ needed: 1, a: 1 }"), ElementsAre("s: a and b go together"));
    EXPECT_THAT(check("{ needed: 1, c: 1, x: 1, y: 1 }"), ElementsAre("s: give at most one of x, y"));
    EXPECT_THAT(check("{ needed: 1, c: 1, q: 1 }"), ElementsAre("s: p and q go together"));
}

TEST(KeyTable, UnknownRefusedDuplicateAndMissingKeys) {
    auto errs = check("{ c: 1, colur: red, old: 1 }");
    EXPECT_THAT(errs,
                Contains(HasSubstr("s.colur: unknown key (did you mean \"colour\"?); valid keys here: count, file, "
                                   "colour, tags, flag, a, b, c, x, y, p, q, needed")))
        << "refused keys are not offered";
    EXPECT_THAT(errs, Contains("s.old: is gone; use new"));
    EXPECT_THAT(errs, Contains("s.needed: is required (because)"));
    EXPECT_THAT(check("c: 1\nneeded: 1\nc: 2\n"), ElementsAre("s.c: duplicate key"));
}

TEST(KeyTable, NoneOfAnExactlyOneCheckedLaterIsNoErrorWhileParsing) {
    static const KeyTable table{.id = "later",
                                .keys = {{.name = "env"}, {.name = "file"}},
                                .rules = {{KeyRule::Kind::ExactlyOne, "env|file", true}}};
    EXPECT_THAT(check("{}", table), IsEmpty());
    EXPECT_THAT(check("{ env: E, file: f }", table), ElementsAre("s: give exactly one of env, file"));
}

struct Reader {
    EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
        if (name == "COUNT") return "7";
        return std::nullopt;
    };
    YamlReader r{"/etc/prefsync/t.yaml", env};
    std::vector<std::string> errors() {
        std::vector<std::string> out;
        for (const auto& d : r.diagnostics()) out.push_back(d.key_path + ": " + d.message);
        return out;
    }
};

TEST(KeyTable, ReadTakesTypeRangeAndValuesFromTheTable) {
    const auto& keys = test_keys();
    Reader t;
    auto n = YAML::Load("{ count: 11, file: data/x.csv, colour: \"rgb(12)\", tags: [b, a], flag: on }");
    int count = 3;
    EXPECT_FALSE(t.r.read(n, "s", keys.key("count"), count));
    EXPECT_EQ(count, 3) << "an invalid value leaves the default";
    EXPECT_THAT(t.errors(), ElementsAre("s.count: must be between 1 and 10, got 11"));
    std::string file, colour;
    EXPECT_TRUE(t.r.read(n, "s", keys.key("file"), file));
    EXPECT_EQ(file, "/etc/prefsync/data/x.csv") << "a Path is resolved against the config's directory";
    EXPECT_TRUE(t.r.read(n, "s", keys.key("colour"), colour)) << "the pattern admits what the values do not list";
    std::vector<std::string> tags;
    EXPECT_TRUE(t.r.read(n, "s", keys.key("tags"), tags));
    EXPECT_THAT(tags, ElementsAre("b", "a"));
    bool flag = false;
    EXPECT_TRUE(t.r.read(n, "s", keys.key("flag"), flag));
    EXPECT_TRUE(flag);
    std::string absent = "kept";
    EXPECT_FALSE(t.r.read(n, "s", keys.key("a"), absent));
    EXPECT_EQ(absent, "kept");

    Reader u;
    auto bad = YAML::Load("{ count: \"${COUNT}\", colour: gren, tags: c }");
    EXPECT_TRUE(u.r.read(bad, "s", keys.key("count"), count));
    EXPECT_EQ(count, 7) << "interpolated before the type is checked";
    EXPECT_FALSE(u.r.read(bad, "s", keys.key("colour"), colour));
    EXPECT_FALSE(u.r.read(bad, "s", keys.key("tags"), tags));
    EXPECT_THAT(u.errors(),
                ElementsAre("s.colour: expected red or green, or a value matching rgb\\([0-9]+\\), got \"gren\" "
                            "(did you mean \"green\"?)",
                            HasSubstr("s.tags: expected a or b, got \"c\"")));
}

TEST(KeyTable, ANumberIsFinite) {
    static const KeyTable table{.id = "n", .keys = {{.name = "rate", .type = ValueType::Number, .min = 0.001}}};
    for (auto text : {"nan", "inf", "-inf"}) {
        Reader t;
        double rate = 50;
        EXPECT_FALSE(t.r.read(YAML::Load(std::string("{ rate: ") + text + " }"), "s", table.key("rate"), rate)) << text;
        EXPECT_EQ(rate, 50);
    }
}

TEST(KeyTable, ReadingAKeyTheTableLacksOrIntoTheWrongTypeIsAProgrammingError) {
    const auto& keys = test_keys();
    EXPECT_THROW(keys.key("nope"), std::logic_error);
    Reader t;
    auto n = YAML::Load("{ flag: true, count: 2 }");
    std::string text;
    EXPECT_THROW(t.r.read(n, "s", keys.key("flag"), text), std::logic_error);
    bool flag = false;
    EXPECT_THROW(t.r.read(n, "s", keys.key("count"), flag), std::logic_error) << "bool and numbers do not mix";
}

// Every table a config can reach, each once.
std::vector<const KeyTable*> all_tables() {
    std::vector<const KeyTable*> out;
    std::set<const KeyTable*> seen;
    auto visit = [&](auto& self, const KeyTable& t) -> void {
        if (!seen.insert(&t).second) return;
        out.push_back(&t);
        for (const auto& k : t.keys)
            if (k.nested) self(self, k.nested());
    };
    for (auto* t : {&root_keys(), &push_job_keys(), &pull_job_keys(), &value_keys(), &split_keys(), &date_keys()})
        visit(visit, *t);
    for (const auto& type : source_types()) visit(visit, type.keys());
    for (const auto& type : sink_types()) visit(visit, type.keys());
    return out;
}

TEST(ConfigKeys, EveryKeyIsDescribedAndItsDefaultAndRulesFitItsTable) {
    auto tables = all_tables();
    EXPECT_GE(tables.size(), 25u);
    std::set<std::string_view> ids;
    for (const auto* t : tables) {
        SCOPED_TRACE(std::string(t->id));
        EXPECT_TRUE(ids.insert(t->id).second) << "table ids name schema definitions: unique";
        EXPECT_FALSE(t->description.empty());
        std::set<std::string_view> names;
        for (const auto& k : t->keys) {
            SCOPED_TRACE(std::string(k.name));
            EXPECT_TRUE(names.insert(k.name).second) << "duplicate key";
            EXPECT_FALSE(k.description.empty()) << "the README and the schema show it";
            EXPECT_FALSE(!k.default_value.empty() && !k.default_note.empty()) << "one kind of default";
            switch (k.type) {
                case ValueType::Enum:
                case ValueType::EnumList: EXPECT_FALSE(k.values.empty()); break;
                case ValueType::Integer: EXPECT_LE(k.min, k.max); break;
                case ValueType::Section:
                case ValueType::SectionList: EXPECT_NE(k.nested, nullptr); break;
                case ValueType::Custom: EXPECT_FALSE(k.custom.empty()); break;
                default: break;
            }
            if (k.default_value.empty()) continue;
            std::string d(k.default_value);
            switch (k.type) {
                case ValueType::Integer:
                case ValueType::Number: {
                    double v = 0;
                    auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
                    EXPECT_TRUE(ec == std::errc() && end == d.data() + d.size() && v >= k.min) << d;
                    break;
                }
                case ValueType::Boolean: EXPECT_TRUE(d == "true" || d == "false") << d; break;
                case ValueType::Duration: EXPECT_TRUE(parse_duration(d)) << d; break;
                case ValueType::Size: EXPECT_TRUE(parse_size(d)) << d; break;
                case ValueType::Enum: EXPECT_THAT(k.value_list(), Contains(std::string_view(d))); break;
                default: break;
            }
        }
        for (const auto& rule : t->rules)
            for (const auto& alternative : rule.alternatives())
                for (auto key : alternative) EXPECT_NE(t->find(key), nullptr) << "rule names " << key;
    }
}

TEST(ConfigKeys, EachConnectorTableNamesItsOwnType) {
    for (const auto& type : source_types()) EXPECT_EQ(type.keys().key("type").values, type.name);
    for (const auto& type : sink_types()) EXPECT_EQ(type.keys().key("type").values, type.name);
}

// A section parsed with every defaulted key written out as its table default is the section
// parsed empty: the documented defaults are the parsed ones.
TEST(ConfigKeys, TheTablesDefaultsAreTheParsedDefaults) {
    const std::string api = "api: { base_url: https://x/v2, client_id: a, token_env: T }\n";
    auto with_defaults = [&](const KeyTable& t, const std::string& section) {
        std::string yaml = api + section + ":\n";
        for (const auto& k : t.keys)
            if (!k.default_value.empty())
                yaml += "  " + std::string(k.name) + ": \"" + std::string(k.default_value) + "\"\n";
        return parse_config(yaml, "/etc/prefsync/t.yaml", [](const std::string&) { return std::nullopt; });
    };
    Config empty = parse_config(api, "/etc/prefsync/t.yaml", [](const std::string&) { return std::nullopt; });
    auto h = with_defaults(http_keys(), "http").http;
    EXPECT_EQ(h.connections, empty.http.connections);
    EXPECT_EQ(h.connect_timeout, empty.http.connect_timeout);
    EXPECT_EQ(h.request_timeout, empty.http.request_timeout);
    EXPECT_EQ(h.idle_timeout, empty.http.idle_timeout);
    EXPECT_EQ(h.max_response_bytes, empty.http.max_response_bytes);
    EXPECT_EQ(h.insecure, empty.http.insecure);
    auto rl = with_defaults(rate_limit_keys(), "rate_limit").rate_limit;
    EXPECT_EQ(rl.requests_per_second, empty.rate_limit.requests_per_second);
    EXPECT_EQ(rl.burst, empty.rate_limit.burst);
    EXPECT_EQ(rl.daily_quota, empty.rate_limit.daily_quota);
    EXPECT_EQ(rl.adaptive, empty.rate_limit.adaptive);
    auto rt = with_defaults(retry_keys(), "retry").retry;
    EXPECT_EQ(rt.max_attempts, empty.retry.max_attempts);
    EXPECT_EQ(rt.base_delay, empty.retry.base_delay);
    EXPECT_EQ(rt.max_delay, empty.retry.max_delay);
    EXPECT_EQ(rt.max_throttled, empty.retry.max_throttled);
    auto j = with_defaults(journal_keys(), "journal").journal;
    EXPECT_EQ(j.path, empty.journal.path);
    EXPECT_EQ(j.retain_days, empty.journal.retain_days);
    auto l = with_defaults(log_keys(), "log").log;
    EXPECT_EQ(l.level, empty.log.level);
    EXPECT_EQ(l.bodies, empty.log.bodies);
    auto d = with_defaults(daemon_keys(), "daemon").daemon;
    EXPECT_EQ(d.timezone, empty.daemon.timezone);
    EXPECT_EQ(d.catch_up, empty.daemon.catch_up);
    EXPECT_EQ(d.shutdown_timeout, empty.daemon.shutdown_timeout);
    EXPECT_EQ(d.verify, empty.daemon.verify);
    EXPECT_EQ(d.verify_interval, empty.daemon.verify_interval);
    EXPECT_EQ(OAuthConfig{}.refresh_before, parse_duration(oauth_keys().key("refresh_before").default_value));
    EXPECT_EQ(to_string(Mode::Upsert), push_job_keys().key("mode").default_value);
}

}  // namespace
}  // namespace prefsync::config
