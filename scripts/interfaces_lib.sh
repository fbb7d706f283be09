# shellcheck shell=bash disable=SC2154  # prefix, pydir, log: set by the sourcing script
# Building the ROS interfaces with CMake against the lock's ROS wheels: the pieces shared by
# scripts/build_interfaces.sh (the project's .venv) and scripts/bundle.sh (a venv of another CPython).
# Sourced, not run. The caller defines `fail MESSAGE` and sets `prefix` (install prefix), `pydir`
# (site-packages below it) and `log` (build log).

# fix_wheel_cmake_paths PYTHON VENV
# Some wheel CMake export files name the wheel build host's Python/numpy include dirs
# (/opt/python/cpXY-cpXY/...): point the ones in VENV at PYTHON's. Sets py_inc and np_inc.
fix_wheel_cmake_paths() {
  local python="$1" venv="$2" version tag host_np host_py stale
  version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  tag="cp${version/./}"
  py_inc="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$("$python" -c 'import numpy; print(numpy.get_include())')"
  host_np="/opt/python/$tag-$tag/lib/python$version/site-packages/numpy/_core/include"
  host_py="/opt/python/$tag-$tag/include/python$version"
  mapfile -t stale < <(grep -rlF -e "$host_np" -e "$host_py" "$venv/share" --include='*.cmake' 2>/dev/null || true)
  if [ "${#stale[@]}" -gt 0 ]; then
    sed -i -e "s|$host_np|$np_inc|g" -e "s|$host_py|$py_inc|g" "${stale[@]}"
  fi
}

# cmake_install_package NAME SOURCE_DIR BUILD_DIR PYTHON VENV [CMAKE_ARGS...]
# Configure, build and install one package into $prefix (Python modules into $prefix/$pydir).
cmake_install_package() {
  local name="$1" src="$2" build_dir="$3" python="$4" venv="$5"
  shift 5
  echo "=== $name: configure" >>"$log"
  cmake -S "$src" -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix;$venv" \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DPython3_EXECUTABLE="$python" \
    -DPYTHON_INSTALL_DIR="$pydir" \
    -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_MESSAGE=NEVER \
    "$@" >>"$log" 2>&1 || fail "cmake configure of $name"
  echo "=== $name: build + install" >>"$log"
  cmake --build "$build_dir" --target install -- -j2 >>"$log" 2>&1 || fail "build of $name"
}
