#!/usr/bin/env bash
# The generated man pages render without a groff warning (the check lintian runs, and
# groff with every warning on), and prefsync(1) documents every subcommand that
# `prefsync --help` lists, with each of that subcommand's options in its entry.
#   man_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
pages=("$build/docs/man/prefsync.1" "$build/docs/man/prefsync.yaml.5")
for page in "${pages[@]}"; do
  [ -s "$page" ] || fail "$page was not generated (is pandoc installed? scripts/install-deps.sh)"
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man --warnings $page: $warnings"
  warnings=$(LC_ALL=C.UTF-8 groff -man -t -Tutf8 -ww -z "$page" 2>&1)
  [ -z "$warnings" ] || fail "groff -ww $page: $warnings"
  echo "renders cleanly: $(basename "$page")"
done

# Wide, unhyphenated and without tabs, so an option name is never split across lines.
rendered=$(LC_ALL=C.UTF-8 groff -man -t -Tutf8 -rLL=200n -rHY=0 "${pages[0]}" 2>/dev/null | col -bx)
# The entry of one subcommand: its term line (7 spaces in) and the indented lines below it.
entry() {
  awk -v cmd="$1" '
    /^       [^ ]/ { on = ($1 == cmd) }
    /^   [^ ]/ || /^[^ ]/ { on = 0 }
    on' <<<"$rendered"
}
subcommands=$("$build/prefsync" --help | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ -n "$subcommands" ] || fail "no subcommands in prefsync --help"
for cmd in $subcommands; do
  text=$(entry "$cmd")
  [ -n "$text" ] || fail "prefsync(1) has no entry for the subcommand $cmd"
  # Each option the subcommand's --help lists, except --help itself.
  for opt in $("$build/prefsync" "$cmd" --help | awk '/^Options:/ {on = 1; next} /^[A-Z]/ {on = 0} on && /^  -/ {print $1}' |
               tr ',' '\n' | grep -- '^--' | grep -vx -- '--help'); do
    grep -q -- "$opt\b" <<<"$text" || fail "prefsync(1): the entry for $cmd does not mention $opt"
  done
  echo "documented: $cmd"
done
for opt in --config --version; do
  grep -q -- "$opt" <<<"$rendered" || fail "prefsync(1) does not mention $opt"
done

# The exit codes in README.md are the ones prefsync(1) documents.
exit_codes() { grep -E '^\| [0-9] \|' "$1"; }
diff <(exit_codes "$src/README.md") <(exit_codes "$src/docs/cli.md") || fail "README.md and docs/cli.md disagree on exit codes"
echo PASS
