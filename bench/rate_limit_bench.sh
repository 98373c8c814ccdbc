#!/usr/bin/env bash
# Benchmark (by hand, not CI): prefsync against an emulator that enforces R requests/s
# (1 s window, 429 + Retry-After 1). Three client settings, measured in the same run:
#   at R with burst 1, at R with burst 10, and at 2R with burst 1.
# Reports 429s (share of requests) and delivered req/s as a ratio of R.
#   bench/rate_limit_bench.sh [R] [ROWS]      defaults 100 and 2,000
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
R=${1:-100}
rows=${2:-2000}
. "$root/bench/lib.sh"
bench_setup
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
touch -d "1 hour ago" "$work/profiles.csv"  # settled: a run waits out a source written within source.settle
run() {  # client_rate burst
    rm -rf "$work/state"
    start_emulator "$work" --processing-delay 0ms --rate-limit "$R" --retry-after 1
    cat > "$work/p.yaml" <<YAML
api: { base_url: "http://$addr/Profiles/v2", client_id: "12345", token_env: PREFSYNC_TOKEN }
rate_limit: { requests_per_second: $1, burst: $2 }
journal: { path: $work/state/journal.db }
jobs:
  crm:
    source: { type: csv, path: $work/profiles.csv }
    identity: { alternate_id_type: CRMID, column: customer_id }
    mapping: { CustomerName.FirstName: first_name }
YAML
    local start end
    start=$(date +%s.%N)
    PREFSYNC_TOKEN=emulator-token "$root/build/prefsync" -c "$work/p.yaml" sync crm > /dev/null 2>&1
    end=$(date +%s.%N)
    curl -s "http://$addr/__admin/stats" > "$work/stats.json"
    stop_emulator
    python3 - "$work/stats.json" "$R" "$rows" "$start" "$end" "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); R = float(sys.argv[2]); rows = int(sys.argv[3])
secs = float(sys.argv[5]) - float(sys.argv[4]); n429 = s["faults"].get("429", 0)
print(f"client {sys.argv[6]}/s burst {sys.argv[7]}: {s['requests']} requests, 429s {n429} "
      f"({100*n429/s['requests']:.2f}%), {rows/secs:.0f} rows/s = {rows/secs/R:.2f} of R={R:.0f}")
PY
}
run "$R" 1
run "$R" 10
run $((R * 2)) 1
