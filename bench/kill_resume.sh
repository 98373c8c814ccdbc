#!/usr/bin/env bash
# Crash-safety drill (by hand; CI runs the same with 3,000 rows): a create-mode backfill of
# ROWS rows killed with SIGKILL KILLS times at random moments, then `backfill --resume`.
# Checks: every row delivered, no profile created twice, journal integrity_check ok.
#   bench/kill_resume.sh [ROWS] [KILLS]      defaults 50,000 and 5
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-50000}
kills=${2:-5}
. "$root/bench/lib.sh"
bench_setup
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
touch -d "1 hour ago" "$work/profiles.csv"  # settled: a run waits out a source written within source.settle
# A server that accepts a second create of an alternate id (the reference allows it): a
# create sent twice shows as a second profile instead of hiding behind a 409.
start_emulator "$work" --processing-delay 0ms --latency 1 --accept-duplicates
sed -e "s|\${PREFSYNC_BASE_URL:-http://127.0.0.1:8080/Profiles/v2}|http://$addr/Profiles/v2|" \
    -e "s|path: profiles.csv|path: $work/profiles.csv|" -e "s|\${PREFSYNC_JOURNAL:-state/journal.db}|$work/journal.db|" \
    -e "s|\${PREFSYNC_RATE:-50}|5000|" -e "s|mode: upsert|mode: create|" "$root/examples/prefsync.yaml" > "$work/prefsync.yaml"
export PREFSYNC_TOKEN=emulator-token
for k in $(seq "$kills"); do
    "$root/build/prefsync" -c "$work/prefsync.yaml" backfill crm-nightly --resume > /dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v s=$RANDOM 'BEGIN{srand(s); printf "%.2f", 1 + rand() * 4}')"
    kill -9 $pid 2>/dev/null && echo "kill $k: SIGKILL at $(curl -s "http://$addr/__admin/stats" | grep -o '"requests":[0-9]*')"
    wait $pid 2>/dev/null || true
done
"$root/build/prefsync" -c "$work/prefsync.yaml" backfill crm-nightly --resume 2>&1 | tail -2
curl -s "http://$addr/__admin/state" > "$work/state.json"
python3 - "$work/state.json" "$rows" <<'PY'
import json, sys, collections
profiles = json.load(open(sys.argv[1]))["profiles"]
ids = collections.Counter(a["AlternateId"] for p in profiles for a in p.get("AlternateIds", []))
dups = [i for i, n in ids.items() if n > 1]
print(f"profiles {len(profiles)}, distinct alternate ids {len(ids)}, expected {sys.argv[2]}, duplicates {len(dups)}")
PY
echo "journal integrity_check: $(sqlite3 "$work/journal.db" 'PRAGMA integrity_check')"
