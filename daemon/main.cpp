#include <sys/prctl.h>

#include <csignal>

#include "daemon/cli/cli.hpp"

int main(int argc, char** argv) {
    // The process holds the API token and personal data: no core dumps of it.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    // A file-size limit (or a full quota) must be an error the journal reports, naming the
    // file, not a signal that kills the process between a write and its record.
    std::signal(SIGXFSZ, SIG_IGN);
    return prefsync::cli::run(argc, argv);
}
