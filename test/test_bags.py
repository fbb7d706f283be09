"""rosbag2 bags written by the project read back identically (MCAP and sqlite3), laid out as rosbag2 does."""
from __future__ import annotations

import json
import sqlite3

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')
pytest.importorskip('vision_msgs.msg')
pytestmark = pytest.mark.ros

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from vision_msgs.msg import Detection2D  # noqa: E402

from transt_ros.bags import BagError, create_bag, open_bag  # noqa: E402
from transt_ros.bags.messages import (  # noqa: E402
    camera_info_message,
    detection_box,
    detection_score,
    stamped_detection,
)
from transt_ros.bags.rosbag2 import DEFINITION_DELIMITER, message_definition, type_description_hash  # noqa: E402
from transt_ros.common.stamps import stamp_to_ns  # noqa: E402
from transt_ros.evaluation.make_bag import (  # noqa: E402
    CAMERA_INFO_TOPIC,
    GROUND_TRUTH_TOPIC,
    IMAGE_TOPIC,
    SEQUENCES_KEY,
    SequenceSource,
    write_sequences_bag,
)
from transt_ros.evaluation.make_bag import main as make_bag_main  # noqa: E402
from transt_ros.evaluation.tracking_bag import image_to_rgb_array  # noqa: E402

DETECTION_2D_RIHS01 = 'RIHS01_0d12b69df5c593b3455b7346fac8205437a7d4bcb09b9e0e0b2dde787ded38ea'
FPS = 25.0
START_NS = 1_700_000_000_123_456_789


def _sources():
    """Two sequences of random frames (exact round trips need lossless data); one absent target."""
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(7, 48, 64, 3), dtype=np.uint8)
    boxes = np.array([[3, 4, 20, 10], [4.25, 5.5, 21, 11], [5, 6, 22, 12], [np.nan] * 4,
                      [10, 11, 12, 13], [11, 12, 13, 14], [12.75, 13.125, 14.5, 15]], dtype=float)
    return frames, boxes, [SequenceSource('first', boxes[:4], lambda i: frames[i]),
                           SequenceSource('second', boxes[4:], lambda i: frames[4 + i])]


CASES = [('mcap', None), ('mcap', 'png'), ('sqlite3', None), ('sqlite3', 'png')]


@pytest.mark.parametrize(('storage', 'compressed'), CASES)
def test_sequence_bag_round_trip_is_frame_identical(tmp_path, storage, compressed):
    frames, boxes, sources = _sources()
    directory = write_sequences_bag(tmp_path / 'bag', sources, FPS, compressed, storage, START_NS, gap_s=0.5)
    image_topic = IMAGE_TOPIC + '/compressed' if compressed else IMAGE_TOPIC
    period = round(1e9 / FPS)
    expected_stamps = [START_NS + i * period for i in range(4)] + [START_NS + 4 * period + 500_000_000 + i * period
                                                                    for i in range(3)]
    with open_bag(directory) as reader:
        assert reader.storage_identifier == storage
        counts = {name: info.message_count for name, info in reader.topics.items()}
        assert counts == {image_topic: 7, CAMERA_INFO_TOPIC: 7, GROUND_TRUTH_TOPIC: 7}
        images = list(reader.decoded([image_topic]))
        truth = list(reader.decoded([GROUND_TRUTH_TOPIC]))
        infos = list(reader.decoded([CAMERA_INFO_TOPIC]))
    assert [stamp_to_ns(msg.header.stamp) for _, msg in images] == expected_stamps
    assert [raw.log_time_ns for raw, _ in images] == expected_stamps
    for index, (_, msg) in enumerate(images):
        assert msg.header.frame_id == 'camera'
        assert type(msg).__name__ == ('CompressedImage' if compressed else 'Image')
        np.testing.assert_array_equal(image_to_rgb_array(msg), frames[index])
    assert [stamp_to_ns(msg.header.stamp) for _, msg in truth] == expected_stamps
    assert [msg.id for _, msg in truth] == ['first'] * 4 + ['second'] * 3
    for index, (_, msg) in enumerate(truth):
        absent = not np.all(np.isfinite(boxes[index]))
        assert detection_box(msg) == ((0.0,) * 4 if absent else tuple(boxes[index]))  # empty box: target absent
        assert detection_score(msg) == 1.0
    assert all(list(msg.k) == list(infos[0][1].k) for _, msg in infos)
    assert (infos[0][1].width, infos[0][1].height) == (64, 48)


