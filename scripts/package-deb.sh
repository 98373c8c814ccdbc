#!/usr/bin/env bash
# Builds prefsync_<version>_<arch>.deb and checks it with lintian: one command.
#   scripts/package-deb.sh [--no-build] [BUILD_DIR [OUT_DIR]]
# BUILD_DIR defaults to build/, OUT_DIR to BUILD_DIR/packages. --no-build packages what
# BUILD_DIR already holds (the package test uses it). Exits non-zero when lintian reports
# an error or a warning; the overrides it honours are in packaging/deb/lintian-overrides,
# each with its reason. Prints the package's path last.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_first=1
if [ "${1:-}" = --no-build ]; then build_first=; shift; fi
build=$(realpath -m "${1:-$root/build}")
out=$(realpath -m "${2:-$build/packages}")

if [ -n "$build_first" ]; then
  "$root/scripts/build.sh" "$build"
fi
for tool in cpack dpkg-shlibdeps lintian; do
  command -v "$tool" >/dev/null || { echo "error: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
mkdir -p "$out"
rm -f "$out"/prefsync_*.deb
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log") || { cat "$out/cpack.log" >&2; exit 1; }
deb=$(ls "$out"/prefsync_*.deb)

# --tag-display-limit 0: every instance of a tag, so a new one is never hidden.
lintian --fail-on error,warning --display-info --tag-display-limit 0 "$deb" >&2 || {
  echo "error: lintian found problems in $deb" >&2
  exit 1
}
echo "$deb"
