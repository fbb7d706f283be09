#!/usr/bin/env bash
# Offline bundle of transt_ros for a machine without internet (docs/deploy.md, "Offline bundle"):
# everything but PyTorch, for one CPython version, installed there by DIR/install.sh with no package index.
#
#   scripts/bundle.sh --python X.Y [--with GROUP]... DIR
#   scripts/bundle.sh --python X.Y [--with GROUP]... --list      (the resolved package list only)
#
# DIR/ (created; an earlier bundle there is replaced):
#   wheels/        the run-time wheels of requirements/lock.txt for CPython X.Y on x86_64 Linux, as chosen
#                  by requirements/bundle.txt (exact lock versions; ROS 2 runtime included, build tools,
#                  test tools and torch with everything only torch pulls in left out), plus
#                  transt_ros-*.whl (the project, with the demo checkpoint) and
#                  transt_ros_interfaces-*-cpXY-*.whl (transt_ros.msg / .srv and the vision_msgs stand-in,
#                  built here for CPython X.Y, with their libraries, launch/ and config/)
#   packages.txt   what install.sh installs: ROLE NAME VERSION WHEEL GROUP
#   bundle.env     the bundle's Python version and the torch version it was tested with
#   install.sh     `DIR/install.sh VENV` (template: scripts/bundle_install.sh)
#   MANIFEST.txt   source commit, options, wheels and sizes
#
# Options:
#   --python X.Y   CPython version of the target venv. pythonX.Y must exist here: it builds the interfaces.
#   --with GROUP   add an optional group of requirements/bundle.txt (numpy, opencv, eval, scenes,
#                  onnxruntime, openvino, int8); repeatable. Default: none.
#   --max-mib N    size budget (default 60). Over it: an error for the default bundle, a warning with --with.
#   --list         print ROLE NAME VERSION GROUP for every bundled lock package and exit (no network).
#
# Needs: the package registry (pip download; pip's cache serves repeated runs), pythonX.Y ($BUNDLE_PYTHON_BIN,
# else on PATH, else pyenv's X.Y.*), cmake, make and a C/C++ compiler. For the Python of the project's .venv (scripts/setup.sh) the interfaces are built with
# .venv's ROS wheels; for another Python with a build venv of the lock's ROS wheels, kept in
# build/bundle/venv-X.Y. The interfaces wheel is cached in build/bundle/interfaces-X.Y.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "bundle.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }

py_version=""
groups=()
max_mib=60
list_only=0
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --python) [ $# -ge 2 ] || usage; py_version="$2"; shift 2 ;;
    --python=*) py_version="${1#*=}"; shift ;;
    --with) [ $# -ge 2 ] || usage; groups+=("$2"); shift 2 ;;
    --with=*) groups+=("${1#*=}"); shift ;;
    --max-mib) [ $# -ge 2 ] || usage; max_mib="$2"; shift 2 ;;
    --list) list_only=1; shift ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$out" ] || die "one DIR only (got '$out' and '$1')"; out="$1"; shift ;;
  esac
done
[[ "$py_version" =~ ^3\.[0-9]+$ ]] || die "--python X.Y is required (e.g. --python 3.11)"
[[ "$max_mib" =~ ^[0-9]+$ ]] || die "--max-mib takes a whole number of MiB"
[ "$list_only" = 1 ] || [ -n "$out" ] || die "no output DIR given (see --help)"
groups_csv="$(IFS=,; echo "${groups[*]:-}")"
tag="cp${py_version/./}"
lock="${BUNDLE_LOCK:-requirements/lock.txt}"     # other files: for test/test_bundle.py
spec="${BUNDLE_SPEC:-requirements/bundle.txt}"

# Any Python 3 runs the helpers below (standard library only: they read files or write a zip file).
helper_py="$(command -v python3 || true)"
[ -n "$helper_py" ] || die "no python3 found"
helper() { "$helper_py" -I -S "$@"; }
# No other environment leaks into the build: not scripts/env.sh's 3.11 prefix, not a sourced ROS distro.
unset PYTHONPATH PYTHONHOME AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH VIRTUAL_ENV \
  _ROS_WHEELS_BOOTSTRAP_COMPLETE ROS_DISTRO ROS_VERSION
