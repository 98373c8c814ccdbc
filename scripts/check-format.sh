#!/usr/bin/env bash
# Fails naming every C/C++ file that .clang-format would change. Fix with:
#   git ls-files '*.cpp' '*.hpp' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed" >&2; exit 1; }
bad=0
while IFS= read -r f; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f" >&2
        bad=1
    fi
done < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' | grep -v '^tests/data/')
exit $bad
