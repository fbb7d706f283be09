#!/usr/bin/env bash
# Standalone (wheel-based) build of the ROS interfaces into .venv/ros_prefix. Idempotent.
#
#  1. vision_msgs: if `import vision_msgs` fails in the project env (no distro package), build
#     the interface-only stand-in ros_deps/vision_msgs (wire-exact vision_msgs 4.x).
#  2. transt_ros: build only the interfaces of the root package (generated transt_ros.msg /
#     transt_ros.srv + libraries) with -DTRANST_INSTALL_PYTHON_SOURCES=OFF; the hand-written
#     sources are imported from the checkout (editable install + pkgutil.extend_path).
#  3. .venv/lib/python3.11/site-packages/_transt_ros_standalone.{py,pth}: .venv's Python (and so its
#     entry points) finds the prefix without scripts/env.sh (see scripts/transt_ros_standalone.py).
#
# Skips a package when the hash of its inputs matches the stamp in the prefix. Quiet on success
# (one line with the time when something was built), prints the build log on failure.
# Needs the wheels of requirements/lock.txt in .venv (scripts/setup.sh), cmake, make and a C compiler.
# Usage: scripts/build_interfaces.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
force=0
[ "${1:-}" = "--force" ] && force=1

# shellcheck source=scripts/env.sh
source scripts/env.sh
venv="$root/.venv"
prefix="$venv/ros_prefix"
py="$venv/bin/python"
pydir="lib/python3.11/site-packages"   # must match PYTHONPATH in scripts/env.sh
work="$root/build/interfaces"
log="$work/build.log"
mkdir -p "$work"

# Several agents / CI jobs may run setup at once: serialise builds.
exec 9>"$work/.lock"
flock 9

start=$(date +%s)
: >"$log"
fail() {
  echo "build_interfaces: FAILED: $1" >&2
  echo "----- $log -----" >&2
  tail -n 200 "$log" >&2
  exit 1
}

# shellcheck source=scripts/interfaces_lib.sh
source scripts/interfaces_lib.sh
fix_wheel_cmake_paths "$py" "$venv"   # sets py_inc, np_inc

inputs_hash() {  # hash of the given files/dirs (recursively), this script and the interpreter
  {
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort \
      | xargs -r sha256sum
    sha256sum scripts/build_interfaces.sh scripts/interfaces_lib.sh
    echo "$py_inc $np_inc"
  } | sha256sum | cut -d' ' -f1
}

build_pkg() {  # name source-dir extra-cmake-args...
  cmake_install_package "$1" "$2" "$work/$1" "$py" "$venv" "${@:3}"
}

built=()

# 1. vision_msgs
vm_stamp="$prefix/.vision_msgs.stamp"
vm_hash="$(inputs_hash ros_deps/vision_msgs)"
need_vm=0
if [ "$force" = 1 ] || ! "$py" -c 'import vision_msgs.msg' >/dev/null 2>&1; then
  need_vm=1
elif [ -f "$prefix/$pydir/vision_msgs/__init__.py" ] && [ "$(cat "$vm_stamp" 2>/dev/null)" != "$vm_hash" ]; then
  need_vm=1   # our own stand-in, built from older inputs
fi
if [ "$need_vm" = 1 ]; then
  rm -f "$vm_stamp"
  build_pkg vision_msgs "$root/ros_deps/vision_msgs"
  echo "$vm_hash" >"$vm_stamp"
  built+=(vision_msgs)
fi

# 2. transt_ros interfaces
tr_stamp="$prefix/.transt_ros.stamp"
tr_hash="$(inputs_hash msg srv resource CMakeLists.txt package.xml transt_ros/__init__.py launch config scripts/ros)"
if [ "$force" = 1 ] || [ "$need_vm" = 1 ] || [ "$(cat "$tr_stamp" 2>/dev/null)" != "$tr_hash" ] \
    || [ ! -f "$prefix/$pydir/transt_ros/msg/__init__.py" ]; then
  rm -f "$tr_stamp"
  # Build from a staged copy of the inputs: with .venv inside the checkout, CMake refuses the
  # exported numpy include dir (.venv/...) as "prefixed in the source directory".
  stage="$work/src/transt_ros"
  rm -rf "$stage"
  mkdir -p "$stage/transt_ros"
  cp -rp CMakeLists.txt package.xml msg srv resource "$stage/"
  cp -p transt_ros/__init__.py "$stage/transt_ros/"
  for d in launch config scripts/ros; do
    if [ -d "$d" ]; then mkdir -p "$stage/$d" && cp -rp "$d/." "$stage/$d/"; fi
  done
  build_pkg transt_ros "$stage" -DTRANST_INSTALL_PYTHON_SOURCES=OFF
  # The egg-info ament writes for the generated half would shadow the editable install's
  # distribution metadata (entry points) when the prefix comes first on sys.path.
  rm -rf "$prefix/$pydir"/transt_ros-*.egg-info
  echo "$tr_hash" >"$tr_stamp"
  built+=(transt_ros)
fi

# 3. .venv's Python finds the prefix without `source scripts/env.sh` (entry points from a clean shell):
#    scripts/transt_ros_standalone.py, imported at start-up through a .pth file in site-packages.
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cmp -s scripts/transt_ros_standalone.py "$site/_transt_ros_standalone.py" \
  || cp scripts/transt_ros_standalone.py "$site/_transt_ros_standalone.py"
pth_line='import _transt_ros_standalone'
[ "$(cat "$site/_transt_ros_standalone.pth" 2>/dev/null)" = "$pth_line" ] \
  || echo "$pth_line" >"$site/_transt_ros_standalone.pth"

if [ "${#built[@]}" -gt 0 ]; then
  # Smoke test: both halves of transt_ros import together, vision_msgs is there.
  "$py" -c '
import transt_ros, transt_ros.msg, transt_ros.srv, vision_msgs.msg
from transt_ros.msg import TrackerStatus, TrackStatus
from transt_ros.srv import ClearTrack, SetTarget
from vision_msgs.msg import Detection2D
assert TrackerStatus.TRACKING == 1 and SetTarget.Request().width == 0.0 and Detection2D().id == ""
assert TrackerStatus().tracks == [] and TrackStatus().track_id == "" and ClearTrack.Response().success is False
' >>"$log" 2>&1 || fail "import check of the built interfaces"
  echo "build_interfaces: built ${built[*]} into .venv/ros_prefix in $(( $(date +%s) - start )) s"
fi
