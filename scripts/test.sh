#!/usr/bin/env bash
# One command: install what is missing, build, run the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${BUILD_DIR:-$root/build}
"$root/scripts/build.sh" "$build" "$@"
cd "$build"
ctest --output-on-failure -j 2 --timeout 600
