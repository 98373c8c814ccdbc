#include "daemon/cli/errors.hpp"

#include <new>

#include "config/config.hpp"
#include "connectors/source.hpp"
#include "connectors/table_sink.hpp"
#include "daemon/base/logger.hpp"
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

std::string FailureReport::message() const {
    std::string text;
    for (const auto& e : errors) text += (text.empty() ? "error: " : "\nerror: ") + e;
    return text;
}

std::string FailureReport::summary() const {
    std::string text;
    for (const auto& e : errors) text += (text.empty() ? "" : "; ") + e;
    return text;
}

FailureReport describe_failure(std::exception_ptr error, const std::string& job) {
    std::string jobs = job.empty() ? "" : "jobs." + job;
    try {
        std::rethrow_exception(error);
    } catch (const config::ConfigError& e) {
        FailureReport report{kUsage, {}};
        for (const auto& d : e.diagnostics()) report.errors.push_back(d.to_string());
        if (report.errors.empty()) report.errors.push_back(e.what());
        return report;
    } catch (const connectors::SourceChangedError& e) {
        // Not a failure: its writer is likely done soon (a sync exits 4, as when it changed
        // while it was read), and nothing was read.
        return {kInterrupted, {under(jobs.empty() ? "" : jobs + ".source", e.what())}, true};
    } catch (const connectors::SourceError& e) {
        return {kFatal, {under(jobs.empty() ? "" : jobs + ".source", e.what())}};
    } catch (const connectors::SinkError& e) {
        return {kFatal, {under(jobs.empty() ? "" : jobs + ".sink", e.what())}};
    } catch (const journal::JournalAccessError& e) {
        // Nothing was read: like a configuration error, for whoever runs the command to set right.
        return {kUsage, {e.what()}};
    } catch (const journal::JournalError& e) {
        return {kFatal, {std::string(e.what()) + " (nothing recorded so far is lost)"}};
    } catch (const std::bad_alloc&) {
        return {kFatal, {"out of memory"}};
    } catch (const std::exception& e) {
        return {kFatal, {e.what()}};
    } catch (...) {
        return {kFatal, {"an unexpected failure"}};
    }
}

int guarded(const std::string& job, const std::function<int()>& body, std::string* error) {
    try {
        return body();
    } catch (...) {
        auto failure = describe_failure(std::current_exception(), job);
        for (const auto& e : failure.errors) base::logger().error(e);
        if (error) *error = failure.summary();
        return failure.exit_code;
    }
}

}  // namespace prefsync::cli
