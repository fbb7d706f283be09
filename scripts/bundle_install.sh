#!/usr/bin/env bash
# Installs this offline bundle of transt_ros into VENV, with no package index:
#
#   ./install.sh VENV
#
# VENV: a virtual environment (python -m venv, or a conda env) of the bundle's CPython version that
# already has PyTorch; numpy and OpenCV (cv2) must be there too unless the bundle carries them
# (bundle.sh --with numpy / --with opencv). Installs, from wheels/ only (pip --no-index --no-deps):
#   - the ROS 2 runtime wheels and the project (transt_ros and its interfaces), at the bundle's versions;
#   - the third-party libraries VENV lacks; the ones VENV already has are kept as they are.
# Then writes VENV/bin/transt-env.sh and checks the result: rclpy, the interfaces, transt_ros, the demo
# checkpoint, a ROS node (DDS on loopback for the check). Run it again to repair or update: it is idempotent.
#
# Written into the bundle by scripts/bundle.sh (template: scripts/bundle_install.sh); docs/deploy.md,
# "Offline bundle".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
[ $# -eq 1 ] || usage
case "$1" in -h|--help) usage 0 ;; esac
if [ ! -f "$here/bundle.env" ] || [ ! -f "$here/packages.txt" ] || [ ! -d "$here/wheels" ]; then
  die "$here is not a complete bundle (bundle.env, packages.txt, wheels/)"
fi
# shellcheck source=/dev/null
source "$here/bundle.env"
: "${BUNDLE_PYTHON:?}" "${BUNDLE_PROJECT_VERSION:?}" "${BUNDLE_TESTED_TORCH:?}"

[ -d "$1" ] || die "$1 does not exist: create it first (python$BUNDLE_PYTHON -m venv $1, then install torch)"
venv="$(cd "$1" && pwd)"
py="$venv/bin/python"
[ -x "$py" ] || die "$venv has no bin/python: VENV must be a virtual environment (python$BUNDLE_PYTHON -m venv VENV)"

# VENV's Python without what a shell may carry from elsewhere (a sourced ROS distro, another venv's paths)
# and isolated (-I): no PYTHON* variables, no user site-packages, not the current directory on sys.path
# (run from a checkout of transt_ros, that would import the checkout's copy).
vpy() {
  env -u AMENT_PREFIX_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE -u VIRTUAL_ENV -u TRANST_BUNDLE_ENV "$py" -I "$@"
}
if [ -n "${ROS_DISTRO:-}${AMENT_PREFIX_PATH:-}" ]; then
  echo "install.sh: note: this shell has a ROS environment (ROS_DISTRO/AMENT_PREFIX_PATH); VENV is checked without it"
fi

# ---------------------------------------------------------------------------------------- what VENV is
version="$(vpy -c 'import sys; print("%d.%d" % sys.version_info[:2])')" || die "$py does not run"
[ "$version" = "$BUNDLE_PYTHON" ] \
  || die "$venv runs Python $version; this bundle is for CPython $BUNDLE_PYTHON (bundle.sh --python $version builds one for it)"
vpy -c 'import sys; sys.exit(sys.implementation.name != "cpython")' || die "$py is not CPython"
platform="$(vpy -c 'import sysconfig; print(sysconfig.get_platform())')"
[ "$platform" = "linux-x86_64" ] || die "$venv is $platform; the bundle's wheels are for linux-x86_64"
vpy -c 'import os, sys; sys.exit(sys.prefix == sys.base_prefix and not os.path.isdir(os.path.join(sys.prefix, "conda-meta")))' \
  || die "$py is not a virtual environment (sys.prefix is the base installation): create one (python$BUNDLE_PYTHON -m venv VENV)"
vpy -m pip --version >/dev/null 2>&1 || die "$venv has no pip (python -m ensurepip installs it offline)"
# The ROS wheels are manylinux_2_28 (glibc >= 2.28); the interfaces were compiled on the bundle's build
# machine and need its libstdc++ symbol version (bundle.env: BUNDLE_NEEDS_GLIBCXX).
system="$(vpy - "${BUNDLE_NEEDS_GLIBCXX:-}" <<'PY'
import ctypes
import os
import sys

glibc = os.confstr('CS_GNU_LIBC_VERSION') or 'unknown'
ctypes.CDLL('libstdc++.so.6')
path = next((line.split()[-1] for line in open('/proc/self/maps') if 'libstdc++.so' in line), '')
needed = sys.argv[1]
has = not needed or (bool(path) and needed.encode() + b'\0' in open(path, 'rb').read())
print(glibc.split()[-1], 'ok' if has else 'missing', path)
PY
)" || die "could not inspect the C libraries of $py"
read -r glibc_version glibcxx_state libstdcxx <<<"$system"
if [ "$(printf '%s\n2.28\n' "$glibc_version" | sort -V | head -n 1)" != 2.28 ]; then
  die "this system has glibc $glibc_version; the ROS 2 wheels need glibc >= 2.28 (Ubuntu 20.04+, Debian 10+, RHEL 8+)"
