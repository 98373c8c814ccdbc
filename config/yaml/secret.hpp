#pragma once
// Where a secret (the API token, a database password) comes from, and reading it.
//
// Design constraints:
// - The config holds only where a secret is (a variable name, a file, a systemd credential
//   name), never the secret: it is read when a command needs it, so `dry-run` of a CSV job
//   works without one and nothing in a parsed config can leak it into a log.
// - A secret that cannot be read is a ConfigError naming the key that configured it.
#include <string>

#include "config/yaml/diagnostic.hpp"
#include "config/yaml/env.hpp"

namespace prefsync::config {

struct TokenSpec {
    enum class Kind { None, Env, File, Credential, Inline };
    Kind kind = Kind::None;
    std::string value;  // variable name, file path, credential name, or the inline token
    SourcePos pos;
    std::string key;    // where it was configured, e.g. "api.token_env", for messages
};

// The secret `spec` points at; "" for Kind::None. `what` names it in messages ("API token");
// `key` and `fallback` locate the diagnostic when `spec` has no position of its own.
// Throws ConfigError when it cannot be read or is empty.
std::string read_secret(const TokenSpec& spec, const SourcePos& fallback, const std::string& key,
                        const std::string& what, const EnvLookup& env);

}  // namespace prefsync::config