export TRANST_STANDALONE_PREFIX=0   # .venv's own ros_prefix stays out of the interfaces build

# ----------------------------------------------------------------------------------------------------
# 1. The package list: requirements/bundle.txt resolved against the lock (exact versions).
resolve() {  # prints ROLE NAME VERSION GROUP lines; errors (non-zero) on any inconsistency
  helper - "$lock" "$spec" "$groups_csv" <<'PY'
import re
import sys

lock_path, spec_path, wanted = sys.argv[1], sys.argv[2], [g for g in sys.argv[3].split(',') if g]
errors = []


def norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


lock = {}
for number, raw in enumerate(open(lock_path), 1):
    line = raw.split('#', 1)[0].strip()
    if not line:
        continue
    match = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)', line)
    if not match:
        errors.append(f'{lock_path}:{number}: not an exact pin (NAME==VERSION): {line}')
        continue
    lock[norm(match[1])] = (match[1], match[2])

seen, chosen, groups = {}, [], set()
for number, raw in enumerate(open(spec_path), 1):
    fields = raw.split('#', 1)[0].split()
    if not fields:
        continue
    where = f'{spec_path}:{number}'
    if len(fields) not in (2, 3):
        errors.append(f'{where}: expected ROLE NAME [VERSION]: {raw.strip()}')
        continue
    role, name = fields[0], fields[1]
    key = norm(name)
    if key in seen:
        errors.append(f'{where}: {name} is listed twice (also line {seen[key]})')
        continue
    seen[key] = number
    member_of = []
    if role.startswith('with:'):
        member_of = [g for g in role[5:].split(',') if g]
        if not member_of:
            errors.append(f'{where}: with: needs a group name')
        groups.update(member_of)
    elif role not in ('ros', 'lib', 'exclude'):
        errors.append(f'{where}: unknown role {role!r} (ros, lib, with:GROUP, exclude)')
        continue
    pinned = lock.get(key)
    if len(fields) == 3:
        version = fields[2]
        if version.startswith('@'):
            other = lock.get(norm(version[1:]))
            if other is None:
                errors.append(f'{where}: {version[1:]} is not pinned in {lock_path}')
                continue
            version = other[1]
        elif version.startswith('=='):
            version = version[2:]
        else:
            errors.append(f'{where}: version must be ==X or @NAME, not {version!r}')
            continue
        if pinned is not None and pinned[1] != version:
            errors.append(f'{where}: {name} {version} differs from {lock_path} ({pinned[0]}=={pinned[1]})')
            continue
        if pinned is not None and not fields[2].startswith('@'):
            print(f'bundle.sh: note: {name} is pinned in {lock_path} now; drop the version in {spec_path}',
                  file=sys.stderr)
    elif pinned is None:
        if role == 'exclude':
            print(f'bundle.sh: note: {where}: {name} is not in {lock_path} (stale exclude)', file=sys.stderr)
        else:
            errors.append(f'{where}: {name} is not pinned in {lock_path} (give ==VERSION for an optional one)')
        continue
    else:
        version = pinned[1]
    if role == 'exclude':
        continue
    spelled = pinned[0] if pinned is not None else name
    if role in ('ros', 'lib'):
        chosen.append((role, spelled, version, '-'))
    else:
        hit = [g for g in member_of if g in wanted]
        if hit:
            chosen.append(('lib', spelled, version, hit[0]))

for key, (name, version) in sorted(lock.items()):
    if key not in seen:
        errors.append(f'{lock_path} pins {name}=={version} but {spec_path} does not say whether to bundle it')
unknown = sorted(set(wanted) - groups)
if unknown:
    errors.append(f'unknown --with group(s) {", ".join(unknown)}; known: {", ".join(sorted(groups))}')
if errors:
    sys.exit('bundle.sh: ' + '\nbundle.sh: '.join(errors))
for row in chosen:
    print(*row)
PY
}

packages="$(resolve)"
if [ "$list_only" = 1 ]; then
  printf '%s\n' "$packages"
  exit 0
fi

