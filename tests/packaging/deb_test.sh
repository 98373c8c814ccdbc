#!/usr/bin/env bash
# The Debian package: built and passed by lintian (scripts/package-deb.sh), with the files,
# modes, conffiles and control fields an operator relies on; then installed, reinstalled,
# removed and purged with dpkg in a throw-away root (--root with --force-script-chrootless,
# so the maintainer scripts run against $DPKG_ROOT and never touch this machine).
#   deb_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

deb=$("$src/scripts/package-deb.sh" --no-build "$build" "$work/out" | tail -n 1)
echo "built and lintian-clean: $deb"

# --- control fields -----------------------------------------------------------------
version=$("$build/prefsync" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "prefsync_${version}_${arch}.deb" ] || fail "file name $(basename "$deb")"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = prefsync ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), binary says $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = net ] && [ "$(field Priority)" = optional ] || fail "Section/Priority"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
# Depends come from dpkg-shlibdeps: the libraries the binary links, with versions.
depends=$(field Depends)
libs=('libc6 (>=' libpq5 libsqlite3-0 libsystemd0 libssl3 libyaml-cpp)
readelf -d "$build/prefsync" | grep -q 'NEEDED.*libmimalloc' && libs+=(libmimalloc2.0)
for lib in "${libs[@]}"; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
[[ "$(field Recommends)" == *systemd* ]] || fail "Recommends: $(field Recommends)"
grep -q 'MyPreferences' <<<"$(field Description)" || fail "Description"
head -n 1 "$src/packaging/deb/changelog" | grep -q "^prefsync ($version) " ||
  fail "packaging/deb/changelog has no entry for $version"

# --- files and modes ----------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | sed 's|^\(\S*\) \(\S*\) \./|\1 \2 /|' >"$work/contents"
expect_file() {  # MODE PATH
  grep -qxF -- "$1 root/root $2" "$work/contents" || fail "$2 missing or not $1 root/root: $(grep -F -- " $2" "$work/contents" || true)"
}
expect_file -rwxr-xr-x /usr/bin/prefsync
for f in /usr/lib/systemd/system/prefsync.service /usr/lib/systemd/system/prefsync-sync@.service \
         /usr/lib/systemd/system/prefsync-sync@.timer /usr/lib/systemd/system/prefsync-backfill@.service \
         /usr/lib/sysusers.d/prefsync.conf /etc/prefsync/prefsync.yaml.example \
         /usr/share/man/man1/prefsync.1.gz /usr/share/man/man5/prefsync.yaml.5.gz \
         /usr/share/doc/prefsync/README.md /usr/share/doc/prefsync/CONFIG.md /usr/share/doc/prefsync/CLI.md \
         /usr/share/doc/prefsync/ARCHITECTURE.md /usr/share/doc/prefsync/docs/prefsync.schema.json \
         /usr/share/doc/prefsync/copyright /usr/share/doc/prefsync/changelog.gz \
         /usr/share/doc/prefsync/examples/prefsync.yaml /usr/share/doc/prefsync/examples/profiles.csv \
         /usr/share/doc/prefsync/contrib/grafana/prefsync-dashboard.json \
         /usr/share/doc/prefsync/contrib/prometheus/prefsync-alerts.yml; do
  expect_file -rw-r--r-- "$f"
done
# Nothing but those trees, every entry owned by root, no directory other than 0755.
grep -vE ' (/usr/bin/|/usr/lib/systemd/system/|/usr/lib/sysusers\.d/|/etc/prefsync/|/usr/share/man/|/usr/share/doc/prefsync/|/usr/share/lintian/overrides/)' \
  "$work/contents" | grep -vE '^d.* (/|/usr/|/usr/lib/|/usr/lib/systemd/|/usr/share/|/usr/share/lintian/|/usr/share/doc/|/etc/)$' \
  >"$work/unexpected" || true
