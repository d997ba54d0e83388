#!/usr/bin/env bash
# Regenerate requirements.lock: the exact versions of what production runs (pyproject.toml's
# `all` extra: the domain library and every process's packages), each with the SHA-256 of
# every file PyPI has for it. The image installs from it with --require-hashes
# (deploy/Dockerfile); tests/test_packaging.py checks that it covers exactly that extra.
# Run after changing a dependency in pyproject.toml, and commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${A4C_VENV:-.venv}
# uv resolves from PyPI itself, ignoring a machine's pip configuration (local wheel
# folders, constraint files), so the lock names only what the image can download.
if ! "$VENV/bin/python" -m uv --version >/dev/null 2>&1; then
    "$VENV/bin/pip" install -qq uv
fi
# For the image's interpreter, read from its base image: one place says which Python.
python_version=$(sed -n 's/^FROM python:\([0-9.]*\)-slim.*/\1/p' deploy/Dockerfile | head -1)
if [ -z "$python_version" ]; then
    echo "no 'FROM python:X.Y-slim' line in deploy/Dockerfile" >&2
    exit 1
fi
# Wheels only (--only-binary): building an sdist would fetch build tools unhashed.
exec "$VENV/bin/python" -m uv pip compile pyproject.toml --extra all \
    --generate-hashes --only-binary :all: \
    --python-version "$python_version" --python-platform linux \
    --custom-compile-command "bash scripts/lock.sh  (for python:${python_version}-slim, linux)" \
    --quiet --output-file requirements.lock
