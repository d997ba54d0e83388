#!/usr/bin/env bash
# The main job on embedded defaults: set up, then run the local stack.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${A4C_VENV:-.venv}/bin/a4c" dev "$@"
