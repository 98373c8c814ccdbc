#!/usr/bin/env bash
# PREFSYNC_WRAP for compare_push.sh: runs prefsync under callgrind, one output file per run
# (callgrind.<binary>.<pid>.out in $CALLGRIND_DIR, default /tmp; valgrind's own messages in
# valgrind.<pid>.log beside them). Its instruction count is the same from run to run within
# about 0.1%, where wall-clock and CPU figures on this machine spread ±10%: an A/B of a
# change worth a few percent of the client's own CPU. It counts user-space instructions
# only (not the kernel's), and SHA-256 runs in software under valgrind (no SHA extensions),
# so subtract libcrypto's share when comparing. compare_push.sh runs the client from a
# directory of its own: give this script's absolute path.
#   PREFSYNC_WRAP=$PWD/bench/compare/callgrind-wrap.sh REPS=1 SCENARIOS=push bench/compare_push.sh 5000
#   grep '^summary' /tmp/callgrind.*.out
dir=${CALLGRIND_DIR:-/tmp}
exec valgrind --tool=callgrind --log-file="$dir/valgrind.%p.log" \
    --callgrind-out-file="$dir/callgrind.$(basename "$1").%p.out" -- "$@"
