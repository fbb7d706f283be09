"""The project's ROS interfaces: vision_msgs type hashes, transt_ros msg/srv, DDS round trips, colcon.

Needs the built interfaces (scripts/build_interfaces.sh, run by scripts/setup.sh) and the
environment of scripts/env.sh.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .ros_helpers import ros_context, spin_until

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]

# Reference RIHS01 hashes of vision_msgs 4.x (measured on the real vision_msgs 4.1.1 package).
VISION_MSGS_RIHS01 = {
    'Point2D': 'eab0e83f44ab4de92ceaf76dd7d0e7638f2bdd1d16ffbe16c7a136c48e407247',
    'Pose2D': 'b0b5d1d7b4c20dd4fcde3ed1d4b289a919290572007d67a97043814db25d3648',
    'BoundingBox2D': '008eacbb0cf8f26e83795547bed013eec3675485ef386ec056d80eaaf1c1ce2f',
    'BoundingBox2DArray': '2464e82838009386d371b523211c21c91d74d313fcdd6788223c531d621cf691',
    'ObjectHypothesis': '51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
    'ObjectHypothesisWithPose': '41c12344c0396c48b81df12467c192d99b2a0eb1463c5c37194e4223251c80bc',
    'Detection2D': '0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea',
    'Detection2DArray': '214274120007f4a683866481336b70310268cfa107aebe9d594a6acf75bda968',
    'Classification': 'f74db28d0eaef3afb78f48bf2161cd709a1383a0309d3454383b25be11345143',
    'VisionClass': '1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a',
    'LabelInfo': '3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783',
    'VisionInfo': '95d3116a17484ad91c9a2686e1d54890bbfc3ff6c6a2de137738c4950d45d284',
    'BoundingBox3D': 'bbb73a65c163d7f9bb29009c7bde9f7faa576bd2d23299c4511d19230dab4698',
    'BoundingBox3DArray': 'a81938db9576b10c2eecd7c5a5da3eac496efd00221b25ed051dfbc81fb56da6',
    'Detection3D': 'ddd703be132ab0b69d33121f1bb034132bfbb3b0ac5f9fb1516005ba1c8a265b',
    'Detection3DArray': '793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018',
}


def _json_hash(package: str, kind: str, type_name: str) -> str:
    from ament_index_python.packages import get_package_share_directory

    path = Path(get_package_share_directory(package)) / kind / f'{type_name}.json'
    data = json.loads(path.read_text())
    full_name = f'{package}/{kind}/{type_name}'
    matches = [h['hash_string'] for h in data['type_hashes'] if h['type_name'] == full_name]
    assert len(matches) == 1, f'{path}: no single type_hashes entry for {full_name}'
    return matches[0]


@pytest.mark.parametrize('type_name', sorted(VISION_MSGS_RIHS01))
def test_vision_msgs_type_hash(type_name):
    assert _json_hash('vision_msgs', 'msg', type_name) == 'RIHS01_' + VISION_MSGS_RIHS01[type_name]


def test_vision_msgs_has_exactly_the_reference_types():
    import vision_msgs.msg
    from ament_index_python.packages import get_package_share_directory

    share = Path(get_package_share_directory('vision_msgs')) / 'msg'
    assert {p.stem for p in share.glob('*.msg')} == set(VISION_MSGS_RIHS01)
    for name in VISION_MSGS_RIHS01:
        assert hasattr(vision_msgs.msg, name)


def test_tracker_status_definition():
    from transt_ros.msg import TrackerStatus

    assert (TrackerStatus.IDLE, TrackerStatus.TRACKING, TrackerStatus.LOST, TrackerStatus.INACTIVE) == (
        0, 1, 2, 3)
    assert TrackerStatus.get_fields_and_field_types() == {
        'header': 'std_msgs/Header',
        'state': 'uint8',
        'score': 'float',
        'track_id': 'string',
        'frame_count': 'uint64',
        'latency_ms': 'float',
        'track_ms': 'float',
        'fps': 'float',
        'tracks': 'sequence<transt_ros/TrackStatus>',
    }
    msg = TrackerStatus(state=TrackerStatus.TRACKING, score=0.5, track_id='t1', frame_count=2**40)
    assert msg.frame_count == 2**40 and msg.tracks == []
    assert _json_hash('transt_ros', 'msg', 'TrackerStatus').startswith('RIHS01_')


def test_track_status_definition():
    from transt_ros.msg import TrackStatus

    assert TrackStatus.get_fields_and_field_types() == {
        'track_id': 'string', 'state': 'uint8', 'score': 'float', 'frame_count': 'uint64', 'lost_s': 'float',
        'distance_m': 'float', 'position_problem': 'string',
    }
    assert _json_hash('transt_ros', 'msg', 'TrackStatus').startswith('RIHS01_')


def test_set_target_definition():
    from transt_ros.srv import SetTarget

    assert SetTarget.Request.get_fields_and_field_types() == {
        'x': 'double', 'y': 'double', 'width': 'double', 'height': 'double',
        'stamp': 'builtin_interfaces/Time', 'track_id': 'string',
    }
    assert SetTarget.Response.get_fields_and_field_types() == {
        'accepted': 'boolean', 'reason': 'string', 'track_id': 'string',
    }
    assert _json_hash('transt_ros', 'srv', 'SetTarget').startswith('RIHS01_')


def test_clear_track_definition():
    from transt_ros.srv import ClearTrack

    assert ClearTrack.Request.get_fields_and_field_types() == {'track_id': 'string'}
    assert ClearTrack.Response.get_fields_and_field_types() == {'success': 'boolean', 'reason': 'string'}
    assert _json_hash('transt_ros', 'srv', 'ClearTrack').startswith('RIHS01_')


def test_transt_ros_is_one_package():
    """The generated msg/srv and the hand-written sources import as one ``transt_ros`` package."""
    import transt_ros
    from transt_ros import msg, srv

    assert transt_ros.__version__ and msg.TrackerStatus and srv.SetTarget
    dirs = {Path(p).resolve() for p in transt_ros.__path__}
    assert (ROOT / 'transt_ros').resolve() in dirs


def test_detection2d_and_set_target_over_dds():
    """Publisher -> subscriber of vision_msgs/Detection2D and a SetTarget call, over loopback DDS."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from transt_ros.srv import SetTarget
    from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose

    with ros_context():
        assert os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
        pub_node = rclpy.create_node('iface_test_pub')
        sub_node = rclpy.create_node('iface_test_sub')
        executor = SingleThreadedExecutor()
        executor.add_node(pub_node)
        executor.add_node(sub_node)

        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        received = []
        sub_node.create_subscription(Detection2D, 'iface_test/detection', received.append, qos)
        pub = pub_node.create_publisher(Detection2D, 'iface_test/detection', qos)

        det = Detection2D()
        det.header.frame_id = 'camera'
        det.header.stamp.sec = 12
        det.header.stamp.nanosec = 345
        det.id = 'track-1'
        det.bbox.center.position.x = 320.5
        det.bbox.center.position.y = 240.25
        det.bbox.size_x = 64.0
        det.bbox.size_y = 48.0
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.class_id = 'target'
        hyp.hypothesis.score = 0.875
        det.results.append(hyp)

        assert spin_until(executor, lambda: pub.get_subscription_count() > 0, 15.0), 'no DDS match'
        infos = sub_node.get_publishers_info_by_topic('/iface_test/detection')
        assert infos and infos[0].topic_type == 'vision_msgs/msg/Detection2D'
        assert infos[0].topic_type_hash.value.hex() == VISION_MSGS_RIHS01['Detection2D']

        def published_and_received():
            if not received:
                pub.publish(det)
            return bool(received)

        assert spin_until(executor, published_and_received, 15.0), 'Detection2D not received'
        got = received[0]
        assert got.header.frame_id == 'camera' and got.header.stamp.sec == 12
        assert got.header.stamp.nanosec == 345 and got.id == 'track-1'
        assert (got.bbox.center.position.x, got.bbox.center.position.y) == (320.5, 240.25)
        assert (got.bbox.size_x, got.bbox.size_y) == (64.0, 48.0)
        assert got.results[0].hypothesis.class_id == 'target'
        assert got.results[0].hypothesis.score == 0.875

        requests = []

        def handle(request, response):
            requests.append(request)
            response.accepted = request.width > 0 and request.height > 0
            response.reason = '' if response.accepted else 'empty box'
            response.track_id = 'track-2' if response.accepted else ''
            return response

        sub_node.create_service(SetTarget, 'iface_test/set_target', handle)
        client = pub_node.create_client(SetTarget, 'iface_test/set_target')
        assert spin_until(executor, client.service_is_ready, 15.0), 'service not discovered'

        future = client.call_async(SetTarget.Request(x=10.0, y=20.0, width=30.5, height=40.0))
        assert spin_until(executor, future.done, 15.0), 'no SetTarget response'
        response = future.result()
        assert response.accepted and response.reason == '' and response.track_id == 'track-2'
        assert (requests[0].x, requests[0].y, requests[0].width, requests[0].height) == (
            10.0, 20.0, 30.5, 40.0)
        assert (requests[0].stamp.sec, requests[0].stamp.nanosec) == (0, 0)

        future = client.call_async(SetTarget.Request(x=1.0, y=1.0, width=0.0, height=5.0))
        assert spin_until(executor, future.done, 15.0)
        assert not future.result().accepted and future.result().reason == 'empty box'

        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()


def test_colcon_workspace_build():
    """The repository builds as a ROS 2 package with colcon (scripts/colcon_check.sh)."""
    result = subprocess.run(['bash', str(ROOT / 'scripts' / 'colcon_check.sh')], cwd=ROOT,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'colcon_check: OK' in result.stdout
