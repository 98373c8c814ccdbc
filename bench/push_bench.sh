#!/usr/bin/env bash
# Benchmark (by hand, not CI): `prefsync backfill` pushing generated rows to the emulator.
#   bench/push_bench.sh [ROWS]        default 100,000
# Two runs, each against a fresh emulator and journal:
#   1. zero latency, connections 16, rate limit far above what is reachable: the client's
#      own ceiling (rows/s, CPU µs per row);
#   2. 50 ms emulator latency, connections 64: the ceiling is 64 / 0.05 s = 1,280 req/s;
#      reported as the ratio of delivered rows/s to that limit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-100000}
. "$root/bench/lib.sh"
bench_setup
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
touch -d "1 hour ago" "$work/profiles.csv"  # settled: a run waits out a source written within source.settle

run() {  # name latency_ms connections
    local name=$1 latency=$2 conns=$3
    rm -rf "$work/state"
    start_emulator "$work" --threads 1 --processing-delay 0ms --latency "$latency"
    sed -e "s|\${PREFSYNC_BASE_URL:-http://127.0.0.1:8080/Profiles/v2}|http://$addr/Profiles/v2|" \
        -e "s|path: profiles.csv|path: $work/profiles.csv|" -e "s|\${PREFSYNC_JOURNAL:-state/journal.db}|$work/state/journal.db|" \
        -e "s|connections: 16|connections: $conns|" -e "s|\${PREFSYNC_RATE:-50}|100000|" -e "s|burst: 50|burst: 1000|" \
        "$root/examples/prefsync.yaml" > "$work/prefsync.yaml"
    PREFSYNC_TOKEN=emulator-token /usr/bin/time -f "%e %U %S %M" -o "$work/time" \
        "$root/build/prefsync" -c "$work/prefsync.yaml" backfill crm-nightly > "$work/out" 2> "$work/err" || true
    read -r wall user sys rss < "$work/time"
    stop_emulator
    local rps cpu_us
    rps=$(awk -v r="$rows" -v s="$wall" 'BEGIN{printf "%.0f", r/s}')
    cpu_us=$(awk -v u="$user" -v s="$sys" -v r="$rows" 'BEGIN{printf "%.1f", (u+s)*1e6/r}')
    echo "$name: $rows rows in ${wall}s = $rps rows/s; prefsync CPU ${cpu_us} µs/row; peak RSS $((rss / 1024)) MiB"
    grep -o "sent [0-9]* requests on [0-9]* connection(s)" "$work/out" | sed 's/^/    /'
    LAST_RPS=$rps
}
run "zero latency, 16 connections" 0 16
run "50 ms latency, 64 connections" 50 64
echo "    limit 64/0.05 s = 1280 req/s; delivered/limit = $(awk -v r="$LAST_RPS" 'BEGIN{printf "%.2f", r/1280}')"
