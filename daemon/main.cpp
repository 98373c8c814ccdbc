#include "daemon/cli/cli.hpp"

int main(int argc, char** argv) { return prefsync::cli::run(argc, argv); }