start=$(date +%s)
# pythonX.Y: $BUNDLE_PYTHON_BIN, else on PATH, else a pyenv version X.Y.* (a pyenv shim of a version that
# is installed but not selected does not run).
python_bin="${BUNDLE_PYTHON_BIN:-$(command -v "python$py_version" || true)}"
if [ -z "$python_bin" ] || ! "$python_bin" -c 'import sys' >/dev/null 2>&1; then
  python_bin=""
  if command -v pyenv >/dev/null; then
    for candidate in "$(pyenv root)/versions/$py_version".*/bin/"python$py_version"; do
      [ -x "$candidate" ] && python_bin="$candidate"
    done
  fi
fi
[ -n "$python_bin" ] || die "python$py_version not found (set BUNDLE_PYTHON_BIN): it builds the interfaces for that Python"
[ "$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$py_version" ] \
  || die "$python_bin is not Python $py_version"
for tool in cmake make cc c++; do
  command -v "$tool" >/dev/null || die "$tool not found: the interfaces are compiled here"
done
out="$(mkdir -p "$(dirname "$out")" && cd "$(dirname "$out")" && pwd)/$(basename "$out")"
case "$out" in "$root"|/) die "refusing to write the bundle to $out" ;; esac
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/MANIFEST.txt" ]; then
  die "$out exists and is not an earlier bundle: choose an empty or new directory"
fi
work="$root/build/bundle"
mkdir -p "$work"
exec 9>"$work/.lock-$py_version"
flock 9   # one bundle build per Python at a time (build venv and interfaces cache)
log="$work/bundle-$py_version.log"
: >"$log"
step() { echo "bundle.sh: $*"; }
fail() {
  echo "bundle.sh: FAILED: $1" >&2
  echo "----- $log -----" >&2
  tail -n 60 "$log" >&2
  exit 1
}
stage="$out.partial"
rm -rf "$stage"
mkdir -p "$stage/wheels"

