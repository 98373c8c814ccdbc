#!/usr/bin/env bash
# PREFSYNC_WRAP for compare_push.sh: runs prefsync under callgrind, one output file per run
# (callgrind.<binary>.<pid>.out in $CALLGRIND_DIR, default /tmp). Its instruction count is
# the same from run to run within about 0.1%, where wall-clock and CPU figures on this
# machine spread ±10%: an A/B of a change worth a few percent of the client's own CPU. It
# counts user-space instructions only (not the kernel's), and SHA-256 runs in software
# under valgrind (no SHA extensions), so subtract libcrypto's share when comparing.
#   PREFSYNC_WRAP=bench/compare/callgrind-wrap.sh REPS=1 SCENARIOS=push bench/compare_push.sh 5000
#   grep '^summary' /tmp/callgrind.*.out
exec valgrind --tool=callgrind \
    --callgrind-out-file="${CALLGRIND_DIR:-/tmp}/callgrind.$(basename "${PREFSYNC_BIN:-prefsync}").%p.out" -- "$@" 2>/dev/null
