"""The ament index knows transt_ros in the standalone environment (``scripts/setup.sh``, ``scripts/env.sh``).

``ros2 launch transt_ros ...`` and ``get_package_share_directory('transt_ros')`` find the package through
the marker ``share/ament_index/resource_index/packages/transt_ros`` of a prefix on ``AMENT_PREFIX_PATH``;
the build installs it from ``resource/transt_ros``.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ament_index_python = pytest.importorskip('ament_index_python')
pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]


def test_the_marker_is_the_standard_empty_file():
    marker = ROOT / 'resource' / 'transt_ros'
    assert marker.is_file() and marker.stat().st_size == 0


def test_the_package_share_directory_holds_the_package_launch_files_and_config():
    if not os.environ.get('AMENT_PREFIX_PATH'):
        pytest.skip('AMENT_PREFIX_PATH is not set: source scripts/env.sh (or a ROS workspace) first')
    share = Path(ament_index_python.get_package_share_directory('transt_ros'))
    prefix = Path(ament_index_python.get_package_prefix('transt_ros'))
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'transt_ros').is_file()
    assert share == prefix / 'share' / 'transt_ros'
    assert ElementTree.parse(share / 'package.xml').getroot().findtext('name') == 'transt_ros'
    for folder in ('launch', 'config'):
        expected = sorted(p.name for p in (ROOT / folder).iterdir() if p.is_file())
        assert sorted(p.name for p in (share / folder).iterdir() if p.is_file()) == expected, folder