[ ! -s "$work/unexpected" ] || fail "unexpected entries: $(cat "$work/unexpected")"
! grep -v ' root/root ' "$work/contents" | grep -q . || fail "entries not owned by root"
! grep '^d' "$work/contents" | grep -qv '^drwxr-xr-x ' || fail "directory not 0755"

dpkg-deb -x "$deb" "$work/x"
grep -qx 'ExecStart=/usr/bin/prefsync -c /etc/prefsync/prefsync.yaml daemon' "$work/x/usr/lib/systemd/system/prefsync.service" ||
  fail "prefsync.service does not run /usr/bin/prefsync: $(grep ExecStart "$work/x/usr/lib/systemd/system/prefsync.service")"
! grep -rq "$build\|$work" "$work/x/usr/lib/systemd/system" || fail "a unit names the build or staging directory"
file "$work/x/usr/bin/prefsync" | grep -q ', stripped' || fail "binary not stripped"

# --- control archive: conffiles, maintainer scripts ---------------------------------
dpkg-deb -e "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/prefsync/prefsync.yaml.example ] || fail "conffiles: $(cat "$work/control/conffiles")"
[ -s "$work/control/md5sums" ] || fail "no md5sums"
for s in postinst prerm postrm; do
  [ "$(stat -c %a "$work/control/$s")" = 755 ] || fail "$s mode"
  sh -n "$work/control/$s" || fail "$s: syntax"
  if command -v shellcheck >/dev/null; then shellcheck -s sh "$work/control/$s" || fail "$s: shellcheck"; fi
done
# Installing must never start or enable anything on its own.
! grep -nE 'systemctl[^#]*\b(start|enable|restart)\b|deb-systemd-invoke +(start|restart)|deb-systemd-helper +enable' \
  "$work/control/postinst" || fail "postinst starts or enables a unit"

# --- install, reinstall, remove, purge in a throw-away root ---------------------------
root=$work/root
mkdir -p "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/info" "$root/var/log" "$root/etc"
touch "$root/var/lib/dpkg/status"
# The root has no libraries installed, so their Depends cannot be met there.
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends "$@"; }
dpkg_root -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}\n' prefsync | grep -qx 'install ok installed' || fail "not installed"
test -x "$root/usr/bin/prefsync"
grep -q '^prefsync:x:[0-9]*:[0-9]*:prefsync MyPreferences sync:/var/lib/prefsync:' "$root/etc/passwd" ||
  fail "no prefsync account: $(cat "$root/etc/passwd" 2>/dev/null)"
uid=$(awk -F: '$1 == "prefsync" {print $3}' "$root/etc/passwd")
[ "$uid" -lt 1000 ] || fail "prefsync is not a system account (uid $uid)"
grep -q '^prefsync:' "$root/etc/group" || fail "no prefsync group"
"$root/usr/bin/prefsync" --version | grep -qx "prefsync $version"
# The shipped example validates as shipped, without a token (check-config's first-run case).
env -u PREFSYNC_TOKEN "$root/usr/bin/prefsync" -c "$root/etc/prefsync/prefsync.yaml.example" check-config \
  >"$work/check.out" 2>"$work/check.err" || { cat "$work/check.err"; fail "check-config of the installed example"; }
grep -q 'token was not checked' "$work/check.err" || fail "check-config did not say the token was not checked"
MANWIDTH=80 man -l "$root/usr/share/man/man1/prefsync.1.gz" 2>/dev/null | grep -q 'check-config' || fail "man prefsync"

