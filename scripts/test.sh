#!/usr/bin/env bash
# The whole test suite: lint, strict typing, the import contracts (pyproject.toml), then
# pytest against real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/ensure-postgres.sh
VENV=${A4C_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
ruff check src tests bench
ruff format --check src tests bench
mypy src tests/domain  # the other test folders are not mypy-clean yet (issue 10, part 5)
lint-imports
exec pytest "$@"
