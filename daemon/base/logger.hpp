#pragma once
// Logging: events are sentences with fields, written to stderr through spdlog as text or as
// JSON, one line each.
//
//   logger().warn("Retrying update", {{"identity", id}, {"status", 503}, {"attempt", 3}});
//   text:  warning: Retrying update. identity=CRMID:42 status=503 attempt=3
//   json:  {"time":"2026-12-01T02:00:00.123Z","level":"warning","job":"crm","run":12,
//           "message":"Retrying update","identity":"CRMID:42","status":503,"attempt":3}
//
// Design constraints:
// - One process-wide logger, a default (text, info) until the command has loaded its config
//   and set it up once from `log:`, before any other thread starts; read-only after that.
//   Passing a logger through every layer down to the request loop would thread a parameter
//   through code that otherwise does not care, for one setting fixed at start. Code that can
//   take one (the daemon loop) takes a `const Logger&`, which tests build over a string.
// - An event below the level costs one comparison: nothing is formatted, no field rendered.
//   Fields hold views of the caller's values, valid for the call.
// - job and run come from the LogScope of whoever runs a job (thread-local, nested scopes
//   restore the outer one), so a warning deep in the request loop names them in JSON
//   without being told. Text lines leave them out, as they did before JSON existed.
// - Text mode labels errors, warnings and debug lines ("error: ", "warning: ", "debug: ");
//   an info line is the message alone. Under journald ($JOURNAL_STREAM names our stderr),
//   every line, JSON included, starts with "<N>": journald strips it into the entry's
//   priority, so `journalctl -p warning` works and the stored message is still pure JSON.
// - Never a token; bodies only when `log.bodies` is set (logs_bodies()), at debug level, and
//   through mask_personal_data() (personal_data.hpp).
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace spdlog {
class logger;
namespace sinks {
class sink;
}
}  // namespace spdlog

namespace prefsync::base {

// Most severe first: an event is written when its level is at or above the configured one.
enum class LogLevel { Error, Warning, Info, Debug };
enum class LogFormat { Text, Json };

std::string_view to_string(LogLevel level);    // "error", "warning", "info", "debug"
std::string_view to_string(LogFormat format);  // "text", "json"
// The config's spelling; nullopt for anything else (check-config rejects it).
std::optional<LogLevel> parse_log_level(std::string_view text);
std::optional<LogFormat> parse_log_format(std::string_view text);
inline constexpr std::string_view kLogLevels = "error, warning, info, debug";
inline constexpr std::string_view kLogFormats = "text, json";

struct LogSettings {
    LogLevel level = LogLevel::Info;
    LogFormat format = LogFormat::Text;
    bool bodies = false;  // profile bodies are personal data: off unless asked for
    bool operator==(const LogSettings&) const = default;
};

// A field's value: text, a whole number, a number or a flag (rendered as such in JSON); or
// nothing (std::nullopt), and then the field is left out.
class LogValue {
public:
    LogValue(std::nullopt_t) {}
    LogValue(std::string_view text) : value_(text) {}
    LogValue(const char* text) : value_(std::string_view(text)) {}
    LogValue(const std::string& text) : value_(std::string_view(text)) {}
    LogValue(bool flag) : value_(flag) {}
    template <std::integral T>
    requires(!std::same_as<T, bool> && !std::same_as<T, char>) LogValue(T n) : value_(static_cast<std::int64_t>(n)) {}
    template <std::floating_point T>
    LogValue(T x) : value_(static_cast<double>(x)) {}

    using Variant = std::variant<std::monostate, std::string_view, std::int64_t, double, bool>;
    const Variant& get() const { return value_; }
    bool absent() const { return std::holds_alternative<std::monostate>(value_); }

private:
    Variant value_;
};

// `text`, or no field at all when it is empty ({"fatal", omit_if_empty(reason)}).
inline LogValue omit_if_empty(std::string_view text) {
    return text.empty() ? LogValue(std::nullopt) : LogValue(text);
}

// "time", "level" and "message" are the event's own keys in JSON; "job" and "run" given as
// fields replace the scope's.
struct LogField {
    std::string_view key;
    LogValue value;
};
using LogFields = std::initializer_list<LogField>;

struct LogContext {
    std::string job;
    std::optional<std::int64_t> run;
};

// Sets the job (and run) of every event this thread logs while it lives.
class LogScope {
public:
    explicit LogScope(std::string job, std::optional<std::int64_t> run = std::nullopt);
    ~LogScope();
    LogScope(const LogScope&) = delete;
    LogScope& operator=(const LogScope&) = delete;

    // The innermost scope of this thread; nullptr outside any.
    static const LogContext* current();

private:
    LogContext context_;
    const LogContext* outer_;
};

// Whether stderr is connected to journald: $JOURNAL_STREAM names its device and inode (a
// child whose stderr was redirected to a file inherits the variable, not the connection).
bool journald_connected();

class Logger {
public:
    using Clock = std::function<std::chrono::system_clock::time_point()>;

    // To stderr; "<N>" prefixes when journald_connected().
    explicit Logger(LogSettings settings = {});
    // To `sink` (tests: an ostream sink); `clock` stamps the events (default: the system clock).
    Logger(LogSettings settings, std::shared_ptr<spdlog::sinks::sink> sink, bool journald, Clock clock = {});

    void error(std::string_view message, LogFields fields = {}) const { log(LogLevel::Error, message, fields); }
    void warn(std::string_view message, LogFields fields = {}) const { log(LogLevel::Warning, message, fields); }
    void info(std::string_view message, LogFields fields = {}) const { log(LogLevel::Info, message, fields); }
    void debug(std::string_view message, LogFields fields = {}) const { log(LogLevel::Debug, message, fields); }
    void log(LogLevel level, std::string_view message, LogFields fields) const {
        if (enabled(level)) write(level, message, fields);
    }

    bool enabled(LogLevel level) const { return level <= settings_.level; }
    // Whether a body may be logged now: `log.bodies` is set and debug events are written.
    bool logs_bodies() const { return settings_.bodies && enabled(LogLevel::Debug); }
    const LogSettings& settings() const { return settings_; }

private:
    void write(LogLevel level, std::string_view message, LogFields fields) const;

    LogSettings settings_;
    std::shared_ptr<spdlog::logger> sink_;
    Clock clock_;
};

// The process's logger (see the design constraints above).
const Logger& logger();
// Replaces it with one built from `settings`; call once at start, before other threads run.
void set_up_logging(const LogSettings& settings);

}  // namespace prefsync::base
