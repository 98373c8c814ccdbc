#pragma once
// Pulled profile JSON → output rows, by the sink's columns (the reverse of a mapping: a JSON
// path per column). One row per profile, or with `each` one row per element of an array
// (e.g. a history collection), where `@.Field` names a field of the element.
//
// Paths: Name.Name, Name[0] (an index), Name[Key=Value] (the first element whose Key is
// Value, e.g. AlternateIds[AlternateIdType=CRMID].AlternateId; Value matches a string of
// that text, and also a JSON boolean when it is true/false and a number of equal value when
// it is a number, as in Emails[IsDefault=true] or Consents[ConsentStatus=1]). A missing value is NULL
// (empty in CSV); strings come out as text, numbers and booleans as their JSON text,
// objects and arrays as compact JSON.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace prefsync::pull {

using OutputRow = std::vector<std::optional<std::string>>;

class Flattener {
public:
    // Throws config::ConfigError naming sink.columns.NAME for a path it cannot read.
    static Flattener compile(const config::SinkConfig& sink);

    const std::vector<std::string>& column_names() const { return names_; }
    // Appends the rows of one profile; returns "" or why the JSON could not be read.
    std::string rows(std::string_view profile_json, std::vector<OutputRow>& out);

    struct Step {
        std::string name;
        std::optional<std::size_t> index;
        std::string filter_key, filter_value;
        // The filter value read as JSON would read it: the API answers booleans and numbers
        // as such (IsDefault, IsMobile, ConsentStatus), which a text comparison never matches.
        std::optional<bool> filter_bool;
        std::optional<std::int64_t> filter_integer;
        std::optional<double> filter_number;
    };
    struct Path {
        bool relative = false;  // @.…: from the `each` element
        std::vector<Step> steps;
    };

private:
    std::vector<std::string> names_;
    std::vector<Path> paths_;
    std::optional<Path> each_;
    simdjson::dom::parser parser_;
};

// Parses "A.B[0].C[K=V]"; nullopt (and `error`) when malformed.
std::optional<Flattener::Path> parse_json_path(std::string_view text, std::string& error);

}  // namespace prefsync::pull
