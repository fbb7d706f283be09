"""The 3D position of tracks over DDS (``depth_topic``): synthetic aligned depth (16UC1 mm and 32FC1 m)
and CameraInfo; ``~/detections_3d``, ``~/target_point`` and the status's distance, within 2 cm of the
truth from 1 to 5 m; and the reasons when there is no position: no CameraInfo, unmatched stamps, a
depth image of another size, too few valid depths. The light checkpoint keeps the box where it was
set, so the truth is known exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from transt_ros.common.stamps import ns_to_sec_nanosec

from .ros_helpers import ros_context, running_bringup, write_light_checkpoint

pytestmark = pytest.mark.ros

TOPIC = '/depth_cam/image'
DEPTH_TOPIC = '/depth_cam/depth'
WIDTH, HEIGHT = 320, 240
K = [260.0, 0.0, 159.5, 0.0, 260.0, 119.5, 0.0, 0.0, 1.0]
BOX = (120, 80, 60, 60)


def depth_msg(z_m: float, encoding: str, width: int = WIDTH, height: int = HEIGHT, valid: bool = True):
    from sensor_msgs.msg import Image

    depth = np.full((height, width), 9.0, np.float32)
    x, y, w, h = BOX
    depth[y:y + h, x:x + w] = z_m if valid else 0.0
    if encoding == '16UC1':
        data, step = np.round(depth * 1000).astype('<u2'), width * 2
    else:
        data, step = depth.astype('<f4'), width * 4
    return Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step, data=data.tobytes())


def truth(z_m: float) -> tuple[float, float, float]:
    x, y, w, h = BOX
    return (x + w / 2 - K[2]) * z_m / K[0], (y + h / 2 - K[5]) * z_m / K[4], z_m


class Scene:
    """The test's camera: colour, depth and CameraInfo publishers on the client's node."""

    def __init__(self, client):
        from geometry_msgs.msg import PointStamped
        from sensor_msgs.msg import CameraInfo, Image
        from vision_msgs.msg import Detection3DArray

        from transt_ros.ros.client import Capture
        from transt_ros.ros.image_conversion import rgb_to_image_fields

        self.client = client
        self.colour = client.node.create_publisher(Image, TOPIC, 10)
        self.depth = client.node.create_publisher(Image, DEPTH_TOPIC, 10)
        self.info = client.node.create_publisher(CameraInfo, '/depth_cam/camera_info', 10)
        self.image = Image(**rgb_to_image_fields(np.full((HEIGHT, WIDTH, 3), 90, np.uint8)))
        self.detections_3d = Capture(client, Detection3DArray, '/transt_tracker/detections_3d', 100)
        self.points = Capture(client, PointStamped, '/transt_tracker/target_point', 100)
        self.camera_info = CameraInfo(width=WIDTH, height=HEIGHT, k=K)

    def frame(self, depth=None, depth_offset_ns: int = 0, info: bool = True, check=None):
        """Publish CameraInfo, the depth image (stamp + offset) and the colour image; -> the status of
        the tracker's processing of the colour frame."""
        stamp = self.client.stamp_now(self.image)
        if info:
            self.camera_info.header = self.image.header
            self.info.publish(self.camera_info)
        if depth is not None:
            depth.header.frame_id = 'depth_cam'
            depth.header.stamp.sec, depth.header.stamp.nanosec = ns_to_sec_nanosec(stamp + depth_offset_ns)
            self.depth.publish(depth)
        self.colour.publish(self.image)
        return stamp, self.client.status.wait_for_stamp(stamp, timeout_s=20.0, check=check)


def test_depth_gives_3d_positions_and_reasons_over_dds(tmp_path):
    light = write_light_checkpoint(tmp_path / 'light.pth')
    ros_args = ['-p', f'checkpoint:={light}', '-p', f'image_topic:={TOPIC}', '-p', f'depth_topic:={DEPTH_TOPIC}',
                '-p', 'depth_stamp_tolerance:=0.01']
    with ros_context(), running_bringup(tmp_path / 'bringup', *ros_args) as bringup:
        client = bringup.client
        scene = Scene(client)
        for publisher in (scene.colour, scene.depth, scene.info):
            client.wait_for_subscriber(publisher, check=bringup.check_alive)
        client.wait_until(lambda: client.set_target(*BOX).accepted or scene.colour.publish(scene.image), 90.0,
                          'a target', bringup.check_alive)
        check = bringup.check_alive

        for encoding, z in (('16UC1', 1.0), ('32FC1', 2.5), ('16UC1', 5.0)):
            stamp, status = scene.frame(depth_msg(z, encoding), check=check)
            array = scene.detections_3d.wait_for_stamp(stamp, check=check)
            (detection,) = array.detections
            centre = detection.bbox.center.position
            assert math.dist((centre.x, centre.y, centre.z), truth(z)) < 0.02, (encoding, z, centre)
            assert detection.bbox.size.x == pytest.approx(BOX[2] * z / K[0], rel=0.01)
            assert array.header.frame_id == scene.image.header.frame_id
            point = scene.points.wait_for_stamp(stamp, check=check).point
            assert math.dist((point.x, point.y, point.z), truth(z)) < 0.02
            assert status.tracks[0].distance_m == pytest.approx(math.dist((0, 0, 0), truth(z)), abs=0.02)
            assert status.tracks[0].position_problem == ''

        cases = [
            (dict(depth=depth_msg(2.0, '32FC1'), depth_offset_ns=50_000_000), 'no depth image stamped within 10 ms'),
            (dict(depth=depth_msg(2.0, '32FC1', width=160, height=120)), 'the depth image is 160x120'),
            (dict(depth=depth_msg(2.0, '32FC1', valid=False)), 'too few valid depths'),
        ]
        for arguments, reason in cases:
            stamp, status = scene.frame(**arguments, check=check)
            assert reason in status.tracks[0].position_problem, status.tracks[0].position_problem
            assert math.isnan(status.tracks[0].distance_m)
            assert not scene.detections_3d.wait_for_stamp(stamp, check=check).detections


def test_without_camera_info_there_is_no_position_and_the_status_says_why(tmp_path):
    light = write_light_checkpoint(tmp_path / 'light.pth')
    ros_args = ['-p', f'checkpoint:={light}', '-p', f'image_topic:={TOPIC}', '-p', f'depth_topic:={DEPTH_TOPIC}']
    with ros_context(), running_bringup(tmp_path / 'bringup', *ros_args) as bringup:
        client = bringup.client
        scene = Scene(client)
        for publisher in (scene.colour, scene.depth):
            client.wait_for_subscriber(publisher, check=bringup.check_alive)
        client.wait_until(lambda: client.set_target(*BOX).accepted or scene.colour.publish(scene.image), 90.0,
                          'a target', bringup.check_alive)
        _, status = scene.frame(depth_msg(2.0, '32FC1'), info=False, check=bringup.check_alive)
        assert 'no CameraInfo' in status.tracks[0].position_problem