def test_detection2d_fields_survive_a_bag_exactly(tmp_path):
    box = (10.125, -3.5, 40.25, 0.75)
    original = stamped_detection(box, START_NS, 'optical', score=0.8125, class_id='cup', detection_id='7')
    for path in (tmp_path / 'mcap' / 'det.mcap', tmp_path / 'sqlite' / 'det.db3'):
        with create_bag(path) as writer:
            writer.write_message('/detections', original, START_NS + 5)
        with open_bag(path) as reader:
            ((raw, msg),) = list(reader.decoded())
        assert raw.log_time_ns == START_NS + 5 and raw.topic == '/detections'
        assert raw.data == serialize_message(original)
        assert msg == original
        assert detection_box(msg) == box
        assert (msg.id, msg.results[0].hypothesis.class_id, msg.results[0].hypothesis.score) == ('7', 'cup', 0.8125)
        assert stamp_to_ns(msg.header.stamp) == START_NS and msg.header.frame_id == 'optical'


def test_mcap_follows_the_rosbag2_storage_plugin_layout(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    _, _, sources = _sources()
    write_sequences_bag(tmp_path / 'demo.mcap', sources[:1], FPS)
    with open(tmp_path / 'demo.mcap', 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        schemas = {schema.name: schema for schema in summary.schemas.values()}
        assert set(schemas) == {'sensor_msgs/msg/Image', 'sensor_msgs/msg/CameraInfo', 'vision_msgs/msg/Detection2D'}
        for name, schema in schemas.items():
            assert schema.encoding == 'ros2msg'
            assert schema.data.decode() == message_definition(name)[1]
        for channel in summary.channels.values():
            assert channel.message_encoding == 'cdr'
            assert yaml.safe_load(channel.metadata['offered_qos_profiles'])[0]['reliability'] == 1
            assert channel.metadata['topic_type_hash'].startswith('RIHS01_')
        # an independent ros2msg parser decodes every message with the stored definitions
        decoded = list(reader.iter_decoded_messages())
        assert len(decoded) == 3 * 4
        detection = next(d for _, channel, _, d in decoded if channel.topic == GROUND_TRUTH_TOPIC)
        assert (detection.bbox.size_x, detection.bbox.size_y, detection.id) == (20.0, 10.0, 'first')
        records = {record.name: record.metadata for record in reader.iter_metadata()}
    stored = yaml.safe_load(records['rosbag2']['serialized_metadata'])['rosbag2_bagfile_information']
    on_disk = yaml.safe_load((tmp_path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert stored == on_disk
    assert on_disk['version'] == 8 and on_disk['storage_identifier'] == 'mcap'
    assert on_disk['relative_file_paths'] == ['demo.mcap'] and on_disk['message_count'] == 12
    assert on_disk['files'][0]['message_count'] == 12
    assert on_disk['duration']['nanoseconds'] == 3 * round(1e9 / FPS)
    assert json.loads(on_disk['custom_data'][SEQUENCES_KEY]) == ['first']
    topics = {t['topic_metadata']['name']: t for t in on_disk['topics_with_message_count']}
    assert topics[GROUND_TRUTH_TOPIC]['topic_metadata']['type_description_hash'] == DETECTION_2D_RIHS01
    assert yaml.safe_load(topics[IMAGE_TOPIC]['topic_metadata']['offered_qos_profiles'])[0]['depth'] == 10


def test_sqlite3_follows_the_rosbag2_schema(tmp_path):
    _, _, sources = _sources()
    directory = write_sequences_bag(tmp_path / 'bag', sources, FPS, storage='sqlite3')
    database = directory / 'bag_0.db3'
    metadata = yaml.safe_load((directory / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert metadata['storage_identifier'] == 'sqlite3' and metadata['relative_file_paths'] == ['bag_0.db3']
    with sqlite3.connect(database) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {'schema', 'metadata', 'topics', 'message_definitions', 'messages'}
        assert db.execute('SELECT schema_version FROM schema').fetchone()[0] == 4
        columns = [row[1] for row in db.execute('PRAGMA table_info(topics)')]
        assert columns == ['id', 'name', 'type', 'serialization_format', 'offered_qos_profiles',
                           'type_description_hash']
        assert [row[1] for row in db.execute('PRAGMA table_info(messages)')] == ['id', 'topic_id', 'timestamp', 'data']
        definitions = dict(db.execute('SELECT topic_type, encoded_message_definition FROM message_definitions'))
        stored = yaml.safe_load(db.execute('SELECT metadata FROM metadata').fetchone()[0])
        count = db.execute('SELECT count(*) FROM messages').fetchone()[0]
    assert definitions['vision_msgs/msg/Detection2D'] == message_definition('vision_msgs/msg/Detection2D')[1]
    assert stored['rosbag2_bagfile_information'] == metadata
    assert count == metadata['message_count'] == 7 + 7 + 7


def test_message_definition_is_rosbag2_concatenation():
    encoding, text = message_definition('vision_msgs/msg/Detection2D')
    assert encoding == 'ros2msg'
    blocks = text.split('\n' + DEFINITION_DELIMITER)
    names = [block.split('\n', 1)[0] for block in blocks[1:]]
    assert all(name.startswith('MSG: ') for name in names)
    assert len(names) == len(set(names))
    assert {'MSG: std_msgs/Header', 'MSG: builtin_interfaces/Time', 'MSG: vision_msgs/BoundingBox2D',
            'MSG: vision_msgs/ObjectHypothesisWithPose', 'MSG: geometry_msgs/PoseWithCovariance'} <= set(names)
    assert 'std_msgs/Header header' in blocks[0]
    assert type_description_hash('vision_msgs/msg/Detection2D') == DETECTION_2D_RIHS01


def test_camera_info_is_a_centred_pinhole():
    info = camera_info_message(640, 480, START_NS)
    focal = info.k[0]
    assert info.k[4] == focal and (info.k[2], info.k[5]) == (319.5, 239.5)
    assert list(info.d) == [0.0] * 5 and info.distortion_model == 'plumb_bob'
    assert info.p[0] == focal and info.p[10] == 1.0
    assert focal == pytest.approx(320 / np.tan(np.radians(30)))


def test_opening_errors_name_the_problem(tmp_path):
    with pytest.raises(BagError, match='no such bag'):
        open_bag(tmp_path / 'missing')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BagError, match='without metadata.yaml'):
        open_bag(tmp_path / 'empty')
    (tmp_path / 'junk.mcap').write_bytes(b'not an mcap file at all')
    with pytest.raises(BagError, match='not a readable MCAP'):
        open_bag(tmp_path / 'junk.mcap')
    with create_bag(tmp_path / 'once.mcap') as writer:
        writer.add_topic('/a', 'std_msgs/msg/String')
    with pytest.raises(BagError, match='exists'):
        create_bag(tmp_path / 'once.mcap')
    with pytest.raises(BagError, match='already holds another bag'):
        create_bag(tmp_path / 'second.db3')  # its metadata.yaml would replace once.mcap's
    create_bag(tmp_path / 'once.mcap', overwrite=True).close()


def test_make_bag_cli_from_an_image_folder(tmp_path):
    """``--images <seq>/img`` names the sequence after ``<seq>``, not ``img`` (issue 11, item 7)."""
    frames, _, _ = _sources()
    folder = tmp_path / 'Basketball' / 'img'
    folder.mkdir(parents=True)
    for index in range(3):
        cv2.imwrite(str(folder / f'{index + 1:04d}.png'), cv2.cvtColor(frames[index], cv2.COLOR_RGB2BGR))
    (tmp_path / 'gt.txt').write_text('1,2,10,12\n2,3,10,12\n3,4,10,12\n')
    assert make_bag_main([str(tmp_path / 'out.db3'), '--images', str(folder), '--boxes', str(tmp_path / 'gt.txt'),
                          '--fps', '10', '--compressed', 'png']) == 0
    with open_bag(tmp_path) as reader:
        images = [image_to_rgb_array(msg) for _, msg in reader.decoded([IMAGE_TOPIC + '/compressed'])]
        truth = [deserialize_message(raw.data, Detection2D) for raw in reader.messages([GROUND_TRUTH_TOPIC])]
    np.testing.assert_array_equal(np.stack(images), frames[:3])
    assert [detection_box(msg) for msg in truth] == [(1, 2, 10, 12), (2, 3, 10, 12), (3, 4, 10, 12)]
    assert {msg.id for msg in truth} == {'Basketball'}
