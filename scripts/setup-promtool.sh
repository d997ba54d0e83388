#!/usr/bin/env bash
# promtool, from Debian's prometheus package: the test command checks the alert rules in
# deploy/prometheus/ with `promtool check rules` and unit-tests them with `promtool test
# rules` (tests/deploy/test_alerts.py). Only the binary is used; no Prometheus server runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "promtool is missing: install it with 'sudo apt-get install prometheus'" >&2
    exit 1
fi
bash scripts/apt-wait.sh update -qq
# --no-install-recommends: the exporters and the web console the package recommends are not
# needed for promtool.
DEBIAN_FRONTEND=noninteractive bash scripts/apt-wait.sh install -y -qq --no-install-recommends prometheus
