#!/usr/bin/env bash
# The demo, from a fresh checkout: set up (idempotent), then replay generated scenes through the
# real ROS 2 pipeline and write the report to out/demo/ (no download). Arguments go to transt-demo,
# e.g. `bash scripts/demo.sh --rate 0.5` or `--checkpoint transt.pth`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# shellcheck source=env.sh
source scripts/env.sh
exec python -m transt_ros.demo "$@"
