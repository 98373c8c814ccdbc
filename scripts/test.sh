#!/usr/bin/env bash
# One command: install what is missing, build, run the whole test suite.
# A private PostgreSQL server (scripts/pg-test-server.sh) runs for the duration of the
# suite; the PostgreSQL tests say so loudly and skip only when it truly cannot start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${BUILD_DIR:-$root/build}
"$root/scripts/build.sh" "$build" "$@"

pg_dir=$(mktemp -d /tmp/prefsync-pg.XXXXXX)
chmod 755 "$pg_dir"
trap '"$root/scripts/pg-test-server.sh" stop "$pg_dir"' EXIT
if pg_env=$("$root/scripts/pg-test-server.sh" start "$pg_dir"); then
  eval "$pg_env"
  echo "PostgreSQL test server: $PREFSYNC_TEST_PG"
else
  echo "WARNING: the PostgreSQL test server could not start: PostgreSQL tests will be SKIPPED" >&2
fi

cd "$build"
ctest --output-on-failure -j 2 --timeout 600
