#!/usr/bin/env bash
# One command: install what is missing, build, start the bundled emulator, sync the bundled
# example CSV (1,000 customers) into it, and show the report and the journal's status.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
bin="$root/build/prefsync"
cfg="$root/examples/prefsync.yaml"
work=$(mktemp -d)
emu_pid=
cleanup() {
    [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The emulator prints its address first; port 0 picks a free one.
"$bin" emulator --listen 127.0.0.1:0 --processing-delay 1s > "$work/emulator.addr" 2> "$work/emulator.log" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/emulator.addr" ] && break; sleep 0.1; done
addr=$(head -n 1 "$work/emulator.addr")
[ -n "$addr" ] || { echo "the emulator did not start:" >&2; cat "$work/emulator.log" >&2; exit 1; }
echo "== emulator on http://$addr/Profiles/v2"

export PREFSYNC_BASE_URL="http://$addr/Profiles/v2"
export PREFSYNC_TOKEN=emulator-token      # the token the bundled emulator accepts
export PREFSYNC_RATE=500                  # the emulator has no limit; a real account does
export PREFSYNC_JOURNAL="$work/journal.db"

"$bin" -c "$cfg" check-config
echo "== prefsync sync crm-nightly"
"$bin" -c "$cfg" sync crm-nightly
echo "== again: only changed rows are sent"
"$bin" -c "$cfg" sync crm-nightly
echo "== prefsync status"
"$bin" -c "$cfg" status crm-nightly
echo "== prefsync verify: the 202-accepted updates reached \"Complete\""
"$bin" -c "$cfg" verify crm-nightly --wait 30s
