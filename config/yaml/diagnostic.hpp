#pragma once
// A problem found in user input (config or data), located precisely enough to fix it:
// file, line, column and the key path inside the document.
#include <stdexcept>
#include <string>
#include <vector>

namespace prefsync::config {

struct SourcePos {
    std::string file;
    int line = 0;    // 1-based; 0 when unknown
    int column = 0;  // 1-based; 0 when unknown

    std::string to_string() const {
        std::string out = file;
        if (line > 0) out += ":" + std::to_string(line);
        if (line > 0 && column > 0) out += ":" + std::to_string(column);
        return out;
    }
};

struct Diagnostic {
    SourcePos pos;
    std::string key_path;  // e.g. jobs.crm.mapping.Emails[0].EmailAddress
    std::string message;

    // "prefsync.yaml:12:7: jobs.crm.mode: expected create, ... or archive, got "upsret" (did you mean "upsert"?)"
    std::string to_string() const {
        std::string out = pos.to_string();
        out += ": ";
        if (!key_path.empty()) out += key_path + ": ";
        out += message;
        return out;
    }
};

// Thrown at start-up only (configuration time); carries every problem found, not just the
// first, so a user fixes a config in one round.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<Diagnostic> diagnostics)
        : std::runtime_error(join(diagnostics)), diagnostics_(std::move(diagnostics)) {}
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

private:
    static std::string join(const std::vector<Diagnostic>& diagnostics) {
        std::string out;
        for (const auto& d : diagnostics) {
            if (!out.empty()) out += '\n';
            out += d.to_string();
        }
        return out;
    }
    std::vector<Diagnostic> diagnostics_;
};

}  // namespace prefsync::config
