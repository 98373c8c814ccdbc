#!/usr/bin/env bash
# One command: install what is missing, build, and run the main job on the bundled example.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" >/dev/null
bin="$root/build/prefsync"
cfg="$root/examples/prefsync.yaml"

# The bundled emulator accepts this token; a real deployment sets its own.
export PREFSYNC_TOKEN=${PREFSYNC_TOKEN:-emulator-token}
"$bin" -c "$cfg" check-config
# Map every example row and show the first bodies; the full output goes to a file.
out=$(mktemp)
set +e
"$bin" -c "$cfg" dry-run crm-nightly >"$out"
rc=$?
set -e
echo "--- first 3 mapped rows (of $(($(wc -l <"$out") - 1))) ---"
head -n 3 "$out"
echo "--- summary ---"
tail -n 1 "$out"
rm -f "$out"
exit $rc
