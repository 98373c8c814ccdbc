#!/usr/bin/env bash
# Benchmark (run by hand, not in CI): pulling profiles back out of the emulator.
#   bench/pull_bench.sh [ROWS]      default 50,000
# Pushes the generated example profiles into an emulator, pulls them all by alternate id
# into JSONL (prefsync reports profiles/s, MB/s of JSON parsed and the parse share of its
# CPU), then, in the same run as the reference, parses the pulled profiles with prefsync's
# simdjson reader and with Boost.JSON (bench/parse_bench.cpp, Google Benchmark).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-50000}
. "$root/bench/lib.sh"
bench_setup
start_emulator "$work" --processing-delay 0s
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
touch -d "1 hour ago" "$work/profiles.csv"  # settled: a run waits out a source written within source.settle
cp "$root/examples/prefsync.yaml" "$work/prefsync.yaml"
cat >> "$work/prefsync.yaml" <<'YAML'
  export:
    pull: { reconcile: crm-nightly }
    sink: { type: jsonl, path: out/profiles.jsonl }
YAML
export PREFSYNC_TOKEN=emulator-token PREFSYNC_BASE_URL="http://$addr/Profiles/v2" PREFSYNC_RATE=100000 \
       PREFSYNC_JOURNAL="$work/state/journal.db"
"$root/build/prefsync" -c "$work/prefsync.yaml" sync crm-nightly | tail -1
echo "== pull =="
"$root/build/prefsync" -c "$work/prefsync.yaml" pull export
echo "== parsing the same profiles: simdjson reader vs Boost.JSON =="
"$root/build/bench/prefsync-parse-bench" "$work/out/profiles.jsonl" --benchmark_min_time=1
