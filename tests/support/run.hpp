#pragma once
// Runs a command through the shell and captures its exit code, stdout and stderr.
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace prefsync::testing {

struct RunResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

inline RunResult run(const std::string& command) {
    TempDir dir;
    auto out = dir.file("stdout"), err = dir.file("stderr");
    int status = std::system((command + " >" + out + " 2>" + err + " </dev/null").c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

inline std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

}  // namespace prefsync::testing
