"""Make .venv's Python find the standalone ROS prefix (.venv/ros_prefix) without ``source scripts/env.sh``.

scripts/build_interfaces.sh copies this file into .venv's site-packages as ``_transt_ros_standalone.py``,
imported at every start of .venv's Python by ``_transt_ros_standalone.pth``. It appends, where they are
missing (so whatever the environment already names keeps priority):

- the prefix's site-packages to ``sys.path`` (the generated transt_ros.msg / .srv and vision_msgs);
- the prefix's lib/ to ``LD_LIBRARY_PATH`` (their C type support libraries). The dynamic loader reads it
  only when a process starts: this runs before ``ros_wheels_bootstrapper.pth`` (names sort before it),
  which re-executes the interpreter with the ROS wheels' library folders added to this environment;
- the prefix and .venv to ``AMENT_PREFIX_PATH`` (``get_package_share_directory``, message definitions).

So ``.venv/bin/transt-demo`` and the other entry points run from a clean shell. ``TRANST_STANDALONE_PREFIX=0``
turns it off (scripts/colcon_check.sh: only the colcon workspace may provide the packages there).
"""
import os
import sys


def _append(variable: str, value: str) -> None:
    parts = [part for part in os.environ.get(variable, '').split(os.pathsep) if part]
    if value not in parts:
        os.environ[variable] = os.pathsep.join([*parts, value])


def _add_prefix() -> None:
    prefix = os.path.join(sys.prefix, 'ros_prefix')
    if os.environ.get('TRANST_STANDALONE_PREFIX', '1') == '0' or not os.path.isdir(prefix):
        return
    site_packages = os.path.join(prefix, 'lib', f'python{sys.version_info.major}.{sys.version_info.minor}',
                                 'site-packages')
    if site_packages not in sys.path:
        sys.path.append(site_packages)
    _append('LD_LIBRARY_PATH', os.path.join(prefix, 'lib'))
    _append('AMENT_PREFIX_PATH', prefix)
    _append('AMENT_PREFIX_PATH', sys.prefix)


_add_prefix()
