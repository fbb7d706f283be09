"""Evaluation on what users bring (issue 11), checked against files that independent tools write:
bags written by ``rosbags`` (compressed per message / per file, sqlite3 and MCAP, metadata versions
4 .. 9), ground truth off by a few ms, box files beside a bag, the got10k toolkit's own GOT-10k
report, resumable runs, errors that name the file, the ROS domain id."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')
pytest.importorskip('vision_msgs.msg')
rosbags = pytest.importorskip('rosbags')
pytestmark = pytest.mark.ros

from rosbags.rosbag2 import Reader, Writer  # noqa: E402
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402

from transt_ros.bags import BagError, open_bag  # noqa: E402
from transt_ros.common.box_files import BoxFileError, read_box_file  # noqa: E402
from transt_ros.common.ros_environment import choose_ros_domain_id  # noqa: E402
from transt_ros.common.stamps import ns_to_sec_nanosec  # noqa: E402
from transt_ros.evaluation.datasets import no_sequence_hint, read_got10k, read_lasot  # noqa: E402
from transt_ros.evaluation.make_bag import synthetic_sources, write_sequences_bag  # noqa: E402
from transt_ros.evaluation.tracking_bag import image_to_rgb_array, read_tracking_bag  # noqa: E402

from .ros_helpers import ros_env  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
VISION_TYPES = ('Point2D', 'Pose2D', 'BoundingBox2D', 'ObjectHypothesis', 'ObjectHypothesisWithPose', 'Detection2D')
START_NS = 1_750_000_000_000_000_000
PERIOD_NS = 40_000_000  # 25 fps


def _typestore():
    """Humble's types plus vision_msgs from the installed .msg files (rosbags does not ship them)."""
    from ament_index_python.packages import get_package_share_directory

    store = get_typestore(Stores.ROS2_HUMBLE)
    share = Path(get_package_share_directory('vision_msgs')) / 'msg'
    types = {}
    for name in VISION_TYPES:
        types.update(get_types_from_msg((share / f'{name}.msg').read_text(), f'vision_msgs/msg/{name}'))
    store.register(types)
    return store


def _frames(count=6, seed=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, 24, 32, 3), dtype=np.uint8)


BOXES = np.array([[2, 3, 10, 8], [3, 3, 10, 8], [4, 4, 10, 8], [5, 5, 10, 8], [6, 5, 10, 8], [7, 6, 10, 8]], float)


def write_rosbags_bag(path: Path, storage=StoragePlugin.SQLITE3, mode=CompressionMode.NONE, version=9,
                      truth_offset_ns=0, ground_truth=True, frames=None):
    """A tracking bag written by rosbags: rgb8 images and Detection2D ground truth (``truth_offset_ns`` late)."""
    store = _typestore()
    frames = _frames() if frames is None else frames
    Image = store.types['sensor_msgs/msg/Image']
    Header = store.types['std_msgs/msg/Header']
    Time = store.types['builtin_interfaces/msg/Time']
    writer = Writer(path, version=version, storage_plugin=storage)
    if mode != CompressionMode.NONE:
        writer.set_compression(mode, CompressionFormat.ZSTD)
    with writer:
        images = writer.add_connection('/camera/image_raw', 'sensor_msgs/msg/Image', typestore=store)
        truth = writer.add_connection('/ground_truth', 'vision_msgs/msg/Detection2D', typestore=store) \
            if ground_truth else None
        for index, rgb in enumerate(frames):
            stamp = START_NS + index * PERIOD_NS
            header = Header(stamp=Time(*ns_to_sec_nanosec(stamp)), frame_id='camera')
            image = Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', is_bigendian=0,
                          step=rgb.shape[1] * 3, data=rgb.reshape(-1))
            writer.write(images, stamp, store.serialize_cdr(image, 'sensor_msgs/msg/Image'))
            if truth is None:
                continue
            truth_stamp = stamp + truth_offset_ns
            x, y, w, h = BOXES[index]
            detection = store.types['vision_msgs/msg/Detection2D'](
                header=Header(stamp=Time(*ns_to_sec_nanosec(truth_stamp)), frame_id='camera'),
                results=[], bbox=store.types['vision_msgs/msg/BoundingBox2D'](
                    center=store.types['vision_msgs/msg/Pose2D'](
                        position=store.types['vision_msgs/msg/Point2D'](x=x + w / 2, y=y + h / 2), theta=0.0),
                    size_x=w, size_y=h), id='walk')
            writer.write(truth, truth_stamp, store.serialize_cdr(detection, 'vision_msgs/msg/Detection2D'))
    return path


