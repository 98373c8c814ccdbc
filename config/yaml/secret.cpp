#include "config/yaml/secret.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <sstream>

#include "config/yaml/yaml_reader.hpp"

namespace prefsync::config {
namespace {

bool is_env_name(std::string_view s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (char c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    return true;
}

// As systemd's credential_name_valid(): a file name inside $CREDENTIALS_DIRECTORY.
bool is_credential_name(std::string_view s) {
    return !s.empty() && s != "." && s != ".." && s.size() <= 255 && s.find('/') == std::string_view::npos;
}

// A name this value can stand for in a message: the value itself when it is harmless to
// show, else the key it was configured under.
std::string shown(const TokenSpec& t, const std::string& value) {
    if (looks_like_secret(value)) return "given in " + t.key + " (not shown: it looks like a secret)";
    return value;
}

std::string user_name(uid_t uid) {
    std::string out = "uid " + std::to_string(uid);
    passwd pw{};
    passwd* found = nullptr;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
        out = std::string(found->pw_name) + " (" + out + ")";
    return out;
}

// The warning for a secret file that others can read or that another user controls; "" when
// the file is private to the user running prefsync (or cannot be examined: reading it will
// say why).
std::string file_warning(const std::string& key, const std::string& path, std::string_view noun) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "";
    std::string out;
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        out = key + ": the " + std::string(noun) + " file " + path + " has mode " + mode +
              ": its group or other users can " + ((st.st_mode & (S_IRGRP | S_IROTH)) ? "read" : "change") +
              " it; run chmod 600 " + path;
    }
    if (st.st_uid != ::geteuid()) {
        // Whoever owns the file can change its mode and contents at any time.
        out += out.empty() ? key + ": the " + std::string(noun) + " file " + path : std::string("; it");
        out += " is owned by " + user_name(st.st_uid) + ", not by " + user_name(::geteuid()) +
               ", who runs prefsync: chown it to that user";
    }
    return out;
}

}  // namespace

bool looks_like_secret(std::string_view value) {
    // Names and paths are words: digits come as a suffix or a word of their own (TOKEN_2,
    // s3), case changes once per word (MyToken). Generated secrets (hex, base64, UUIDs,
    // JWTs) switch between digits and letters, or between cases, every few characters.
    std::size_t alnum = 0, digit_switches = 0, case_switches = 0;
    auto kind = [](unsigned char c) { return std::isdigit(c) ? 0 : std::isupper(c) ? 1 : std::islower(c) ? 2 : 3; };
    for (std::size_t i = 0; i < value.size(); ++i) {
        int k = kind(static_cast<unsigned char>(value[i]));
        if (k == 3) continue;
        ++alnum;
        if (i == 0) continue;
        int before = kind(static_cast<unsigned char>(value[i - 1]));
        if (before == 3 || before == k) continue;
        if (before == 0 || k == 0)
            ++digit_switches;
        else
            ++case_switches;
    }
    if (alnum < 16) return false;
    // Calibrated on random hex, UUIDs, base64 and JWTs (caught all but ~5% of the shortest
    // base64) against env, credential and path names (none caught without digits).
    return digit_switches >= 5 || (digit_switches >= 1 && 5 * (digit_switches + case_switches) >= 2 * alnum);
}

std::optional<TokenSpec> read_secret_location(YamlReader& r, const YAML::Node& node, const std::string& path,
                                              TokenSpec::Kind kind, std::string_view noun) {
    auto value = r.string(node, path);
    if (!value) return std::nullopt;
    if (value->empty()) {
        r.error(node, path, "must not be empty");
        return std::nullopt;
    }
    TokenSpec spec{kind, *value, r.pos(node), path};
    std::string_view is_not;
    switch (kind) {
        case TokenSpec::Kind::Env:
            if (!is_env_name(*value) || looks_like_secret(*value)) is_not = "an environment variable name";
            break;
        case TokenSpec::Kind::Credential:
            if (!is_credential_name(*value) || looks_like_secret(*value)) is_not = "a credential name";
            break;
        case TokenSpec::Kind::File: {
            spec.value = r.resolve_path(*value);
            // A file that exists is one, whatever its name; only a missing one can be a paste.
            struct stat st {};
            if (::stat(spec.value.c_str(), &st) != 0 && looks_like_secret(*value))
                is_not = "the path of an existing file";
            break;
        }
        case TokenSpec::Kind::None:
        case TokenSpec::Kind::Inline: break;
    }
    if (!is_not.empty()) {
        r.error(node, path,
                "the value is not " + std::string(is_not) + " (did you paste the " + std::string(noun) +
                    " itself? it is not shown)");
        return std::nullopt;
    }
    if (kind == TokenSpec::Kind::File)
        if (auto warning = file_warning(path, spec.value, noun); !warning.empty()) r.warn(warning);
    return spec;
}

std::string read_secret(const TokenSpec& t, const SourcePos& fallback, const std::string& key, const std::string& what,
                        const EnvLookup& env) {
    auto fail = [&](const std::string& message) -> std::string {
        throw ConfigError({{t.pos.file.empty() ? fallback : t.pos, key, message}});
    };
    auto read_file = [&](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) fail("cannot read the " + what + " file " + shown(t, path));
        std::stringstream s;
        s << in.rdbuf();
        std::string secret = s.str();
        // Files written by editors and `echo` end with a newline that is not part of the secret.
        while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) secret.pop_back();
        return secret;
    };
    std::string secret;
    switch (t.kind) {
        case TokenSpec::Kind::None: return "";
        case TokenSpec::Kind::Env: {
            // Config time refuses such a value; this guards specs built elsewhere.
            if (!is_env_name(t.value) || looks_like_secret(t.value))
                fail("the value of " + t.key + " is not an environment variable name (did you paste the " + what +
                     " itself? it is not shown)");
            auto v = env(t.value);
            if (!v || v->empty()) fail("environment variable " + t.value + " (" + t.key + ") is not set");
            secret = *v;
            break;
        }
        case TokenSpec::Kind::File: secret = read_file(t.value); break;
        case TokenSpec::Kind::Credential: {
            auto dir = env("CREDENTIALS_DIRECTORY");
            if (!dir || dir->empty())
                fail("a credential (" + what + ") needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)");
            secret = read_file(*dir + "/" + t.value);
            break;
        }
        case TokenSpec::Kind::Inline: secret = t.value; break;
    }
    if (secret.empty()) fail("the " + what + " is empty");
    return secret;
}

}  // namespace prefsync::config