fi
[ "$glibcxx_state" = ok ] || die "$libstdcxx lacks ${BUNDLE_NEEDS_GLIBCXX:-?}, which the bundle's interfaces \
need (compiled on a newer system: build the bundle on one as old as this target, see docs/deploy.md)"

echo "install.sh: checking torch in $venv"
torch_version="$(vpy -c 'import torch; print(torch.__version__)' 2>&1 | tail -n 1)" \
  || die "$venv has no working PyTorch (import torch: $torch_version). Install torch into VENV first (any build for your GPU; tested: torch $BUNDLE_TESTED_TORCH)"
echo "install.sh: torch $torch_version (the bundle was tested with $BUNDLE_TESTED_TORCH)"

# Installed distributions of VENV (normalised name -> version), before anything is installed.
mapfile -t present < <(vpy - <<'PY'
import importlib.metadata as metadata
import re

for dist in metadata.distributions():
    name = dist.metadata['Name']
    if name:
        print(re.sub(r'[-_.]+', '-', name).lower(), dist.version)
PY
)
norm() { tr '[:upper:]' '[:lower:]' <<<"$1" | sed -E 's/[-_.]+/-/g'; }
have() {  # version of an installed distribution, or nothing
  local key entry
  key="$(norm "$1")"
  for entry in "${present[@]}"; do
    [ "${entry%% *}" = "$key" ] && { echo "${entry#* }"; return 0; }
  done
  return 1
}
bundled() { awk -v n="$(norm "$1")" '!/^#/ { k = tolower($2); gsub(/[-_.]+/, "-", k); if (k == n) found = 1 } END { exit !found }' "$here/packages.txt"; }

skip=()   # lib packages not installed: VENV has them
numpy_version="$(vpy -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
if [ -n "$numpy_version" ]; then
  skip+=(numpy)
  echo "install.sh: numpy $numpy_version (VENV's; kept)"
  case "$numpy_version" in
    1.*) echo "install.sh: warning: numpy $numpy_version in VENV; the bundle is tested with numpy 2 (OpenCV 5 needs numpy>=2)" >&2 ;;
  esac
elif ! bundled numpy; then
  die "$venv has no numpy: install numpy (>=2) into it, or use a bundle built with --with numpy"
fi
if cv2_version="$(vpy -c 'import cv2; print(cv2.__version__)' 2>/dev/null)"; then
  skip+=(opencv-python-headless)
  echo "install.sh: OpenCV (cv2) $cv2_version (VENV's; kept)"
elif vpy -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("cv2") is None)' 2>/dev/null; then
  die "$venv has a cv2 that does not import ($(vpy -c 'import cv2' 2>&1 | tail -n 1)); repair it first"
elif ! bundled opencv-python-headless; then
  die "$venv has no OpenCV: install opencv-python-headless (or any OpenCV >= 4 with Python bindings) into it, or use a bundle built with --with opencv"
fi

# ------------------------------------------------------------------------------------------- the plan
always=()     # NAME==VERSION: ros and app
missing=()    # NAME==VERSION: lib packages VENV lacks
kept=()       # NAME VERSION: lib packages VENV has
app=()
while read -r role name pkg_version _wheel _group; do
  case "$role" in
    \#*|"") continue ;;
    ros) always+=("$name==$pkg_version") ;;
    app) always+=("$name==$pkg_version"); app+=("$name") ;;
    lib)
      skipped=0
      for s in "${skip[@]}"; do [ "$(norm "$s")" = "$(norm "$name")" ] && skipped=1; done
      if [ "$skipped" = 1 ]; then
        kept+=("$name $( [ "$(norm "$name")" = numpy ] && echo "$numpy_version" || echo "(cv2 ${cv2_version:-?})")")
      elif current="$(have "$name")"; then
        kept+=("$name $current")
      else
        missing+=("$name==$pkg_version")
      fi ;;
    *) die "packages.txt: unknown role $role" ;;
  esac
done <"$here/packages.txt"

