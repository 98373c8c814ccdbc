#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs one, or each, on its corpus.
# Usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer options...]
#   TARGET: csv config mapping api_response retry_after schedule json_patch (tests/fuzz/README.md)
# New inputs go to $FUZZ_WORK/TARGET/corpus (default /tmp/prefsync-fuzz), never into the
# repository; crashes, leaks, timeouts and OOMs to $FUZZ_WORK/TARGET/ as crash-*, leak-*,
# timeout-*, oom-*. Limits: FUZZ_RSS_MB (default 1024, the unit's MemoryMax=1G),
# FUZZ_TIMEOUT (seconds per input, default 10). Exit status 1 if any target found something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
targets=(csv config mapping api_response retry_after schedule json_patch)
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET|all SECONDS [libFuzzer options...] (targets: ${targets[*]})" >&2
  exit 2
fi
which=$1 seconds=$2
shift 2
if [ "$which" != all ] && [[ ! " ${targets[*]} " =~ " $which " ]]; then
  echo "unknown target $which (targets: ${targets[*]})" >&2
  exit 2
fi
[ "$which" = all ] || targets=("$which")
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
work=${FUZZ_WORK:-/tmp/prefsync-fuzz}

"$root/scripts/install-deps.sh"
if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPREFSYNC_FUZZ=ON -DPREFSYNC_TESTS=OFF "${launcher[@]}" >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$build" -j "${PREFSYNC_JOBS:-2}" --target "${build_targets[@]}"

found=0
printf '%-13s %8s %12s %6s %6s %8s %s\n' target seconds executions cov ft peak_mb findings
for t in "${targets[@]}"; do
  out="$work/$t"
  mkdir -p "$out/corpus"
  dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  log="$out/fuzz-$(date +%Y%m%dT%H%M%S).log"
  touch "$out/.started"
  start=$SECONDS
  # A finding stops the run with a non-zero status: counted below from the artifacts.
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb="${FUZZ_RSS_MB:-1024}" -print_final_stats=1 -artifact_prefix="$out/" \
    "${dict[@]}" "$@" "$out/corpus" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || true
  final=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$final")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$final")
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  peak=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+)/\1/p' "$log")
  artifacts=$(find "$out" -maxdepth 1 -newer "$out/.started" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  # A run that ends in a finding prints no final stats: count that as a finding too.
  if grep -qE '^==[0-9]+==ERROR|^SUMMARY: |deadly signal' "$log"; then artifacts=$((artifacts > 0 ? artifacts : 1)); fi
  printf '%-13s %8s %12s %6s %6s %8s %s\n' "$t" $((SECONDS - start)) "${execs:-?}" "${cov:-?}" "${ft:-?}" "${peak:-?}" "$artifacts"
  if [ "$artifacts" -gt 0 ]; then
    found=1
    echo "  $t: see $log and the artifacts in $out/" >&2
    grep -E '^==[0-9]+==ERROR|^SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/  /' >&2
  fi
done
exit $found