# ----------------------------------------------------------------------------------------------------
# 2. A build venv with the ROS build tools for CPython X.Y.
venv_py="$root/.venv/bin/python"
if [ -x "$venv_py" ] && [ "$("$venv_py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$py_version" ] \
    && "$venv_py" -c 'import rosidl_generator_py, rosidl_adapter, catkin_pkg, numpy, setuptools' >/dev/null 2>&1; then
  build_venv="$root/.venv"
else
  build_venv="$work/venv-$py_version"
  venv_hash="$( { grep -E '^(ros-|catkin-pkg|numpy|empy|lark-parser)' "$lock"; echo "$py_version"; } | sha256sum | cut -c1-16)"
  if [ "$(cat "$build_venv/.bundle-stamp" 2>/dev/null)" != "$venv_hash" ]; then
    step "build venv for CPython $py_version (the lock's ROS wheels; once, kept in ${build_venv#"$root"/})"
    rm -rf "$build_venv"
    "$python_bin" -m venv "$build_venv" >>"$log" 2>&1 || fail "python$py_version -m venv"
    mapfile -t ros_build < <(grep -oE '^ros-[a-z0-9-]+' "$lock")
    "$build_venv/bin/python" -m pip install --disable-pip-version-check -q -c "$lock" \
      "${ros_build[@]}" catkin-pkg numpy setuptools >>"$log" 2>&1 || fail "installing the ROS build wheels"
    echo "$venv_hash" >"$build_venv/.bundle-stamp"
  fi
fi
build_py="$build_venv/bin/python"

# ----------------------------------------------------------------------------------------------------
# 3. Wheels for CPython X.Y (pip download, no dependency resolution: the list is complete).
# pip before 24 does not widen --platform manylinux_2_28 to the older manylinux tags: name them all.
platforms=()
for minor in 28 27 26 25 24 23 22 21 20 19 18 17; do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
requirements="$stage/requirements.txt"
awk '{print $2 "==" $3}' <<<"$packages" >"$requirements"
step "downloading $(wc -l <"$requirements") wheels for CPython $py_version${groups_csv:+ (with $groups_csv)}"
"$build_py" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: \
  --implementation cp --python-version "$py_version" "${platforms[@]}" \
  -d "$stage/wheels" -r "$requirements" >>"$log" 2>&1 || fail "pip download (registry reachable? see the log)"
rm -f "$requirements"

# ----------------------------------------------------------------------------------------------------
# 4. The interfaces for CPython X.Y (as scripts/build_interfaces.sh, into a private prefix), as a wheel.
project_version="$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' package.xml | head -n 1)"
[ -n "$project_version" ] || die "no <version> in package.xml"
iface_dir="$work/interfaces-$py_version"
iface_hash="$( {
  find msg srv resource CMakeLists.txt package.xml transt_ros/__init__.py launch config ros_deps/vision_msgs \
    -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null | LC_ALL=C sort | xargs -r sha256sum
  sha256sum scripts/bundle.sh scripts/interfaces_lib.sh
  echo "$py_version $build_venv"; cat "$build_venv/.bundle-stamp" 2>/dev/null || grep -E '^ros-' "$lock"
} | sha256sum | cut -c1-16)"
iface_wheel="$iface_dir/transt_ros_interfaces-$project_version-$tag-$tag-linux_x86_64.whl"
if [ "$(cat "$iface_dir/.stamp" 2>/dev/null)" != "$iface_hash" ] || [ ! -f "$iface_wheel" ]; then
  step "building the interfaces for CPython $py_version (cmake; about a minute)"
  rm -rf "$iface_dir"
  mkdir -p "$iface_dir"
  prefix="$iface_dir/prefix"
  pydir="lib/python$py_version/site-packages"
  export AMENT_PREFIX_PATH="$prefix:$build_venv"
  export PATH="$build_venv/bin:$PATH"
  # shellcheck source=scripts/interfaces_lib.sh
  source "$root/scripts/interfaces_lib.sh"
  fix_wheel_cmake_paths "$build_py" "$build_venv"
  build_pkg() {  # name source-dir extra-cmake-args...
    cmake_install_package "$1" "$2" "$iface_dir/build/$1" "$build_py" "$build_venv" "${@:3}"
  }
  build_pkg vision_msgs "$root/ros_deps/vision_msgs"
  # From a staged copy (with .venv inside the checkout, CMake refuses .venv's include dirs as
  # "prefixed in the source directory"); only the interfaces and transt_ros/__init__.py.
  src="$iface_dir/src/transt_ros"
  mkdir -p "$src/transt_ros"
  cp -rp CMakeLists.txt package.xml msg srv resource "$src/"
  cp -p transt_ros/__init__.py "$src/transt_ros/"
  for d in launch config; do
    if [ -d "$d" ]; then mkdir -p "$src/$d" && cp -rp "$d/." "$src/$d/"; fi
  done
  build_pkg transt_ros "$src" -DTRANST_INSTALL_PYTHON_SOURCES=OFF
  # Smoke test in the build venv: the generated halves import (with the checkout's transt_ros).
  PYTHONPATH="$prefix/$pydir:$root" LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$build_py" -c '
from transt_ros.msg import TrackerStatus, TrackStatus
from transt_ros.srv import ClearTrack, SetTarget
from vision_msgs.msg import Detection2D
assert TrackerStatus.TRACKING == 1 and SetTarget.Request().width == 0.0 and Detection2D().id == ""
' >>"$log" 2>&1 || fail "import check of the interfaces built for CPython $py_version"
  # The wheel: generated Python packages at the root, libraries and share/ as data (into the venv's prefix).
  helper - "$prefix" "$py_version" "$project_version" "$iface_wheel" <<'PY' >>"$log" 2>&1 || fail "interfaces wheel"
import base64
import hashlib
import os
import sys
import zipfile

prefix, py_version, version, wheel_path = sys.argv[1:5]
tag = 'cp' + py_version.replace('.', '')
dist = 'transt_ros_interfaces'
site = os.path.join(prefix, 'lib', f'python{py_version}', 'site-packages')
data = f'{dist}-{version}.data/data/'
info = f'{dist}-{version}.dist-info/'
files = []  # (name in the wheel, path on disk or bytes)


def tree(base, top, arc_prefix, keep):
    for dirpath, dirnames, filenames in os.walk(os.path.join(base, top)):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__' and not d.endswith('.egg-info'))
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), base)
            if keep(rel) and not rel.endswith(('.pyc', '.c')):
                files.append((arc_prefix + rel, os.path.join(dirpath, name)))


