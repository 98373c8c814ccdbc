#pragma once
// The one exception ladder of every command: what a command's start-up or run threw,
// turned into an exit code and one message (per-row problems are values and never get
// here). Exit codes: 1 the configuration (or the command line) is wrong, or the journal
// cannot be read by this user (or needs a writer's upgrade first), nothing was read or sent; 3 a fatal condition (a source, sink or journal that fails), nothing lost;
// 4 a source that changed as it was opened or is still being written (connectors::SourceChangedError).
// Which layer throws and which returns values: docs/ARCHITECTURE.md, section 6.
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace prefsync::cli {

struct FailureReport {
    int exit_code = 0;
    std::vector<std::string> errors;  // "jobs.crm.source: ...": one per problem, each a log event
    // The source changed as it was opened or is a file still being written (exit 4): read
    // again later, it is likely whole (the daemon does so soon, without parking the job).
    bool source_changed = false;
    // As text mode prints them: "error: " before each, one per line, no trailing newline.
    std::string message() const;
    // On one line, "; " between them: for a run report or a parked job's reason.
    std::string summary() const;
};

// What `error` means for job `job` ("" for commands without one).
FailureReport describe_failure(std::exception_ptr error, const std::string& job);

// Runs `body`; an exception is logged (one error event per problem) and becomes its exit
// code, and, given `error`, its summary() is stored there (for a run report).
int guarded(const std::string& job, const std::function<int()>& body, std::string* error = nullptr);

}  // namespace prefsync::cli
