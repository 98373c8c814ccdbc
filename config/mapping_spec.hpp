#pragma once
// The declarative mapping of one job, as written in the config and checked against the
// Profile schema; daemon/mapping compiles it against a source's columns. Pure data.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/yaml/diagnostic.hpp"
#include "daemon/api/profile_schema.hpp"

namespace prefsync::config {

enum class Normalize { Lowercase, Uppercase, Digits, CollapseSpaces };

// What an empty value (after trimming and normalising) becomes.
enum class EmptyPolicy {
    Absent,  // the field is left out, so a merge update never blanks it by accident
    Keep,    // the field is sent as "" (to clear it on purpose)
};

// One scalar value: read from a column or a constant, then cleaned and converted to the
// type the Profile field has.
struct ValueSpec {
    SourcePos pos;
    std::string key_path;
    api::FieldType target = api::FieldType::String;

    std::optional<std::string> column;
    std::optional<std::string> constant;
    bool trim = true;
    std::vector<Normalize> normalize;
    std::map<std::string, std::string> value_map;  // "*" matches any other non-empty value
    std::optional<std::string> default_value;      // used when the value is empty
    std::string date_in;                           // strptime-style format of the input
    std::string date_out = "%Y-%m-%d";             // format sent to the API
    EmptyPolicy empty = EmptyPolicy::Absent;
    bool required = false;  // empty rejects the row
};

struct FieldEntry;
struct ObjectSpec {
    std::vector<FieldEntry> fields;  // in the order the config lists them: output order
};

// An array built from one delimited column: "a;b;c" → [{field: a}, {field: b}, ...].
struct SplitSpec {
    ValueSpec item;  // the column and the cleaning applied to each item
    std::string delimiter;
    std::string field;             // element field that receives each item
    std::vector<FieldEntry> with;  // further fields of every element (constants or columns)
};

// An array of name/value elements written as a map: CustomFields: { LoyaltyTier: tier }.
struct NamedValue {
    std::string name;
    ValueSpec value;
};

struct ArraySpec {
    std::vector<ObjectSpec> elements;  // one element template per entry; empty ones dropped
    std::optional<SplitSpec> split;
    std::vector<NamedValue> named;
    std::string name_field;   // "Name" or "Key", for named
    std::string value_field;  // "Value", for named
};

using FieldSpec = std::variant<ValueSpec, ObjectSpec, ArraySpec>;

struct FieldEntry {
    std::string name;
    FieldSpec spec;
};

struct IdentitySpec {
    SourcePos pos;
    std::string key_path;
    // Exactly one of: an alternate id (type + column) or a profile-id column.
    std::string alternate_id_type;
    std::string column;
    std::string profile_id_column;
    std::vector<Normalize> normalize;  // applied to the alternate id after trimming
    bool by_profile_id() const { return !profile_id_column.empty(); }
};

}  // namespace prefsync::config
