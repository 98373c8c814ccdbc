#pragma once
// The process environment as config reads it: ${VAR} in values, token_env, password_env.
// Injected everywhere it is read, so tests never touch the real environment.
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>

namespace prefsync::config {

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

inline EnvLookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        if (const char* v = std::getenv(name.c_str())) return std::string(v);
        return std::nullopt;
    };
}

}  // namespace prefsync::config
