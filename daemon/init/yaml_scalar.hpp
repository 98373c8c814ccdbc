#pragma once
// YAML scalars for generated config files: text in, a scalar that any YAML reader (and
// prefsync's config reader, which expands ${VAR}) reads back as exactly that text.
#include <string>
#include <string_view>

namespace prefsync::init {

// Plain when that is unambiguous (`first_name`, `customers.csv`), else double-quoted with
// escapes: spaces, `:`, `#`, quotes, leading indicators (`-`, `&`, `*`, `!`, `%`, `@`, ...),
// words YAML 1.1 reads as booleans or null (`yes`, `No`, `on`, `~`), numbers, control
// characters and Unicode line separators all come out quoted.
std::string yaml_scalar(std::string_view text);

// A scalar prefsync reads as a value, where `${VAR}` is expanded: every `$` doubled (`$$` is
// a literal `$`), then yaml_scalar. Keys are not expanded and take yaml_scalar alone.
std::string config_value(std::string_view text);

// Always double-quoted, for naming a column inside a comment: a name holding a newline or
// a `#` cannot break the comment or the line.
std::string quoted(std::string_view text);

}  // namespace prefsync::init