# The administrator edits the example, writes the real config and token, the service runs
# (journal) and is enabled; then the same package is installed again (an upgrade's path).
echo "# edited by the administrator" >>"$root/etc/prefsync/prefsync.yaml.example"
cp "$root/etc/prefsync/prefsync.yaml.example" "$root/etc/prefsync/prefsync.yaml"
echo secret >"$root/etc/prefsync/token"
mkdir -p "$root/var/lib/prefsync/reports" "$root/etc/systemd/system/multi-user.target.wants"
echo journal >"$root/var/lib/prefsync/journal.db"
ln -s /usr/lib/systemd/system/prefsync.service "$root/etc/systemd/system/multi-user.target.wants/prefsync.service"
dpkg_root -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "reinstall"; }
grep -q 'edited by the administrator' "$root/etc/prefsync/prefsync.yaml.example" || fail "reinstall overwrote the edited conffile"
[ "$(grep -c '^prefsync:' "$root/etc/passwd")" = 1 ] || fail "reinstall made a second account"

dpkg_root -r prefsync >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
for f in usr/bin/prefsync usr/lib/systemd/system/prefsync.service usr/share/man/man1/prefsync.1.gz; do
  [ ! -e "$root/$f" ] || fail "remove left $f"
done
for f in etc/prefsync/prefsync.yaml.example etc/prefsync/prefsync.yaml etc/prefsync/token var/lib/prefsync/journal.db; do
  [ -e "$root/$f" ] || fail "remove deleted $f (only purge may)"
done

dpkg_root -P prefsync >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
dpkg-query --admindir="$root/var/lib/dpkg" -W prefsync >/dev/null 2>&1 && fail "still known to dpkg after purge"
[ ! -e "$root/etc/prefsync" ] || fail "purge left /etc/prefsync: $(ls -A "$root/etc/prefsync")"
[ ! -e "$root/var/lib/prefsync" ] || fail "purge left /var/lib/prefsync"
[ ! -L "$root/etc/systemd/system/multi-user.target.wants/prefsync.service" ] || fail "purge left the enablement link"
# What is left: dpkg's own database and log, and the account database with its lock (the
# account is kept on purge, as Debian does).
find "$root" -type f ! -path "$root/var/lib/dpkg/*" ! -path "$root/var/log/*" \
  ! -regex "$root/etc/\(passwd\|group\|shadow\|gshadow\|\.pwd\.lock\)-?" >"$work/left"
[ ! -s "$work/left" ] || fail "purge left files: $(cat "$work/left")"
echo "installed, reinstalled, removed and purged cleanly in $root"

# --- the account without systemd-sysusers: postinst falls back to useradd -------------
# Twice each: into an empty account database, and into one that already has a prefsync
# group (which the account must join); the second run must change nothing.
mkdir -p "$work/bin"
for tool in grep useradd; do ln -s "$(command -v $tool)" "$work/bin/$tool"; done
for existing_group in "" "prefsync:x:990:"; do
  r=$(mktemp -d "$work/fallback.XXXX")
  mkdir -p "$r/etc"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
  printf 'root:x:0:\n%s\n' "$existing_group" | grep . >"$r/etc/group"
  : >"$r/etc/shadow"
  : >"$r/etc/gshadow"
  for run in 1 2; do
    DPKG_ROOT=$r PATH=$work/bin /bin/sh "$work/control/postinst" configure 2>"$work/fallback.err" ||
      fail "postinst without systemd-sysusers (run $run, group '$existing_group'): $(cat "$work/fallback.err")"
  done
  grep -q '^prefsync:x:[0-9]*:[0-9]*:prefsync MyPreferences sync:/var/lib/prefsync:/usr/sbin/nologin$' "$r/etc/passwd" ||
    fail "useradd fallback: $(cat "$r/etc/passwd")"
  [ "$(grep -c '^prefsync:' "$r/etc/passwd")" = 1 ] || fail "fallback made a second account"
  gid=$(awk -F: '$1 == "prefsync" {print $4}' "$r/etc/passwd")
  [ "$(awk -F: -v g="$gid" '$3 == g {print $1}' "$r/etc/group")" = prefsync ] || fail "account not in the prefsync group"
  if [ -n "$existing_group" ]; then [ "$gid" = 990 ] || fail "did not join the existing prefsync group"; fi
done
echo "useradd fallback: account made once, in the prefsync group"
echo "PASS"
