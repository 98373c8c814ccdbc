#include "daemon/base/logger.hpp"

#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "daemon/base/json_text.hpp"

namespace prefsync::base {
namespace {

thread_local const LogContext* current_context = nullptr;

spdlog::level::level_enum spdlog_level(LogLevel level) {
    switch (level) {
        case LogLevel::Error: return spdlog::level::err;
        case LogLevel::Warning: return spdlog::level::warn;
        case LogLevel::Info: return spdlog::level::info;
        case LogLevel::Debug: return spdlog::level::debug;
    }
    return spdlog::level::info;
}

LogLevel our_level(spdlog::level::level_enum level) {
    if (level >= spdlog::level::err) return LogLevel::Error;
    if (level == spdlog::level::warn) return LogLevel::Warning;
    if (level == spdlog::level::info) return LogLevel::Info;
    return LogLevel::Debug;
}

// syslog priorities, as journald reads them from a "<N>" prefix.
char priority_digit(LogLevel level) {
    switch (level) {
        case LogLevel::Error: return '3';
        case LogLevel::Warning: return '4';
        case LogLevel::Info: return '6';
        case LogLevel::Debug: return '7';
    }
    return '6';
}

// Length of the valid UTF-8 sequence at s[i], 0 if there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) return 1;
    std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k)
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
    // Overlong forms, surrogates and code points past U+10FFFF.
    if (n == 3 && ((c == 0xE0 && byte(i + 1) < 0xA0) || (c == 0xED && byte(i + 1) >= 0xA0))) return 0;
    if (n == 4 && ((c == 0xF0 && byte(i + 1) < 0x90) || (c == 0xF4 && byte(i + 1) >= 0x90))) return 0;
    return n;
}

// A JSON string; bytes that are not UTF-8 (a file name, a server's answer) become U+FFFD, so
// every line stays JSON a log shipper can parse.
void append_json_text(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && utf8_length(s, i) > 0) i += utf8_length(s, i);
    if (i == s.size()) return append_json_string(out, s);
    std::string clean(s.substr(0, i));
    while (i < s.size()) {
        if (auto n = utf8_length(s, i)) {
            clean.append(s.substr(i, n));
            i += n;
        } else {
            clean += "\xEF\xBF\xBD";
            ++i;
        }
    }
    append_json_string(out, clean);
}

void append_number(std::string& out, double x, bool json) {
    if (!std::isfinite(x)) {
        out += json ? "null" : (std::isnan(x) ? "NaN" : (x > 0 ? "+Inf" : "-Inf"));
        return;
    }
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
    out.append(buf, ec == std::errc() ? end : buf);
}

// Text values are bare unless they would not read back as one value: empty, or holding a
// space, a quote, '=', a backslash or a control character; then they are quoted as JSON
// strings, which logfmt readers (Loki's among them) understand.
bool needs_quotes(std::string_view s) {
    if (s.empty()) return true;
    for (unsigned char c : s)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
    return false;
}

void append_value(std::string& out, const LogValue& value, bool json) {
    std::visit(
        [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                out += json ? "null" : "";
            } else if constexpr (std::is_same_v<T, std::string_view>) {
                if (json)
                    append_json_text(out, v);
                else if (needs_quotes(v))
                    append_json_string(out, v);
                else
                    out += v;
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                out += std::to_string(v);
            } else if constexpr (std::is_same_v<T, double>) {
                append_number(out, v, json);
            } else {
                out += v ? "true" : "false";
            }
        },
        value.get());
}

const LogField* find(LogFields fields, std::string_view key) {
    for (const auto& f : fields)
        if (f.key == key && !f.value.absent()) return &f;
    return nullptr;
}

// Text: "Message. key=value key=value" (the label and priority are the formatter's).
void render_text(std::string& out, std::string_view message, LogFields fields) {
    out += message;
    bool first = true;
    for (const auto& f : fields) {
        if (f.value.absent()) continue;
        out += first ? (message.ends_with('.') || message.empty() ? " " : ". ") : " ";
        first = false;
        out += f.key;
        out += '=';
        append_value(out, f.value, false);
    }
}