CASES = [(StoragePlugin.SQLITE3, CompressionMode.MESSAGE, 9), (StoragePlugin.SQLITE3, CompressionMode.FILE, 9),
         (StoragePlugin.MCAP, CompressionMode.FILE, 8), (StoragePlugin.MCAP, CompressionMode.MESSAGE, 8),
         (StoragePlugin.SQLITE3, CompressionMode.NONE, 8), (StoragePlugin.MCAP, CompressionMode.NONE, 9)]


@pytest.mark.parametrize(('storage', 'mode', 'version'), CASES, ids=lambda value: str(value))
def test_bags_written_by_rosbags_read_compressed_or_not(tmp_path, storage, mode, version):
    bag = write_rosbags_bag(tmp_path / 'walk', storage, mode, version)
    metadata = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    if mode == CompressionMode.FILE:
        assert metadata['relative_file_paths'][0].endswith('.zstd')
    tracking = read_tracking_bag(bag)
    (sequence,) = tracking.sequences
    assert sequence.name == 'walk' and tracking.frames_with_ground_truth == 6
    np.testing.assert_array_equal(sequence.ground_truth, BOXES)
    frames = np.stack([rgb for _, _, rgb in tracking.frames()])
    np.testing.assert_array_equal(frames, _frames())


@pytest.mark.parametrize('version', [4, 5, 6, 7])
def test_older_metadata_versions_as_rosbag2_wrote_them(tmp_path, version):
    """Fields a version lacks are absent; older rosbag2 prefixed relative_file_paths with the bag's name."""
    bag = write_rosbags_bag(tmp_path / 'walk', StoragePlugin.SQLITE3, CompressionMode.MESSAGE, 8)
    document = yaml.safe_load((bag / 'metadata.yaml').read_text())
    info = document['rosbag2_bagfile_information']
    info['version'] = version
    del info['ros_distro']
    if version < 7:
        for topic in info['topics_with_message_count']:
            del topic['topic_metadata']['type_description_hash']
    if version < 6:
        del info['custom_data']
    if version < 5:
        del info['files']
        info['relative_file_paths'] = [f'walk/{name}' for name in info['relative_file_paths']]
    (bag / 'metadata.yaml').write_text(yaml.safe_dump(document))
    renamed = tmp_path / 'renamed'
    bag.rename(renamed)
    tracking = read_tracking_bag(renamed)
    assert tracking.frames_with_ground_truth == 6 and tracking.sequences[0].name == 'walk'


@pytest.mark.parametrize(('storage', 'mode'), [('sqlite3', 'message'), ('sqlite3', 'file'), ('mcap', 'file'),
                                               ('mcap', 'message')])
