#!/usr/bin/env bash
# What the browser tests need, from Debian: Chromium and its driver. Playwright (a test
# dependency) drives /usr/bin/chromium; nothing downloads a browser at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "chromium is missing: install it with 'sudo apt-get install chromium chromium-driver'" >&2
    exit 1
fi
bash scripts/apt-wait.sh update -qq
DEBIAN_FRONTEND=noninteractive bash scripts/apt-wait.sh install -y -qq chromium chromium-driver