# transt_ros.msg / .srv and their C extension modules; transt_ros/__init__.py is the project wheel's.
tree(site, 'transt_ros', '', lambda rel: rel != os.path.join('transt_ros', '__init__.py'))
tree(site, 'vision_msgs', '', lambda rel: True)
# Type support libraries into VENV/lib (ros_wheels_bootstrapper puts sys.prefix/lib on the library path).
for name in sorted(os.listdir(os.path.join(prefix, 'lib'))):
    if name.endswith('.so'):
        files.append((data + 'lib/' + name, os.path.join(prefix, 'lib', name)))
# share/: the ament index, message definitions, launch/ and config/ (CMake files: not needed to run).
tree(prefix, 'share', data, lambda rel: f'{os.sep}cmake{os.sep}' not in rel)
# Entry points and `python` from a clean shell find VENV's share/ (get_package_share_directory).
files.append(('_transt_ros_bundle.pth', b'import _transt_ros_bundle\n'))
files.append(('_transt_ros_bundle.py', b'''"""Installed by the transt_ros offline bundle (scripts/bundle.sh): appends this environment's prefix
to AMENT_PREFIX_PATH where it is missing, so get_package_share_directory() finds share/transt_ros and the
message definitions from a clean shell. TRANST_BUNDLE_ENV=0 turns it off."""
import os
import sys

if os.environ.get('TRANST_BUNDLE_ENV', '1') != '0':
    _parts = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    if sys.prefix not in _parts:
        os.environ['AMENT_PREFIX_PATH'] = os.pathsep.join([*_parts, sys.prefix])
'''))
metadata = (f'Metadata-Version: 2.1\nName: transt-ros-interfaces\nVersion: {version}\n'
            f'Summary: transt_ros ROS 2 interfaces (transt_ros.msg, transt_ros.srv, vision_msgs stand-in) '
            f'for CPython {py_version}, built by scripts/bundle.sh\nRequires-Python: =={py_version}.*\n')
wheel = (f'Wheel-Version: 1.0\nGenerator: transt_ros scripts/bundle.sh\nRoot-Is-Purelib: false\n'
         f'Tag: {tag}-{tag}-linux_x86_64\n')
files += [(info + 'METADATA', metadata.encode()), (info + 'WHEEL', wheel.encode()),
          (info + 'top_level.txt', b'_transt_ros_bundle\ntranst_ros\nvision_msgs\n')]
record = []
with zipfile.ZipFile(wheel_path, 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for arcname, source in files:
        if isinstance(source, bytes):
            content, mode = source, 0o644
        else:
            with open(source, 'rb') as handle:
                content = handle.read()
            mode = 0o755 if os.stat(source).st_mode & 0o111 else 0o644
        entry = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
        entry.external_attr = (0o100000 | mode) << 16
        entry.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(entry, content)
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b'=').decode()
        record.append(f'{arcname},sha256={digest},{len(content)}')
    record.append(f'{info}RECORD,,')
    entry = zipfile.ZipInfo(info + 'RECORD', date_time=(1980, 1, 1, 0, 0, 0))
    entry.external_attr = 0o100644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, '\n'.join(record) + '\n')
print(f'{wheel_path}: {len(files)} files')
PY
  echo "$iface_hash" >"$iface_dir/.stamp"
fi
cp "$iface_wheel" "$stage/wheels/"
# The newest libstdc++ symbol version the interfaces compiled here need (install.sh checks the target's).
glibcxx="$(find "$iface_dir/prefix" -name '*.so' -exec objdump -T {} + 2>/dev/null \
  | grep -oE 'GLIBCXX_3\.4\.[0-9]+' | sort -uV | tail -n 1 || true)"

# ----------------------------------------------------------------------------------------------------
# 5. The project: a pure wheel of the checkout's transt_ros/ (demo checkpoint included: package_data),
#    built from a staged copy so that the checkout gets no build/ or egg-info.
step "building the transt_ros wheel"
pstage="$work/project-src"
rm -rf "$pstage"
mkdir -p "$pstage"
cp -p setup.py pyproject.toml "$pstage/"
(tar -cf - --exclude='__pycache__' --exclude='*.pyc' transt_ros) | (cd "$pstage" && tar -xf -)
"$build_py" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation --no-index \
  -w "$stage/wheels" "$pstage" >>"$log" 2>&1 || fail "pip wheel of the project"
