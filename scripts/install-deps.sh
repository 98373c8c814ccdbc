#!/usr/bin/env bash
# Installs the Debian 12 packages prefsync needs to build, test and run its quickstart.
# Idempotent: does nothing when everything is present. Needs root (or sudo) only to install.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsimdjson-dev libsqlite3-dev sqlite3 libyaml-cpp-dev
  libgtest-dev libgmock-dev libpq-dev libcli11-dev libspdlog-dev
  libsystemd-dev libbenchmark-dev libmimalloc-dev time postgresql systemd tzdata
  pandoc man-db lintian dpkg-dev file
  clang clang-format libclang-rt-14-dev
  python3-jsonschema python3-yaml
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
need_promtool=
command -v promtool >/dev/null || need_promtool=1
[ ${#missing[@]} -eq 0 ] && [ -z "$need_promtool" ] && exit 0

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# promtool (checks and unit-tests contrib/prometheus) is taken out of Debian's prometheus
# package rather than installing it, which would also enable and start a Prometheus server.
if [ -n "$need_promtool" ]; then
  echo "Installing: promtool (from Debian's prometheus package) into /usr/local/bin" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xO ./usr/bin/promtool > "$tmp/promtool"
  "${sudo_cmd[@]}" install -m 755 "$tmp/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
fi
