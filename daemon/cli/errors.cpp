#include "daemon/cli/errors.hpp"

#include <cstdio>
#include <new>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/base/log.hpp"
#include "daemon/cli/cli.hpp"
#include "daemon/journal/database.hpp"

namespace prefsync::cli {
namespace {

// A message that does not already say which part of the config it is about gets `key`.
std::string under(const std::string& key, const std::string& what) {
    if (key.empty() || what.starts_with("jobs.")) return what;
    return key + ": " + what;
}

}  // namespace

FailureReport describe_failure(std::exception_ptr error, const std::string& job) {
    std::string jobs = job.empty() ? "" : "jobs." + job;
    try {
        std::rethrow_exception(error);
    } catch (const config::ConfigError& e) {
        std::string message;
        for (const auto& d : e.diagnostics()) message += (message.empty() ? "error: " : "\nerror: ") + d.to_string();
        return {kUsage, message.empty() ? "error: " + std::string(e.what()) : message};
    } catch (const connectors::SourceError& e) {
        return {kFatal, "error: " + under(jobs.empty() ? "" : jobs + ".source", e.what())};
    } catch (const connectors::SinkError& e) {
        return {kFatal, "error: " + under(jobs.empty() ? "" : jobs + ".sink", e.what())};
    } catch (const journal::JournalError& e) {
        return {kFatal, "error: " + std::string(e.what()) + " (nothing recorded so far is lost)"};
    } catch (const std::bad_alloc&) {
        return {kFatal, "error: out of memory"};
    } catch (const std::exception& e) {
        return {kFatal, "error: " + std::string(e.what())};
    } catch (...) {
        return {kFatal, "error: an unexpected failure"};
    }
}

int guarded(const std::string& job, const std::function<int()>& body) {
    try {
        return body();
    } catch (...) {
        auto failure = describe_failure(std::current_exception(), job);
        std::fprintf(stderr, "%s%s\n", base::priority_prefix(base::Priority::Error), failure.message.c_str());
        return failure.exit_code;
    }
}

}  // namespace prefsync::cli
