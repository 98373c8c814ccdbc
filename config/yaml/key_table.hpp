#pragma once
// The keys of one config section, as data: name, type, default, allowed values, whether it
// is required, the rules between keys, and the sentence that documents it.
//
// Design constraints:
// - A section's table is the only list of its keys. Its parser checks the YAML against it
//   (YamlReader::check_keys: unknown keys, required keys, the rules; YamlReader::read: type,
//   range, allowed values) and `prefsync config-schema` walks the same tables into the JSON
//   Schema and the key reference in config/README.md, so the three cannot drift.
// - Adding a key is one line in its table (and reading the value into the parsed struct).
// - Only what one section can say about itself is here. What depends on other sections or
//   on the data (a reconcile target exists, a column is in the source, mode-dependent
//   keys) stays in the parsers; the schema generator adds what of it JSON Schema can say.
// - Literal types (string_view, function pointers) so a key shared by several tables is a
//   constexpr constant; tables are reached through functions, so one table can include
//   another's keys whatever the order in which translation units are initialised.
#include <string>
#include <string_view>
#include <vector>

namespace prefsync::config {

enum class ValueType {
    String,       // any scalar, after ${VAR} interpolation
    Path,         // a string, resolved against the config file's directory when read
    Integer,      // a whole number in [min, max]
    Number,       // a decimal number, at least min
    Boolean,      // true/false, yes/no, on/off
    Duration,     // 500ms, 10s, 5m, 1h, 1d
    Size,         // 512KiB, 8MiB, 1GiB or bytes
    Enum,         // one of `values` (or, with `pattern`, a string matching it)
    EnumList,     // one of `values`, or a list of them
    StringList,   // a list of strings
    StringMap,    // NAME: string, any names
    Section,      // a nested section: `nested`
    SectionList,  // a list of `nested` sections
    SectionMap,   // NAME: `nested` section (or the `custom` part), names matching `pattern`
    Custom,       // parsed by its own code; `custom` names it for the schema generator
    Refused,      // a key that is known but wrong here; `description` is the error message
};

struct KeyTable;

// One key. Written with designated initialisers, in this order:
//   {.name = "connections", .type = ValueType::Integer, .min = 1, .max = 1024,
//    .default_value = "16", .description = "keep-alive connections to the API"}
struct KeySpec {
    std::string_view name = {};
    ValueType type = ValueType::String;
    std::string_view values = {};           // Enum, EnumList: the allowed values, "a|b|c"
    double min = 0;                         // Integer, Number
    double max = 0;                         // Integer (Number: 0 = no maximum)
    std::string_view pattern = {};          // Enum: also accepted (anchored ECMAScript regex); SectionMap: names
    std::string_view default_value = {};    // the default, as YAML text ("16", "10s", "false")
    std::string_view default_note = {};     // a default that is not a value: "`http.connections`"
    std::string_view required = {};         // set: the key must be given; why, for the message
    const KeyTable& (*nested)() = nullptr;  // Section, SectionList, SectionMap
    std::string_view custom = {};           // Custom (and a SectionMap without `nested`): what it is
    std::string_view doc_type = {};         // the reference's type column, when the type says too little
    std::string_view description = {};      // one sentence or two, markdown: the README and the schema

    // The allowed values of an Enum / EnumList, in order.
    std::vector<std::string_view> value_list() const;
};

// A rule between keys of one section. `keys` are alternatives separated by "|"; an
// alternative may be several keys that go together, joined by "+":
//   ExactlyOne "alternate_id_type+column|profile_id_column"
struct KeyRule {
    enum class Kind {
        AtMostOne,   // no two alternatives together
        ExactlyOne,  // one alternative, never two
        Together,    // `keys` is one alternative: all its keys, or none
    };
    Kind kind = Kind::AtMostOne;
    std::string_view keys = {};
    // ExactlyOne: giving none is not an error while parsing, only where the value is used
    // (the API token: dry-run needs none, check-config and every push do). The schema, which
    // describes what check-config accepts, still requires one.
    bool none_checked_later = false;

    // The alternatives, each a list of keys.
    std::vector<std::vector<std::string_view>> alternatives() const;
};

struct KeyTable {
    std::string_view id = {};           // the schema's definition name: "api", "source.csv"
    std::string_view description = {};  // what the section is
    std::vector<KeySpec> keys = {};     // in the order messages list them
    std::vector<KeyRule> rules = {};

    const KeySpec* find(std::string_view name) const;
    // The key named `name`; throws std::logic_error if the table has none: a parser reading
    // a key it does not declare is a programming error, found by any test that parses it.
    const KeySpec& key(std::string_view name) const;
    // The names a config may use here (not the Refused ones), in table order.
    std::vector<std::string_view> names() const;
};

// "a, b or c"
std::string join_alternatives(const std::vector<std::string_view>& names, std::string_view last = " or ");

}  // namespace prefsync::config
