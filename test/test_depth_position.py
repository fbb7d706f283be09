"""3D positions from an aligned depth image (ROS-free): synthetic scenes with known geometry."""
from __future__ import annotations

import math

import numpy as np
import pytest

from transt_ros.tracking.depth_position import (
    DepthSettings,
    NoPosition,
    TargetPosition,
    depth_scale,
    target_position,
)

WIDTH, HEIGHT = 640, 480
K = (525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0)


def scene(target_m: float, box, background_m: float = 8.0, encoding: str = '32FC1') -> np.ndarray:
    """A wall at ``background_m`` and a flat target at ``target_m`` filling ``box``."""
    depth = np.full((HEIGHT, WIDTH), background_m, np.float32)
    x, y, w, h = box
    depth[y:y + h, x:x + w] = target_m
    if encoding == '16UC1':
        return np.round(depth * 1000.0).astype(np.uint16)
    return depth


def truth(box, z: float) -> tuple[float, float, float]:
    x, y, w, h = box
    u, v = x + w / 2, y + h / 2
    return (u - K[2]) * z / K[0], (v - K[5]) * z / K[4], z


@pytest.mark.parametrize('encoding', ['32FC1', '16UC1'])
@pytest.mark.parametrize('z', [1.0, 2.0, 3.5, 5.0])
def test_the_position_is_within_2_cm_from_1_to_5_m(encoding, z):
    box = (400, 100, 80, 120)
    position = target_position(scene(z, box, encoding=encoding), depth_scale(encoding), box, K)
    assert isinstance(position, TargetPosition)
    assert math.dist((position.x, position.y, position.z), truth(box, z)) < 0.02
    assert position.size[0] == pytest.approx(80 * z / K[0], rel=1e-3)
    assert position.distance_m == pytest.approx(math.dist((0, 0, 0), truth(box, z)), abs=0.02)


def test_holes_nan_and_the_edges_do_not_move_the_depth():
    box = (200, 150, 100, 100)
    depth = scene(2.0, box)
    rng = np.random.default_rng(0)
    holes = rng.random(depth.shape) < 0.4
    depth[holes] = 0.0
    depth[rng.random(depth.shape) < 0.1] = np.nan
    loose = (190, 140, 120, 120)  # the box sticks out over the 8 m wall: the central half does not
    position = target_position(depth, 1.0, loose, K)
    assert isinstance(position, TargetPosition) and abs(position.z - 2.0) < 0.02


def test_too_few_valid_depths_give_no_position_with_the_reason():
    box = (200, 150, 100, 100)
    depth = scene(2.0, box)
    depth[150:250, 200:300] = 0.0
    result = target_position(depth, 1.0, box, K)
    assert isinstance(result, NoPosition) and 'too few valid depths' in result.reason
    far = scene(30.0, box)
    assert 'too few valid depths' in target_position(far, 1.0, box, K, DepthSettings(max_range_m=20.0)).reason


def test_missing_intrinsics_and_boxes_outside_are_reported():
    box = (200, 150, 100, 100)
    assert 'focal length' in target_position(scene(2.0, box), 1.0, box, (0.0,) * 9).reason
    assert 'outside' in target_position(scene(2.0, box), 1.0, (700, 500, 20, 20), K).reason


def test_millimetres_and_metres_agree_and_other_encodings_are_refused():
    box = (100, 100, 60, 60)
    metres = target_position(scene(3.0, box), depth_scale('32FC1'), box, K)
    millimetres = target_position(scene(3.0, box, encoding='16UC1'), depth_scale('16UC1'), box, K)
    assert abs(metres.z - millimetres.z) < 1e-3
    with pytest.raises(ValueError, match='16UC1 in mm or 32FC1 in m'):
        depth_scale('rgb8')
