#!/usr/bin/env bash
# Idempotent standalone setup: project-local .venv with pinned packages (requirements/lock.txt),
# the project's ROS interfaces built with the ROS 2 wheels, and the package installed editable.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python_bin="${PYTHON:-python3.11}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
stamp=.venv/.lock-installed
if [ ! -f "$stamp" ] || ! cmp -s requirements/lock.txt "$stamp"; then
  .venv/bin/pip install --disable-pip-version-check -q -r requirements/lock.txt
  cp requirements/lock.txt "$stamp"
fi
.venv/bin/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
if [ -x scripts/build_interfaces.sh ]; then
  bash scripts/build_interfaces.sh
fi
