#!/usr/bin/env bash
# Set everything up (idempotent) and run the linters and the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
ruff check .
python -m pytest "$@"
