#!/usr/bin/env bash
# Benchmark (run by hand, not in CI): reading a SQL table through the mapper, no network.
#   bench/sql_read_bench.sh [ROWS]      default 1,000,000
# Loads the generated example profiles into a private PostgreSQL server
# (scripts/pg-test-server.sh) and a SQLite file, then runs `prefsync dry-run` of the
# example mapping over each (cursor reads, type conversion, mapping, JSON, hashing), and,
# in the same run as the references, the databases' own bulk exports of the same rows:
# psql's \copy (SELECT ...) TO '/dev/null' and sqlite3 -csv. Reports rows/s and peak RSS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}
"$root/scripts/build.sh" "$root/build" >/dev/null
work=$(mktemp -d /tmp/prefsync-bench.XXXXXX)
chmod 755 "$work"
pg_dir="$work/pg"
trap '"$root/scripts/pg-test-server.sh" stop "$pg_dir"; rm -rf "$work"' EXIT
eval "$("$root/scripts/pg-test-server.sh" start "$pg_dir")"
export PGPASSWORD=$PREFSYNC_TEST_PG_PASSWORD

"$root/build/tools/prefsync-gen-profiles" "$rows" > "$work/profiles.csv"
columns=$(head -1 "$work/profiles.csv")
ddl="CREATE TABLE customers($(echo "$columns" | sed 's/,/ text, /g') text)"
psql "$PREFSYNC_TEST_PG" -qc "$ddl"
psql "$PREFSYNC_TEST_PG" -qc "\\copy customers FROM '$work/profiles.csv' CSV HEADER"
psql "$PREFSYNC_TEST_PG" -qc "VACUUM ANALYZE customers"
sqlite3 "$work/crm.db" "$ddl;" ".import --csv --skip 1 $work/profiles.csv customers"

config_for() {  # config_for NAME SOURCE-YAML → writes $work/NAME.yaml from the example
    awk -v src="$2" '/^    source:/ {print src; skip=1; next} skip && /^      / {next} {skip=0; print}' \
        "$root/examples/prefsync.yaml" | sed "s|path: \${PREFSYNC_JOURNAL:-state/journal.db}|path: $work/state/journal.db|" \
        > "$work/$1.yaml"
}
config_for pg "    source: { type: postgres, conninfo: \"$PREFSYNC_TEST_PG\", password_env: PGPASSWORD, table: customers, fetch_rows: 2000 }"
config_for lite "    source: { type: sqlite, path: $work/crm.db, table: customers }"

measure() {  # prints "seconds peak_rss_kib"
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null
    cat "$work/time"
}
report() {  # report LABEL SECONDS RSS_KIB
    echo "$1: $rows rows in ${2}s = $(awk -v r="$rows" -v s="$2" 'BEGIN{printf "%.0f", r/s}') rows/s, peak RSS $(($3 / 1024)) MiB"
}

read -r pg_sec pg_rss < <(measure "$root/build/prefsync" -c "$work/pg.yaml" dry-run crm-nightly)
report "prefsync dry-run, PostgreSQL source" "$pg_sec" "$pg_rss"
read -r pgref_sec pgref_rss < <(measure psql "$PREFSYNC_TEST_PG" -qc "\\copy (SELECT * FROM customers) TO '/dev/null' CSV")
report "reference: psql \\copy to /dev/null" "$pgref_sec" "$pgref_rss"
read -r lite_sec lite_rss < <(measure "$root/build/prefsync" -c "$work/lite.yaml" dry-run crm-nightly)
report "prefsync dry-run, SQLite source" "$lite_sec" "$lite_rss"
read -r literef_sec literef_rss < <(measure sqlite3 -csv "$work/crm.db" "SELECT * FROM customers")
report "reference: sqlite3 -csv" "$literef_sec" "$literef_rss"
echo "ratio PostgreSQL: prefsync takes $(awk -v a="$pg_sec" -v b="$pgref_sec" 'BEGIN{printf "%.2f", a/b}')x the time of psql \\copy"
echo "ratio SQLite: prefsync takes $(awk -v a="$lite_sec" -v b="$literef_sec" 'BEGIN{printf "%.2f", a/b}')x the time of sqlite3 -csv"
