#!/usr/bin/env bash
# Benchmark (run by hand, not in CI): `prefsync dry-run` over a generated CSV.
#   bench/dry_run_bench.sh [ROWS]      default 1,000,000
# Reports rows/s and peak RSS, and, measured in the same run as a reference, a minimal
# Python csv → json.dumps loop over the same file (what a hand-written script would do,
# without any of prefsync's mapping, validation or hashing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/scripts/build.sh" "$root/build" >/dev/null
"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
touch -d "1 hour ago" "$work/profiles.csv"  # settled: a run waits out a source written within source.settle
sed -e "s|path: profiles.csv|path: $work/profiles.csv|" -e "s|path: state/journal.db|path: $work/state/journal.db|" \
    "$root/examples/prefsync.yaml" > "$work/prefsync.yaml"

measure() {  # prints "seconds peak_rss_kib"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null
    cat "$work/time"
}

read -r p_sec p_rss < <(measure "$root/build/prefsync" -c "$work/prefsync.yaml" dry-run crm-nightly)
echo "prefsync dry-run: $rows rows in ${p_sec}s = $(awk -v r="$rows" -v s="$p_sec" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $((p_rss / 1024)) MiB"

if command -v python3 >/dev/null; then
    cat > "$work/ref.py" <<'PY'
import csv, json, sys
with open(sys.argv[1], newline='', encoding='utf-8') as f:
    out = sys.stdout
    for row in csv.DictReader(f):
        out.write(json.dumps(row, ensure_ascii=False)); out.write('\n')
PY
    read -r r_sec r_rss < <(measure python3 "$work/ref.py" "$work/profiles.csv")
    echo "reference (python csv+json): ${r_sec}s, peak RSS $((r_rss / 1024)) MiB"
    echo "ratio: prefsync is $(awk -v a="$r_sec" -v b="$p_sec" 'BEGIN{printf "%.2f", a/b}')x the reference's speed"
fi