pip_install() {  # only the bundle's wheels; no index, no dependency resolution (the bundle's list is complete)
  vpy -m pip --isolated install --disable-pip-version-check --no-input --no-index --no-deps \
    --find-links "$here/wheels" "$@"
}
echo "install.sh: installing ${#always[@]} ROS 2 / transt_ros packages and ${#missing[@]} libraries into $venv (no index)"
started=$(date +%s)
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
# The project's two wheels keep their version between bundles: reinstalled every time.
if ! pip_install --force-reinstall "${app[@]/%/==$BUNDLE_PROJECT_VERSION}" >"$pip_log" 2>&1 \
    || ! pip_install "${always[@]}" ${missing[@]+"${missing[@]}"} >>"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  die "pip install from $here/wheels failed (above)"
fi
changed="$(grep -h '^Successfully installed' "$pip_log" | tr ' ' '\n' | grep -c -- '-[0-9]' || true)"
echo "install.sh: installed from the bundle ($changed written now, the others were already there at these versions):"
printf '%s  ' "${always[@]}" ${missing[@]+"${missing[@]}"} | fold -s -w 108 | sed 's/^/  /'
echo
if [ "${#kept[@]}" -gt 0 ]; then
  echo "install.sh: kept from VENV (not replaced):"
  printf '  %s\n' "${kept[@]}"
fi

# ------------------------------------------------------------------------------------- the environment
env_file="$venv/bin/transt-env.sh"
cat >"$env_file" <<EOF
# Source this file to use transt_ros from $venv (written by the bundle's install.sh):
#   source $env_file
# The entry points (transt-ros, transt-track, ...) also run without it: the ROS wheels' bootstrapper
# and _transt_ros_bundle.pth set the library path and AMENT_PREFIX_PATH when Python starts.
# Do not source a ROS distro (/opt/ros/...) in the same shell: its libraries would mix with these.
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:\$PATH"
export AMENT_PREFIX_PATH="$venv\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}"
export RMW_IMPLEMENTATION="\${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# torch's idle OpenMP threads otherwise spin and starve the other processes of a small machine.
export OMP_WAIT_POLICY="\${OMP_WAIT_POLICY:-PASSIVE}"
# DDS discovery: ROS's default (the whole subnet), as a robot needs. On a shared or development
# machine keep it on this host:  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=<0..101>
EOF
echo "install.sh: wrote $env_file"

# ------------------------------------------------------------------------------------------- the check
echo "install.sh: checking the installation"
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" vpy - <<'PY' \
  || die "the check failed (above): the installation is incomplete"
import importlib.metadata as metadata
import sys
from importlib.resources import files

import cv2
import numpy
import rclpy
import torch
from ament_index_python.packages import get_package_share_directory
from vision_msgs.msg import Detection2D

import transt_ros
import transt_ros.ros.bringup  # noqa: F401  the node's modules (tracker, model manager)
from transt_ros.checkpoint import load_model
from transt_ros.msg import TrackerStatus, TrackStatus
from transt_ros.srv import ClearTrack, SetTarget

prefix = sys.prefix
for module in (rclpy, transt_ros.msg, transt_ros.ros.bringup, sys.modules['vision_msgs']):
    assert module.__file__.startswith(prefix), f'{module.__name__} comes from {module.__file__}, not {prefix}'
assert TrackerStatus.TRACKING == 1 and SetTarget.Request().width == 0.0 and Detection2D().id == ''
assert TrackStatus().track_id == '' and ClearTrack.Response().success is False
share = get_package_share_directory('transt_ros')
demo = files('transt_ros') / 'data' / 'demo_model.pth'
model = load_model(str(demo))
rclpy.init()
try:
    node = rclpy.create_node('transt_install_check')
    node.create_publisher(TrackerStatus, 'transt_install_check/status', 1)
    node.destroy_node()
finally:
    rclpy.shutdown()
print(f'install.sh: check passed: transt_ros {metadata.version("transt_ros")}, rclpy (ROS 2 Kilted), '
      f'torch {torch.__version__}, numpy {numpy.__version__}, cv2 {cv2.__version__}; '
      f'demo model {model.config.backbone}/d_model {model.config.d_model} loads; a node starts')
print(f'install.sh: share: {share}')
print(f'install.sh: demo checkpoint: {demo}')
PY
echo "install.sh: done in $(( $(date +%s) - started )) s. Run the node:"
cat <<EOF
  source $env_file
  transt-ros --ros-args --params-file $venv/share/transt_ros/config/transt.yaml \\
    -p checkpoint:=/path/to/transt.pth -p image_topic:=/camera/image_raw -p device:=cuda
  (the demo checkpoint: $(vpy -c 'from importlib.resources import files; print(files("transt_ros") / "data" / "demo_model.pth")' 2>/dev/null))
Without ROS: transt-track VIDEO --box x,y,w,h --checkpoint /path/to/transt.pth   (docs/deploy.md, "Offline bundle")
EOF
