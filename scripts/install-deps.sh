#!/usr/bin/env bash
# Installs the Debian 12 packages prefsync needs to build, test and run its quickstart.
# Idempotent: does nothing when everything is present. Needs root (or sudo) only to install.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsimdjson-dev libsqlite3-dev sqlite3 libyaml-cpp-dev
  libgtest-dev libgmock-dev libpq-dev libcli11-dev libspdlog-dev
  libsystemd-dev libbenchmark-dev time postgresql systemd tzdata
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
