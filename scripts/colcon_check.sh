#!/usr/bin/env bash
# Check that the repository builds as a ROS 2 package in a colcon workspace (as on a robot),
# using the ROS 2 wheels of .venv instead of a distro.
#
# Workspace: build/colcon_ws/src/{transt_ros -> the checkout, vision_msgs -> ros_deps/vision_msgs}
# (no distro vision_msgs here, so the stand-in is built as a separate package; colcon does not find
# it inside the repository since it stops at the root package.xml). The standalone prefix
# .venv/ros_prefix is kept out of the environment so that only the workspace provides the packages.
# Then checks install/ for the generated msg/srv modules, the hand-written modules and
# share/transt_ros/package.xml and the ament index marker, and imports the installed package (and finds
# its share directory through the ament index) after sourcing install/setup.bash.
# Quiet on success (one line), prints the log on failure. Usage: scripts/colcon_check.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
py="$venv/bin/python"
ws="$root/build/colcon_ws"
log="$ws/colcon_check.log"
mkdir -p "$ws/src"
exec 9>"$ws/.lock"
flock 9
start=$(date +%s)
: >"$log"
fail() {
  echo "colcon_check: FAILED: $1" >&2
  echo "----- $log -----" >&2
  tail -n 150 "$log" >&2
  exit 1
}

# Wheel-based environment without the standalone prefix (cf. scripts/env.sh).
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export AMENT_PREFIX_PATH="$venv"
export CMAKE_PREFIX_PATH="$venv"
unset PYTHONPATH LD_LIBRARY_PATH COLCON_PREFIX_PATH
export TRANST_STANDALONE_PREFIX=0   # .venv's _transt_ros_standalone.pth: leave .venv/ros_prefix out
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 100 ))}"
# The wheels' CMake exports must name this interpreter's include dirs (see build_interfaces.sh).
host_np='/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include'
host_py='/opt/python/cp311-cp311/include/python3.11'
if grep -rqlF -e "$host_np" -e "$host_py" "$venv/share" --include='*.cmake' 2>/dev/null; then
  fail "run scripts/build_interfaces.sh first (it fixes the wheels' Python include dirs)"
fi

# Sources. transt_ros is a copy of the files git would track (tracked + untracked, not ignored):
# a symlink would make the checkout the CMake source dir, and CMake refuses the exported numpy
# include dir under .venv/ as "prefixed in the source directory".
rm -rf "$ws/src/transt_ros" "$ws/src/vision_msgs" "$ws/install"
mkdir -p "$ws/src/transt_ros"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard \
    | (cd "$root" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$root" --null -T - -cf - | tar -C "$ws/src/transt_ros" -xf -
else
  tar -C "$root" --exclude=./.venv --exclude=./build --exclude=./install --exclude=./log \
    --exclude=./.git -cf - . | tar -C "$ws/src/transt_ros" -xf -
fi
rm -rf "$ws/src/transt_ros/ros_deps"   # packages inside are not part of transt_ros
ln -s "$root/ros_deps/vision_msgs" "$ws/src/vision_msgs"

cd "$ws"
echo "=== colcon build" >>"$log"
colcon --log-base "$ws/log" build \
  --base-paths src --build-base build --install-base install \
  --event-handlers console_direct- console_cohesion+ \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$py" -DCMAKE_INSTALL_MESSAGE=NEVER \
  >>"$log" 2>&1 || fail "colcon build"

echo "=== checks" >>"$log"
pydir="lib/python3.11/site-packages"
pkg="install/transt_ros/$pydir/transt_ros"
missing=()
for f in "$pkg/__init__.py" "$pkg/msg/__init__.py" "$pkg/msg/_tracker_status.py" \
         "$pkg/srv/__init__.py" "$pkg/srv/_set_target.py" \
         install/transt_ros/share/transt_ros/package.xml \
         install/transt_ros/share/ament_index/resource_index/packages/transt_ros \
         install/transt_ros/share/transt_ros/msg/TrackerStatus.json \
         install/transt_ros/share/transt_ros/srv/SetTarget.json \
         install/vision_msgs/share/vision_msgs/msg/Detection2D.json; do
  [ -f "$f" ] || missing+=("$f")
done
# Every hand-written module of transt_ros/ (as copied into the workspace) is installed.
while IFS= read -r f; do
  [ -f "$pkg/${f#transt_ros/}" ] || missing+=("$pkg/${f#transt_ros/}")
done < <(cd src/transt_ros && find transt_ros -name '*.py' ! -path '*/__pycache__/*' | LC_ALL=C sort)
# Every console command of setup.py, as a wrapper in bin/ (CMakeLists.txt).
commands=()
while IFS= read -r c; do
  commands+=("$c")
  [ -x "install/transt_ros/bin/$c" ] || missing+=("install/transt_ros/bin/$c")
done < <(sed -n "s/^ *'\([a-z][a-z-]*\) = [a-z_.]*:[a-z_]*',\{0,1\}$/\1/p" src/transt_ros/setup.py)
[ "${#commands[@]}" -gt 0 ] || fail "no console_scripts found in setup.py"
for d in launch config; do
  if [ -n "$(ls -A "src/transt_ros/$d" 2>/dev/null)" ]; then
    [ -d "install/transt_ros/share/transt_ros/$d" ] || missing+=("install/transt_ros/share/transt_ros/$d/")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'missing: %s\n' "${missing[@]}" >>"$log"
  fail "install/ lacks ${#missing[@]} expected file(s)"
fi
grep -q extend_path "$pkg/__init__.py" || fail "installed transt_ros/__init__.py is not the hand-written one"

# Import the installed package the way a robot user would (source install/setup.bash), away from
# the checkout so that the repository's transt_ros/ cannot be picked up instead.
echo "=== import check" >>"$log"
(
  set +u
  # shellcheck disable=SC1091
  source install/setup.bash
  set -u
  cd /tmp
  TRANST_WS_INSTALL="$ws/install" "$py" - <<'EOF'
import os
import transt_ros
from ament_index_python import get_package_share_directory
from transt_ros.msg import TrackerStatus
from transt_ros.srv import SetTarget
from vision_msgs.msg import Detection2D
here = os.path.realpath(os.path.dirname(transt_ros.__file__))
assert here.startswith(os.path.realpath(os.environ['TRANST_WS_INSTALL']) + os.sep), here
share = os.path.realpath(get_package_share_directory('transt_ros'))
assert share.startswith(os.path.realpath(os.environ['TRANST_WS_INSTALL']) + os.sep), share
assert TrackerStatus.LOST == 2 and SetTarget.Response().accepted is False and Detection2D().bbox.size_x == 0.0
print('import ok:', here)
EOF
  # The console commands resolve to the workspace's bin/ and run.
  for c in "${commands[@]}"; do
    [ "$(command -v "$c")" = "$ws/install/transt_ros/bin/$c" ] || { echo "$c resolves to $(command -v "$c")"; exit 1; }
  done
  transt-convert --help >/dev/null
  transt-demo --help >/dev/null
) >>"$log" 2>&1 || fail "import of the installed packages"

echo "colcon_check: OK (colcon build of transt_ros + vision_msgs, ${#commands[@]} console commands, in $(( $(date +%s) - start )) s; $ws/install)"
