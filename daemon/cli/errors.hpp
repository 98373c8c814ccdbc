#pragma once
// The one exception ladder of every command: what a command's start-up or run threw,
// turned into an exit code and one message (per-row problems are values and never get
// here). Exit codes: 1 the configuration (or the command line) is wrong, nothing was read
// or sent; 3 a fatal condition (a source, sink or journal that fails), nothing lost.
#include <exception>
#include <functional>
#include <string>

namespace prefsync::cli {

struct FailureReport {
    int exit_code = 0;
    std::string message;  // "error: jobs.crm.source: ..." (one or more lines, no trailing newline)
};

// What `error` means for job `job` ("" for commands without one).
FailureReport describe_failure(std::exception_ptr error, const std::string& job);

// Runs `body`; an exception is printed to stderr and becomes its exit code.
int guarded(const std::string& job, const std::function<int()>& body);

}  // namespace prefsync::cli
