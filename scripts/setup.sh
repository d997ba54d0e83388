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
    "$VENV/bin/pip" install -qq -e ".[dev,test]"
    touch "$stamp"
fi

# BIND 9 (named, tsig-keygen) for the DNS tests and RFC 2136 provider.
if ! command -v named >/dev/null 2>&1 && [ -x /usr/sbin/named ]; then :; fi
if ! [ -x /usr/sbin/named ] && [ "${A4C_SKIP_APT:-}" != "1" ]; then
    if [ "$(id -u)" = "0" ]; then
        bash scripts/apt-wait.sh update -qq
        DEBIAN_FRONTEND=noninteractive bash scripts/apt-wait.sh install -y -qq bind9 bind9-utils
    else
        echo "bind9 is missing: install it with 'sudo apt-get install bind9 bind9-utils'" >&2
        exit 1
    fi
fi

# nginx terminates TLS in front of the Temporal dev server for the secured-connection
# tests (tests/servers/tlsproxy.py); it is never started as a service.
if ! [ -x /usr/sbin/nginx ] && [ "${A4C_SKIP_APT:-}" != "1" ]; then
    if [ "$(id -u)" = "0" ]; then
        bash scripts/apt-wait.sh update -qq
        DEBIAN_FRONTEND=noninteractive bash scripts/apt-wait.sh install -y -qq nginx
    else
        echo "nginx is missing: install it with 'sudo apt-get install nginx'" >&2
        exit 1
    fi
fi