def test_make_bag_compression_reads_in_rosbags(tmp_path, storage, mode):
    frames = _frames()
    from transt_ros.evaluation.make_bag import SequenceSource

    source = SequenceSource('walk', BOXES, lambda index: frames[index])
    directory = write_sequences_bag(tmp_path / 'bag', [source], 25.0, storage=storage, compression_mode=mode)
    metadata = yaml.safe_load((directory / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert metadata['compression_mode'] == mode.upper() and metadata['compression_format'] == 'zstd'
    store = _typestore()
    with Reader(directory) as reader:
        connection = next(c for c in reader.connections if c.topic == '/camera/image_raw')
        images = [store.deserialize_cdr(data, connection.msgtype)
                  for _, _, data in reader.messages(connections=[connection])]
    np.testing.assert_array_equal(np.stack([image.data.reshape(24, 32, 3) for image in images]), frames)
    with open_bag(directory) as reader:
        assert [image_to_rgb_array(msg).shape for _, msg in reader.decoded(['/camera/image_raw'])] == [(24, 32, 3)] * 6


def test_ground_truth_a_few_ms_off_still_matches(tmp_path, caplog):
    bag = write_rosbags_bag(tmp_path / 'late', truth_offset_ns=1_000_000)
    tracking = read_tracking_bag(bag)
    assert tracking.frames_with_ground_truth == 6 and tracking.stamp_tolerance_ns == PERIOD_NS // 2
    np.testing.assert_array_equal(tracking.sequences[0].ground_truth, BOXES)
    with pytest.raises(ValueError, match=r'none of the 6 ground-truth stamps .*closest: 1\.000 ms.*--stamp-tolerance'):
        read_tracking_bag(bag, stamp_tolerance_s=0.0005)


def test_ground_truth_file_beside_a_bag_without_a_ground_truth_topic(tmp_path):
    bag = write_rosbags_bag(tmp_path / 'plain', ground_truth=False)
    with pytest.raises(ValueError, match='no ground truth topic /ground_truth.*--ground-truth'):
        read_tracking_bag(bag)
    np.savetxt(bag / 'groundtruth.txt', BOXES, fmt='%g', delimiter=',')
    tracking = read_tracking_bag(bag)
    assert tracking.ground_truth_source == str(bag / 'groundtruth.txt')
    np.testing.assert_array_equal(tracking.sequences[0].ground_truth, BOXES)
    short = tmp_path / 'short.txt'
    np.savetxt(short, BOXES[:4], fmt='%g', delimiter='\t')
    with pytest.raises(ValueError, match='4 boxes for the 6 images'):
        read_tracking_bag(bag, ground_truth_file=short)


def test_box_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / 'groundtruth.txt'
    path.write_text('1,2,3,4\n1,2,3\n')
    with pytest.raises(BoxFileError, match=rf'{path}, line 2: 3 numbers, expected 4'):
        read_box_file(path)
    path.write_text('1,2,3,4\n\nNaN,NaN,NaN,NaN\nx,1,2,3\n')
    with pytest.raises(BoxFileError, match='line 4: not numbers'):
        read_box_file(path)
    path.write_text('1,2,3,4\n\nNaN,NaN,NaN,NaN\n\n\n')
    boxes = read_box_file(path)  # an empty line inside is a NaN row, empty lines at the end are no rows
    assert boxes.shape == (3, 4) and np.isnan(boxes[1:]).all()


def test_sequence_folder_hints_and_skipped_folders(tmp_path, caplog):
    sequence = tmp_path / 'val' / 'GOT-10k_Val_000001'
    sequence.mkdir(parents=True)
    np.savetxt(sequence / 'groundtruth.txt', BOXES, delimiter=',')
    (tmp_path / 'val' / 'GOT-10k_Val_000002').mkdir()
    sequences = read_got10k(tmp_path)
    assert [s.name for s in sequences] == ['GOT-10k_Val_000001']
    assert sequences.skipped == (tmp_path / 'val' / 'GOT-10k_Val_000002',)  # returned, no module state
    assert 'skipped 1 folder(s) without groundtruth.txt: GOT-10k_Val_000002' in caplog.text
    assert read_got10k(tmp_path / 'val', 'GOT-10k_Val_000002').skipped == ()
    hint = f'one sequence folder: pass the data set root instead, e.g. {tmp_path}'
    with pytest.raises(FileNotFoundError, match=hint):
        read_got10k(sequence)
    lasot = tmp_path / 'lasot' / 'cat' / 'cat-1'
    (lasot / 'img').mkdir(parents=True)
    np.savetxt(lasot / 'groundtruth.txt', BOXES, delimiter=',')
    assert read_lasot(lasot) == []
    assert f'e.g. {tmp_path / "lasot"}' in no_sequence_hint('lasot', lasot)
    assert no_sequence_hint('got10k', tmp_path, 'val', sequences.skipped).endswith(
        '(1 folder(s) skipped for lack of ground truth)')


def test_domain_id_honours_ros_domain_id():
    assert choose_ros_domain_id(7, {'ROS_DOMAIN_ID': '22'}) == 7
    assert choose_ros_domain_id(None, {'ROS_DOMAIN_ID': '22'}) == 22
    assert 100 <= choose_ros_domain_id(None, {}) < 200


def _eval(*args, timeout=300):
    return subprocess.run([sys.executable, '-m', 'transt_ros.evaluation.cli', *map(str, args)], env=ros_env(),
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout)


def test_arguments_are_checked_before_anything_runs(light_checkpoint, tmp_path):
    bag = write_sequences_bag(tmp_path / 'bag', synthetic_sources(1, 4, 64, 48), 30.0)
    completed = _eval('bag', bag, '--checkpoint', light_checkpoint, '--out', tmp_path / 'out', '--reference', 'kfc')
    assert completed.returncode == 2 and "unknown reference tracker(s) kfc" in completed.stderr
    assert not (tmp_path / 'out').exists()
    completed = _eval('bag', bag, '--checkpoint', tmp_path / 'missing.pth', '--out', tmp_path / 'out')
    assert completed.returncode == 2 and 'missing.pth: no such file' in completed.stderr


def test_runs_resume_and_overwrite(light_checkpoint, tmp_path):
    bag = write_sequences_bag(tmp_path / 'bag', synthetic_sources(2, 5, 96, 72), 30.0)
    out = tmp_path / 'out'
    first = _eval('bag', bag, '--checkpoint', light_checkpoint, '--out', out, '--reference', 'kcf', '--quiet',
                  '--no-video')
    assert first.returncode == 0, first.stderr[-2000:]
    names = [s.name for s in read_tracking_bag(bag).sequences]
    results = out / 'results' / 'transt'
    boxes = {name: (results / f'{name}.txt').read_text() for name in names}
    assert all((results / 'times' / f'{name}_time.txt').is_file() for name in names)
    (results / f'{names[1]}.txt').unlink()  # as if interrupted during the second sequence
    second = _eval('bag', bag, '--checkpoint', light_checkpoint, '--out', out, '--reference', 'kcf', '--quiet',
                   '--no-video')
    assert second.returncode == 0, second.stderr[-2000:]
    assert {name: (results / f'{name}.txt').read_text() for name in names} == boxes
    document = json.loads((out / 'metrics.json').read_text())
    assert document['metadata']['resumed_from_disk'] == ['kcf', 'transt']
    other = write_sequences_bag(tmp_path / 'other', synthetic_sources(1, 5, 96, 72, seed=9), 30.0)
    refused = _eval('bag', other, '--checkpoint', light_checkpoint, '--out', out, '--quiet', '--no-video')
    assert refused.returncode == 1 and 'other settings' in refused.stderr and '--overwrite' in refused.stderr
    redone = _eval('bag', other, '--checkpoint', light_checkpoint, '--out', out, '--quiet', '--no-video',
                   '--overwrite')
    assert redone.returncode == 0, redone.stderr[-2000:]


def _got10k_val(root: Path) -> list[str]:
    """A GOT-10k val split as the toolkit reads it, ground truth leaving the image, absent frames."""
    import cv2

    names = []
    for index, source in enumerate(synthetic_sources(2, 8, 96, 72, seed=17)):
        name = f'GOT-10k_Val_{index + 1:06d}'
        folder = root / 'val' / name
        folder.mkdir(parents=True)
        for frame in range(len(source)):
            cv2.imwrite(str(folder / f'{frame + 1:08d}.jpg'), cv2.cvtColor(source.frame(frame), cv2.COLOR_RGB2BGR))
        boxes = source.boxes.copy()
        boxes[3:6, 0] -= 30  # leaves the image on the left
        boxes[3:6, 2] += 6
        np.savetxt(folder / 'groundtruth.txt', boxes, fmt='%.4f', delimiter=',')
        cover = np.full(len(source), 8)
        cover[6] = 0 if index == 1 else 8
        np.savetxt(folder / 'cover.label', cover, fmt='%d')
        np.savetxt(folder / 'absence.label', (cover == 0).astype(int), fmt='%d')
        np.savetxt(folder / 'cut_by_image.label', np.zeros(len(source), int), fmt='%d')
        (folder / 'meta_info.ini').write_text('[METAINFO]\nresolution: (96, 72)\n')
        names.append(name)
    (root / 'val' / 'list.txt').write_text('\n'.join(names) + '\n')
    return names


def test_got10k_ao_sr_and_speed_equal_the_toolkit(light_checkpoint, tmp_path, monkeypatch):
    got10k_experiments = pytest.importorskip('got10k.experiments')
    root = tmp_path / 'got10k'
    _got10k_val(root)
    out = tmp_path / 'out'
    completed = _eval('dataset', 'got10k', root, '--split', 'val', '--checkpoint', light_checkpoint, '--out', out,
                      '--reference', 'kcf', '--quiet')
    assert completed.returncode == 0, completed.stderr[-3000:]
    document = json.loads((out / 'metrics.json').read_text())
    toolkit_results = tmp_path / 'toolkit' / 'GOT-10k'
    toolkit_results.parent.mkdir()
    shutil.copytree(out / 'results', toolkit_results)
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    monkeypatch.chdir(tmp_path)
    experiment = got10k_experiments.ExperimentGOT10k(str(root), 'val', result_dir=str(tmp_path / 'toolkit'),
                                                     report_dir=str(tmp_path / 'reports'))
    performance = experiment.report(['transt', 'kcf'])
    for tracker in ('transt', 'kcf'):
        ours, theirs = document['trackers'][tracker], performance[tracker]['overall']
        assert ours['average_overlap_frame_weighted'] == pytest.approx(theirs['ao'], abs=1e-4), tracker
        assert ours['success_rate_0_5_frame_weighted'] == pytest.approx(theirs['sr'], abs=1e-4), tracker
        assert ours['speed_fps'] == pytest.approx(theirs['speed_fps'], rel=1e-3), tracker
    table = (out / 'comparison.md').read_text()
    assert f"{document['trackers']['transt']['average_overlap_frame_weighted']:.3f}" in table


def test_make_bag_cli_rejects_bad_input_with_the_file_named(tmp_path):
    from transt_ros.evaluation.make_bag import main

    folder = tmp_path / 'walk' / 'img'
    folder.mkdir(parents=True)
    import cv2

    cv2.imwrite(str(folder / '0001.png'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'gt.txt').write_text('1,2,3\n')
    assert main([str(tmp_path / 'out'), '--images', str(folder), '--boxes', str(tmp_path / 'gt.txt')]) == 1
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').iterdir())


def test_open_bag_error_for_unknown_compression(tmp_path):
    bag = write_rosbags_bag(tmp_path / 'walk', StoragePlugin.SQLITE3, CompressionMode.MESSAGE)
    document = yaml.safe_load((bag / 'metadata.yaml').read_text())
    document['rosbag2_bagfile_information']['compression_format'] = 'lz4'
    (bag / 'metadata.yaml').write_text(yaml.safe_dump(document))
    with pytest.raises(BagError, match="unsupported rosbag2 compression format 'lz4'"):
        open_bag(bag)
    assert os.path.isdir(bag)
