#!/usr/bin/env bash
# The GPU run, as one command for a machine that has PyTorch, numpy and OpenCV but no ROS and no internet
# (docs/deploy.md "The GPU run"). Run from the repository root:
#
#   bash scripts/gpu_run.sh BUNDLE_DIR OUT_DIR [cuda|cpu]
#
# BUNDLE_DIR: `scripts/bundle.sh --python X.Y BUNDLE_DIR` for the machine's python3 (58 MiB: carried with the
# checkout). Steps, each with its own time limit; a failing step is recorded in OUT_DIR/summary.txt and the
# next one runs:
#   1. install the bundle, with no package index, into OUT_DIR/venv: a venv over the machine's own PyTorch,
#      numpy and OpenCV (--system-site-packages), or into $GPU_RUN_VENV, an existing venv with them;
#   2. benchmarks/gpu_check.py: golden equality on the device, speed and drift of the tracker;
#   3. the tests marked cuda (the node's device thread with CUDA graphs under service calls, CUDA memory per
#      cleanup, the graph step, the registry);
#   4. benchmarks/node_speed.py: the whole node, 640x480 and 1280x720 at 30/60/120 Hz and as fast as the
#      camera can, N = 1 and 8, fp32 (TF32 off); then N = 1 in fp16;
#   5. benchmarks/track_speed.py: the runtimes beside the torch paths (TensorRT when installed there).
# 'cpu' (default cuda) runs the same steps quickly on the CPU: the script's own test.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 1
bundle="${1:?usage: gpu_run.sh BUNDLE_DIR OUT_DIR [cuda|cpu]}"
out="${2:?usage: gpu_run.sh BUNDLE_DIR OUT_DIR [cuda|cpu]}"
device="${3:-cuda}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
summary="$out/summary.txt"
: > "$summary"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-91}" TRANST_CACHE_DIR="$out/cache"

step() {  # step NAME SECONDS COMMAND...: run it, output to OUT/NAME.txt, result to the summary
  local name="$1" limit="$2"
  shift 2
  local started=$SECONDS
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: rc=$rc, $((SECONDS - started)) s" | tee -a "$summary"
  tail -n 25 "$out/$name.txt"
  return 0
}

{ python3 -V; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } \
  | tee "$out/machine.txt"

venv="${GPU_RUN_VENV:-$out/venv}"  # GPU_RUN_VENV: an existing venv with torch (the CPU test's)
[ -n "${GPU_RUN_VENV:-}" ] || python3 -m venv --system-site-packages "$venv"
step install 300 bash "$bundle/install.sh" "$venv"
# shellcheck disable=SC1091
source "$venv/bin/transt-env.sh"
export PYTHONPATH="$root"  # the checkout's benchmarks and tests; transt_ros itself is the same commit either way

if [ "$device" = cuda ]; then
  step gpu_check 300 python benchmarks/gpu_check.py --json "$out/gpu_check.json"
  step cuda_tests 240 python -m pytest -q -p no:cacheprovider test/test_device_calls.py \
    test/test_track_engine_cuda.py test/test_cuda_step.py test/test_track_registry_cuda.py
  step node_speed 420 python benchmarks/node_speed.py --device cuda --seconds 5 --warmup 1 \
    --out "$out/node_speed.json"
  step node_speed_fp16 150 python benchmarks/node_speed.py --device cuda --precision fp16 --sizes 640x480 \
    --targets 1 --seconds 5 --warmup 1 --out "$out/node_speed_fp16.json"
  step track_speed 240 python benchmarks/track_speed.py --device cuda --iterations 30 \
    --json "$out/track_speed.json"
else
  step gpu_check 600 python benchmarks/gpu_check.py --device cpu --quick --json "$out/gpu_check.json"
  step cuda_tests 240 python -m pytest -q -p no:cacheprovider test/test_device_calls.py \
    test/test_track_engine_cuda.py
  step node_speed 300 python benchmarks/node_speed.py --quick --device cpu --out "$out/node_speed.json"
  step track_speed 600 python benchmarks/track_speed.py --iterations 2 --warmup 1 --backends \
    --json "$out/track_speed.json"
fi
echo "== summary"; cat "$summary"
! grep -qv 'rc=0,' "$summary"
