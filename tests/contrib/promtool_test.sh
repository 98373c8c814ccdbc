#!/usr/bin/env bash
# contrib/prometheus: the rules parse, their unit tests pass (each alert fires on what it
# should and not on the healthy series beside it), and the example configuration is valid.
#   promtool_test.sh SOURCE_DIR
# Exit 77 (skipped, loudly) without promtool: scripts/install-deps.sh installs it.
set -euo pipefail
dir=$1/contrib/prometheus
if ! command -v promtool >/dev/null; then
  echo "SKIPPED: promtool not found: the Prometheus rules were NOT checked (scripts/install-deps.sh installs it)"
  exit 77
fi
cd "$dir"
promtool check rules prefsync-alerts.yml
promtool test rules prefsync-alerts.test.yml
promtool check config prometheus.yml
