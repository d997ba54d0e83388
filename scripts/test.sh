#!/usr/bin/env bash
# The whole test suite: lint, strict typing, the import contracts (pyproject.toml), then
# pytest against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests  # also nginx, Chromium and promtool, which only tests use
bash scripts/ensure-postgres.sh
VENV=${A4C_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy src tests
lint-imports
exec pytest "$@"
