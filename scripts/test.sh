#!/usr/bin/env bash
# The whole test suite: lint, strict typing, the import contracts (pyproject.toml), then
# pytest against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh  # the invitee pages are tested in a real browser
bash scripts/setup-promtool.sh  # the alert rules are checked and unit-tested with promtool
bash scripts/ensure-postgres.sh
VENV=${A4C_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy src tests
lint-imports
exec pytest "$@"
