#!/usr/bin/env bash
# The systemd units as `cmake --install` puts them: `systemd-analyze verify` passes on each,
# and `systemd-analyze security` rates prefsync.service "OK" or better.
#   units_test.sh BUILD_DIR
set -euo pipefail
build=$1
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze not found (apt-get install systemd)"; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage" >/dev/null
units="$stage/lib/systemd/system"
# The units name the configured install path; point them at the staged binary.
configured=$(grep -h '^ExecStart=' "$units/prefsync.service" | sed 's/^ExecStart=//; s/ .*//')
for u in "$units"/*; do sed -i "s|$configured|$stage/bin/prefsync|g" "$u"; done
test -x "$stage/bin/prefsync"
test -f "$stage/lib/sysusers.d/prefsync.conf"
test -f "$stage/etc/prefsync/prefsync.yaml.example"
# Every service: no core dumps (the process holds the API token and personal data), files
# private by default, and systemd creates the reports directory (--report files and the pull
# reconcile reports go there; ProtectSystem=strict leaves the process unable to create it).
for u in "$units"/prefsync.service "$units"/prefsync-sync@.service "$units"/prefsync-backfill@.service; do
  name=$(basename "$u")
  grep -qx 'LimitCORE=0' "$u" || { echo "FAIL: $name: no LimitCORE=0"; exit 1; }
  grep -qx 'UMask=0077' "$u" || { echo "FAIL: $name: no UMask=0077"; exit 1; }
  dirs=" $(grep '^StateDirectory=' "$u" | sed 's/^StateDirectory=//' | tr '\n' ' ') "
  case "$dirs" in *" prefsync "*) ;; *) echo "FAIL: $name: StateDirectory lacks prefsync"; exit 1 ;; esac
  case "$dirs" in *" prefsync/reports "*) ;; *) echo "FAIL: $name: StateDirectory lacks prefsync/reports"; exit 1 ;; esac
  echo "limits ok: $name"
done
for u in "$units"/prefsync.service "$units"/prefsync-sync@.service "$units"/prefsync-sync@.timer "$units"/prefsync-backfill@.service; do
  out=$(cd "$stage" && systemd-analyze verify "$u" 2>&1) || { echo "FAIL: verify $u"; echo "$out"; exit 1; }
  [ -z "$out" ] || { echo "FAIL: verify $u printed:"; echo "$out"; exit 1; }
  echo "verify ok: $(basename "$u")"
done
score=$(systemd-analyze security --offline=true "$units/prefsync.service" 2>&1 | grep 'Overall exposure level')
echo "$score"
echo "$score" | grep -Eq ' (SAFE|OK) ' || { echo "FAIL: exposure worse than OK"; exit 1; }
