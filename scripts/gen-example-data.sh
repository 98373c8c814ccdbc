#!/usr/bin/env bash
# Regenerates the example CSV (or a larger one for benchmarks) from a fixed seed.
#   scripts/gen-example-data.sh [ROWS] [OUT]     defaults: 1000 rows → examples/profiles.csv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000}
out=${2:-$root/examples/profiles.csv}
[ -x "$root/build/tools/prefsync-gen-profiles" ] || "$root/scripts/build.sh" "$root/build" >/dev/null
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$out"
echo "wrote $rows rows to $out" >&2
