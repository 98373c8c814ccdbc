#include "config/yaml/secret.hpp"

#include <cctype>
#include <fstream>
#include <sstream>

namespace prefsync::config {

std::string read_secret(const TokenSpec& t, const SourcePos& fallback, const std::string& key,
                        const std::string& what, const EnvLookup& env) {
    auto fail = [&](const std::string& message) -> std::string {
        throw ConfigError({{t.pos.file.empty() ? fallback : t.pos, key, message}});
    };
    auto read_file = [&](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) fail("cannot read the " + what + " file " + path);
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
