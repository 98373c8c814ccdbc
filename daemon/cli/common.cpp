#include "daemon/cli/common.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "daemon/base/json_text.hpp"
#include "daemon/base/logger.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/cli/errors.hpp"

namespace prefsync::cli {

LoadedJob load_for_job(const std::string& config_path, const std::string& job) {
    LoadedJob out;
    const auto& log = base::logger();
    try {
        out.config = config::load_config(config_path);
    } catch (const config::ConfigError&) {
        // Logged as the default logger does: the file's own log settings are not trusted yet.
        auto failure = describe_failure(std::current_exception(), "");
        for (const auto& e : failure.errors) log.error(e);
        out.error = failure.summary();
        out.exit_code = failure.exit_code;
        return out;
    }
    base::set_up_logging(out.config->log);
    for (auto& w : out.config->warnings) base::logger().warn(w);
    if (job.empty()) return out;
    out.job = out.config->find_job(job);
    if (!out.job) {
        std::string names;
        for (auto& j : out.config->jobs) names += (names.empty() ? "" : ", ") + j.name;
        out.error = config_path + ": no job named \"" + job + "\" (jobs: " + names + ")";
        base::logger().error(out.error);
        out.exit_code = kUsage;
        out.config.reset();
    }
    return out;
}

void appendf(std::string& out, const char* format, ...) {
    va_list args, again;
    va_start(args, format);
    va_copy(again, args);
    int n = std::vsnprintf(nullptr, 0, format, args);
    va_end(args);
    if (n > 0) {
        auto at = out.size();
        out.resize(at + static_cast<std::size_t>(n) + 1);
        std::vsnprintf(out.data() + at, static_cast<std::size_t>(n) + 1, format, again);
        out.resize(at + static_cast<std::size_t>(n));
    }
    va_end(again);
}

std::string user_agent() {
    return std::string("prefsync/") + PREFSYNC_VERSION;
}

JsonFields& JsonFields::add(std::string_view key, std::string_view text) {
    fields_.emplace_back(std::string(key), base::json_string(text));
    return *this;
}
JsonFields& JsonFields::add(std::string_view key, std::int64_t n) {
    fields_.emplace_back(std::string(key), std::to_string(n));
    return *this;
}
JsonFields& JsonFields::add(std::string_view key, double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", x);
    fields_.emplace_back(std::string(key), buf);
    return *this;
}
JsonFields& JsonFields::add(std::string_view key, bool b) {
    fields_.emplace_back(std::string(key), b ? "true" : "false");
    return *this;
}

std::string JsonFields::text() const {
    std::string json = "{";
    for (const auto& [key, value] : fields_) {
        json += json.size() > 1 ? ",\n  " : "\n  ";
        json += base::json_string(key) + ": " + value;
    }
    return json + "\n}\n";
}

JsonFields run_report_fields(const std::string& job, const std::string& kind, std::int64_t run_id, int exit_code,
                             const std::string& error, double seconds) {
    return JsonFields()
        .add("job", job)
        .add("kind", kind)
        .add("run_id", run_id)
        .add("exit_code", exit_code)
        .add("error", error)
        .add("finished_at_ms", now_ms())
        .add("seconds", seconds);
}

void write_report(const std::string& path, const JsonFields& fields) {
    auto json = fields.text() + "\n";  // a text file: tools that read lines see its last
    auto tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && ::write(fd, json.data(), json.size()) == static_cast<ssize_t>(json.size());
    if (fd >= 0) ok = ::close(fd) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        if (fd >= 0) ::unlink(tmp.c_str());  // never a half-written report left beside it
        base::logger().warn("Cannot write the report", {{"path", path}, {"error", std::strerror(err)}});
    }
}

}  // namespace prefsync::cli