// JSON, the members after time and level: job, run, message, then the fields in order.
void render_json(std::string& out, std::string_view message, LogFields fields, const LogContext* context) {
    auto member = [&](std::string_view key) {
        if (!out.empty()) out += ',';
        append_json_string(out, key);
        out += ':';
    };
    if (auto* job = find(fields, "job")) {
        member("job");
        append_value(out, job->value, true);
    } else if (context && !context->job.empty()) {
        member("job");
        append_json_text(out, context->job);
    }
    if (auto* run = find(fields, "run")) {
        member("run");
        append_value(out, run->value, true);
    } else if (context && context->run) {
        member("run");
        out += std::to_string(*context->run);
    }
    member("message");
    append_json_text(out, message);
    for (const auto& f : fields) {
        if (f.key == "job" || f.key == "run" || f.value.absent()) continue;
        member(f.key);
        append_value(out, f.value, true);
    }
}

void append_time(spdlog::memory_buf_t& dest, std::chrono::system_clock::time_point t) {
    auto ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                          tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms - secs * 1000LL));
    dest.append(buf, buf + n);
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
    dest.append(s.data(), s.data() + s.size());
}

// The line around the rendered event: the journald priority, then the text label, or the
// JSON object's time and level.
class LineFormatter final : public spdlog::formatter {
public:
    LineFormatter(LogFormat format, bool journald) : format_(format), journald_(journald) {}

    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        auto level = our_level(msg.level);
        if (journald_) {
            const char prefix[] = {'<', priority_digit(level), '>'};
            dest.append(prefix, prefix + 3);
        }
        std::string_view payload(msg.payload.data(), msg.payload.size());
        if (format_ == LogFormat::Json) {
            append(dest, "{\"time\":\"");
            append_time(dest, msg.time);
            append(dest, "\",\"level\":\"");
            append(dest, to_string(level));
            append(dest, "\",");
            append(dest, payload);
            append(dest, "}\n");
            return;
        }
        if (level != LogLevel::Info) {
            append(dest, to_string(level));
            append(dest, ": ");
        }
        append(dest, payload);
        append(dest, "\n");
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(*this); }

private:
    LogFormat format_;
    bool journald_;
};

Logger& process_logger() {
    // Never destroyed: a thread still running at exit (the signal watcher) may log.
    static Logger* instance = new Logger();
    return *instance;
}

}  // namespace

std::string_view to_string(LogLevel level) {
    switch (level) {
        case LogLevel::Error: return "error";
        case LogLevel::Warning: return "warning";
        case LogLevel::Info: return "info";
        case LogLevel::Debug: return "debug";
    }
    return "info";
}

std::string_view to_string(LogFormat format) {
    return format == LogFormat::Json ? "json" : "text";
}

std::optional<LogLevel> parse_log_level(std::string_view text) {
    for (auto level : {LogLevel::Error, LogLevel::Warning, LogLevel::Info, LogLevel::Debug})
        if (text == to_string(level)) return level;
    return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view text) {
    for (auto format : {LogFormat::Text, LogFormat::Json})
        if (text == to_string(format)) return format;
    return std::nullopt;
}

LogScope::LogScope(std::string job, std::optional<std::int64_t> run)
    : context_{std::move(job), run}, outer_(current_context) {
    current_context = &context_;
}

LogScope::~LogScope() {
    current_context = outer_;
}

const LogContext* LogScope::current() {
    return current_context;
}

bool journald_connected() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev && static_cast<unsigned long long>(st.st_ino) == ino;
}

Logger::Logger(LogSettings settings)
    : Logger(settings, std::make_shared<spdlog::sinks::stderr_sink_mt>(), journald_connected()) {}

Logger::Logger(LogSettings settings, std::shared_ptr<spdlog::sinks::sink> sink, bool journald, Clock clock)
    : settings_(settings), clock_(std::move(clock)) {
    sink->set_formatter(std::make_unique<LineFormatter>(settings.format, journald));
    sink_ = std::make_shared<spdlog::logger>("prefsync", std::move(sink));
    sink_->set_level(spdlog_level(settings.level));
    sink_->flush_on(spdlog::level::trace);  // every line, at once: a crash must not eat the last ones
}

void Logger::write(LogLevel level, std::string_view message, LogFields fields) const {
    std::string payload;
    payload.reserve(64 + message.size() + 32 * fields.size());
    if (settings_.format == LogFormat::Json)
        render_json(payload, message, fields, current_context);
    else
        render_text(payload, message, fields);
    auto now = clock_ ? clock_() : std::chrono::system_clock::now();
    sink_->log(now, spdlog::source_loc{}, spdlog_level(level), spdlog::string_view_t(payload.data(), payload.size()));
}

const Logger& logger() {
    return process_logger();
}

void set_up_logging(const LogSettings& settings) {
    process_logger() = Logger(settings);
}

}  // namespace prefsync::base
