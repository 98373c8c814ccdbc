#pragma once
// Where a secret (the API token, a database password) comes from, and reading it.
//
// Design constraints:
// - The config holds only where a secret is (a variable name, a file, a systemd credential
//   name), never the secret: it is read when a command needs it, so `dry-run` of a CSV job
//   works without one and nothing in a parsed config can leak it into a log.
// - A secret that cannot be read is a ConfigError naming the key that configured it.
// - The secret itself is pasted into `token_env:` often enough that a value which cannot be
//   a name (or reads like a generated token) is never quoted in any message: the error names
//   the key and position, which is all the user needs to find it.
// - A file holding a secret that others can read is worth a warning at every start, but it
//   is still read: refusing would stop a service over a mode an operator can fix at leisure.
//   systemd credentials are exempt: systemd makes them private to the unit.
#include <optional>
#include <string>
#include <string_view>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/env.hpp"
#include "config/yaml/yaml_fwd.hpp"

namespace prefsync::config {

struct TokenSpec {
    enum class Kind { None, Env, File, Credential, Inline };
    Kind kind = Kind::None;
    std::string value;  // variable name, file path, credential name, or the inline token
    SourcePos pos;
    std::string key;  // where it was configured, e.g. "api.token_env", for messages
};

// Reads `node` (the key `path`) as where a secret of `kind` is: a name, a path resolved
// against the config file's directory, or (Inline) the secret itself. A value that cannot be
// that — most often the secret itself — is an error that does not quote it; a file that
// its group or others can use, or that another user owns, is a warning. `noun` names the
// secret in the hint ("token", "password"). nullopt when the value is unusable.
std::optional<TokenSpec> read_secret_location(YamlReader& r, const YAML::Node& node, const std::string& path,
                                              TokenSpec::Kind kind, std::string_view noun);

// True when `value` reads like a generated secret (hex, base64, a UUID, a JWT) rather than a
// name or a path a person chose: 16 or more letters and digits that switch between digits
// and letters (or between cases) every few characters, the way random text does and words
// do not. Short secrets go undetected; a name never quoted is the cost of a false positive.
bool looks_like_secret(std::string_view value);

// The secret `spec` points at; "" for Kind::None. `what` names it in messages ("API token");
// `key` and `fallback` locate the diagnostic when `spec` has no position of its own.
// Throws ConfigError when it cannot be read or is empty.
std::string read_secret(const TokenSpec& spec, const SourcePos& fallback, const std::string& key,
                        const std::string& what, const EnvLookup& env);

}  // namespace prefsync::config