rm -rf "$pstage"
project_wheel="$(find "$stage/wheels" -maxdepth 1 -name 'transt_ros-*-py3-none-any.whl' -printf '%f\n')"
[ -n "$project_wheel" ] || fail "pip wheel wrote no transt_ros wheel"
helper -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit(0 if "transt_ros/data/demo_model.pth" in names else "the project wheel lacks the demo checkpoint")' \
  "$stage/wheels/$project_wheel"

# ----------------------------------------------------------------------------------------------------
# 6. packages.txt, bundle.env, install.sh, MANIFEST.txt.
{
  echo "# ROLE NAME VERSION WHEEL GROUP (install.sh: app and ros always, lib only where VENV lacks it)"
  while read -r role name version group; do
    norm="$(tr '[:upper:]' '[:lower:]' <<<"$name" | sed -E 's/[-_.]+/_/g')"
    wheel="$(cd "$stage/wheels" && find . -maxdepth 1 -iname "${norm}-${version}-*.whl" -printf '%f\n' \
      | head -n 1)"
    [ -n "$wheel" ] || die "downloaded no wheel for $name==$version"
    echo "$role $name $version $wheel $group"
  done <<<"$packages"
  echo "app transt-ros-interfaces $project_version $(basename "$iface_wheel") -"
  echo "app transt_ros $project_version $project_wheel -"
} >"$stage/packages.txt"
count_listed=$(grep -vc '^#' "$stage/packages.txt")
count_files=$(find "$stage/wheels" -name '*.whl' | wc -l)
[ "$count_listed" = "$count_files" ] || die "$count_files wheels downloaded for $count_listed packages"
torch_version="$(sed -n 's/^torch==//p' "$lock")"
cat >"$stage/bundle.env" <<EOF
BUNDLE_PYTHON=$py_version
BUNDLE_PROJECT_VERSION=$project_version
BUNDLE_TESTED_TORCH=$torch_version
BUNDLE_GROUPS=${groups_csv:-none}
BUNDLE_NEEDS_GLIBCXX=${glibcxx:-}
EOF
cp scripts/bundle_install.sh "$stage/install.sh"
chmod 755 "$stage/install.sh"
total_bytes=$(du -sb --apparent-size "$stage" | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain -- transt_ros msg srv setup.py package.xml CMakeLists.txt 2>/dev/null)" ] \
  || commit="$commit+local changes"
{
  echo "transt_ros offline bundle (scripts/bundle.sh; docs/deploy.md, \"Offline bundle\")"
  echo "source:   $commit"
  echo "built:    $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), glibc $(ldd --version 2>/dev/null | head -n 1 | awk '{print $NF}')"
  echo "needs:    glibc >= 2.28 (manylinux_2_28 ROS wheels), libstdc++ with ${glibcxx:-?} (the interfaces)"
  echo "python:   CPython $py_version"
  echo "with:     ${groups_csv:-none}"
  echo "size:     $(mib "$total_bytes") MiB ($total_bytes bytes)"
  echo
  echo "wheels (bytes):"
  (cd "$stage/wheels" && find . -name '*.whl' -printf '%s %f\n' | sort -k2)
} >"$stage/MANIFEST.txt"
total_bytes=$(du -sb --apparent-size "$stage" | cut -f1)
rm -rf "$out"
mv "$stage" "$out"

echo "bundle.sh: $out: $count_files wheels, $(mib "$total_bytes") MiB, CPython $py_version, with: ${groups_csv:-none} ($(( $(date +%s) - start )) s)"
if [ "$total_bytes" -gt $(( max_mib * 1048576 )) ]; then
  if [ "${#groups[@]}" -eq 0 ]; then
    die "the bundle is $(mib "$total_bytes") MiB, over the budget of $max_mib MiB"
  fi
  echo "bundle.sh: warning: $(mib "$total_bytes") MiB is over the $max_mib MiB budget (--with ${groups_csv})" >&2
fi
echo "bundle.sh: on the target: $out/install.sh VENV   (VENV: a CPython $py_version venv with torch)"
