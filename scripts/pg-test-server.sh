#!/usr/bin/env bash
# A private PostgreSQL 15 server for the test suite: its own data and socket directory,
# 127.0.0.1 on a free port, owned by an unprivileged user (initdb refuses root).
#   scripts/pg-test-server.sh start DIR   → prints export lines (PREFSYNC_TEST_PG, ..._PASSWORD)
#   scripts/pg-test-server.sh stop DIR
# Local (socket) connections are trusted; TCP needs the password (scram-sha-256), so the
# tests exercise password_env the way production does.
set -euo pipefail
cmd=${1:?usage: pg-test-server.sh start|stop DIR}
dir=${2:?usage: pg-test-server.sh start|stop DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[ -x "$bin/pg_ctl" ] || { echo "pg-test-server: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "pg-test-server: no 'postgres' user to run the server as" >&2; exit 1; }
  as_owner=(runuser -u postgres --)
fi

case "$cmd" in
start)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  password=prefsync-test-$RANDOM$RANDOM
  "${as_owner[@]}" bash -c "umask 077; printf '%s\n' '$password' > '$dir/pwfile'"
  "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 20000 + (RANDOM % 30000) ))
    if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=50" start >/dev/null 2>&1; then
      echo "export PREFSYNC_TEST_PG='host=127.0.0.1 port=$port user=postgres dbname=postgres'"
      echo "export PREFSYNC_TEST_PG_PASSWORD='$password'"
      echo "export PREFSYNC_TEST_PG_SOCKET='host=$dir port=$port user=postgres dbname=postgres'"
      exit 0
    fi
  done
  echo "pg-test-server: could not start PostgreSQL (see $dir/server.log)" >&2
  tail -n 20 "$dir/server.log" >&2 || true
  exit 1
  ;;
stop)
  [ -d "$dir/data" ] && "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*) echo "usage: pg-test-server.sh start|stop DIR" >&2; exit 2 ;;
esac
