"""The package as ROS finds it: the ament index, the installed share files, and .venv without scripts/env.sh.

``ros2 launch transt_ros ...`` and ``get_package_share_directory('transt_ros')`` find the package through
the marker ``share/ament_index/resource_index/packages/transt_ros`` of a prefix on ``AMENT_PREFIX_PATH``
(the build installs it from ``resource/transt_ros``) and then read ``share/transt_ros``: the launch file,
config/ and package.xml there must be the repository's (a stale copy runs an old launch file). In the
standalone environment, .venv's own Python finds all of it without ``source scripts/env.sh``
(``_transt_ros_standalone.pth``, written by scripts/build_interfaces.sh).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from .ros_helpers import ros_env

ament_index_python = pytest.importorskip('ament_index_python')
pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / '.venv'
STANDALONE_PREFIX = VENV / 'ros_prefix'
REBUILD = 'stale install: run scripts/build_interfaces.sh (standalone) or colcon build'


@pytest.fixture(scope='module')
def share() -> Path:
    if not os.environ.get('AMENT_PREFIX_PATH'):
        pytest.skip('AMENT_PREFIX_PATH is not set: source scripts/env.sh (or a ROS workspace) first')
    return Path(ament_index_python.get_package_share_directory('transt_ros'))


def setup_py_version() -> str:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    (call,) = [node for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'setup']
    return next(keyword.value.value for keyword in call.keywords if keyword.arg == 'version')


def test_the_marker_and_package_xml_of_the_source_tree():
    marker = ROOT / 'resource' / 'transt_ros'
    assert marker.is_file() and marker.stat().st_size == 0
    package = ElementTree.parse(ROOT / 'package.xml').getroot()
    assert package.get('format') == '3' and package.findtext('name') == 'transt_ros'
    assert package.findtext('version') == setup_py_version(), 'package.xml and setup.py versions differ'
    assert package.find('export').findtext('build_type') == 'ament_cmake'


def test_the_share_directory_holds_this_repository_s_files(share):
    prefix = Path(ament_index_python.get_package_prefix('transt_ros'))
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'transt_ros').is_file()
    assert share == prefix / 'share' / 'transt_ros'
    assert (share / 'package.xml').read_bytes() == (ROOT / 'package.xml').read_bytes(), REBUILD
    for folder in ('launch', 'config'):
        expected = {p.name: p.read_bytes() for p in (ROOT / folder).iterdir() if p.is_file()}
        installed = {p.name: p.read_bytes() for p in (share / folder).iterdir() if p.is_file()}
        assert sorted(installed) == sorted(expected), folder
        stale = [name for name in expected if installed[name] != expected[name]]
        assert not stale, f'{folder}/{stale}: {REBUILD}'
    # the interface definitions the bag writer reads through the index
    assert (share / 'msg' / 'TrackerStatus.msg').read_text() == (ROOT / 'msg' / 'TrackerStatus.msg').read_text()


def clean_environment() -> dict[str, str]:
    """No scripts/env.sh: only HOME, a system PATH and the test run's DDS isolation."""
    dds = ros_env()
    return {'HOME': os.environ.get('HOME', '/tmp'), 'PATH': '/usr/bin:/bin',
            **{name: dds[name] for name in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_DOMAIN_ID')}}


STANDALONE_ONLY = pytest.mark.skipif(
    not (STANDALONE_PREFIX.is_dir() and (VENV / 'bin' / 'python').exists()
         and Path(sys.prefix).resolve() == VENV.resolve()),
    reason='not the standalone environment (.venv with .venv/ros_prefix, scripts/setup.sh)')


@STANDALONE_ONLY
def test_venv_entry_points_run_without_env_sh(tmp_path):
    result = subprocess.run([str(VENV / 'bin' / 'transt-demo'), '--help'], cwd=tmp_path, env=clean_environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith('usage: transt-demo')


@STANDALONE_ONLY
def test_venv_python_finds_messages_libraries_and_share_without_env_sh(tmp_path):
    script = """
import rclpy
from ament_index_python.packages import get_package_share_directory
from transt_ros.msg import TrackerStatus
from vision_msgs.msg import Detection2D
rclpy.init()
node = rclpy.create_node('transt_ament_index_probe')
for message in (Detection2D, TrackerStatus):  # type support: the prefix's C libraries
    node.create_publisher(message, 'probe_' + message.__name__, 1).publish(message())
node.destroy_node()
rclpy.shutdown()
print(get_package_share_directory('transt_ros'))
print(get_package_share_directory('vision_msgs'))
"""
    result = subprocess.run([str(VENV / 'bin' / 'python'), '-c', script], cwd=tmp_path, env=clean_environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(STANDALONE_PREFIX / 'share' / 'transt_ros'),
                                     str(STANDALONE_PREFIX / 'share' / 'vision_msgs')]
    installed = Path(sysconfig_purelib()) / '_transt_ros_standalone.py'
    assert installed.read_bytes() == (ROOT / 'scripts' / 'transt_ros_standalone.py').read_bytes(), REBUILD


def sysconfig_purelib() -> str:
    import sysconfig

    return sysconfig.get_paths()['purelib']
