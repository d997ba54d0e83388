#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands: a virtual environment
# with the project installed, and the system pieces the real servers need.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${A4C_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$VENV/bin/pip" install -qq --upgrade pip
    # Every role (`dev` brings `all`: the dev stack and the tests run every process).
    "$VENV/bin/pip" install -qq -e ".[dev,test]"
    touch "$stamp"
fi

# Debian packages: installed when their binary is missing (waiting for the package
# manager's lock, scripts/apt-wait.sh), refused with the command to run when not root.
need() {  # need [--no-recommends] BINARY PACKAGE... : install PACKAGE... unless BINARY exists
    local options=()
    if [ "$1" = "--no-recommends" ]; then
        options=(--no-install-recommends)
        shift
    fi
    local binary=$1
    shift
    if [ -x "$binary" ] || [ "${A4C_SKIP_APT:-}" = "1" ]; then
        return 0
    fi
    if [ "$(id -u)" != "0" ]; then
        echo "$binary is missing: install it with 'sudo apt-get install $*'" >&2
        exit 1
    fi
    bash scripts/apt-wait.sh update -qq
    DEBIAN_FRONTEND=noninteractive bash scripts/apt-wait.sh install -y -qq "${options[@]}" "$@"
}

# BIND 9 (named, tsig-keygen) for the DNS tests and the RFC 2136 provider.
need /usr/sbin/named bind9 bind9-utils

# What only the tests need (scripts/test.sh passes --tests; the dev stack needs none):
if [ "${1:-}" = "--tests" ]; then
    # nginx terminates TLS in front of the Temporal dev server for the secured-connection
    # tests (tests/servers/tlsproxy.py); it is never started as a service.
    need /usr/sbin/nginx nginx
    # Chromium and its driver: the invitee's pages are tested in this real browser, driven
    # by Playwright (a test dependency), which never downloads one.
    need /usr/bin/chromium chromium chromium-driver
    # promtool, from the prometheus package, checks and unit-tests deploy/prometheus/;
    # no Prometheus server runs (nor the exporters the package recommends).
    need --no-recommends /usr/bin/promtool prometheus
    # pg_auto_failover: a monitor, a primary and a secondary on this machine for the
    # failover tests and the soak (tests/servers/pgfailover.py); never a service.
    need /usr/bin/pg_autoctl postgresql-15-auto-failover pg-auto-failover-cli
fi
