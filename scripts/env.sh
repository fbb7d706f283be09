# Source this file: the standalone (wheel-based) ROS 2 environment of this checkout.
# Keeps DDS on loopback by default; on a robot, use your ROS distro instead.
_transt_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TRANST_ROOT="$_transt_root"
export VIRTUAL_ENV="$_transt_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
_transt_prefix="$VIRTUAL_ENV/ros_prefix"
export AMENT_PREFIX_PATH="$_transt_prefix:$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export LD_LIBRARY_PATH="$_transt_prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$_transt_prefix/lib/python3.11/site-packages${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 100 ))}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
unset _transt_root _transt_prefix
# torch's idle OpenMP threads otherwise spin and starve the other processes of a small
# machine (node + player + tests on 2 cores); Python entry points apply the same default
# (transt_ros/common/ros_environment.py: PASSIVE_OPENMP).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
