#!/usr/bin/env bash
# Configures and builds prefsync. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
launcher=()
# ccache, when installed, makes rebuilds in several work trees cheap; CI does without.
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DPREFSYNC_WERROR=ON "${launcher[@]}" "$@" >/dev/null
# Two cores and Boost-heavy translation units: more than two jobs only thrashes.
cmake --build "$build" -j "${PREFSYNC_JOBS:-2}"
