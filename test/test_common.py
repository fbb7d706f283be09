"""transt_ros.common: atomic writes, RGB image reading, the ROS environment choices, the seeds, the benchmark
annotation readers (the same for training and evaluation)."""
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from transt_ros.common import files
from transt_ros.common.benchmark_annotations import (
    read_got10k_sequence,
    read_lasot_sequence,
    read_trackingnet_sequence,
    require_dir,
)
from transt_ros.common.box_files import BoxFileError
from transt_ros.common.files import atomic_torch_save, atomic_write_bytes, atomic_write_text
from transt_ros.common.images import ImageReadError, read_image_rgb
from transt_ros.common.ros_environment import (
    MODEL_MANAGER_NODE_NAME,
    PASSIVE_OPENMP,
    TRACKER_NODE_NAME,
    choose_ros_domain_id,
    passive_openmp_env,
)
from transt_ros.common.seeds import HELD_OUT_DEMO_SEED, TRAINING_SCENE_SEED
from transt_ros.evaluation.datasets import read_got10k, read_lasot, read_trackingnet
from transt_ros.training.datasets import AnnotationError, Got10k, Lasot, TrackingNet


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError('refuses to be pickled')


def test_atomic_writes_round_trip_create_folders_and_leave_no_temporary(tmp_path):
    target = tmp_path / 'a' / 'b' / 'out.bin'
    assert atomic_write_bytes(target, b'\x00\x01binary') == target
    assert target.read_bytes() == b'\x00\x01binary'
    atomic_write_text(tmp_path / 'out.txt', 'grüße\n')
    assert (tmp_path / 'out.txt').read_text(encoding='utf-8') == 'grüße\n'
    atomic_torch_save({'w': torch.arange(4.0)}, tmp_path / 'out.pth')
    assert torch.equal(torch.load(tmp_path / 'out.pth', weights_only=True)['w'], torch.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a', 'out.pth', 'out.txt']
    assert [p.name for p in target.parent.iterdir()] == ['out.bin']


@pytest.mark.parametrize('umask', [0o077, 0o022, 0o000])
def test_written_files_have_mode_644_whatever_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        for index, write in enumerate((lambda p: atomic_write_bytes(p, b'x'), lambda p: atomic_write_text(p, 'x'),
                                       lambda p: atomic_torch_save([1], p))):
            path = write(tmp_path / f'file{index}')
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, (path, oct(path.stat().st_mode))
    finally:
        os.umask(previous)


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / 'model.pth'
    atomic_torch_save({'version': 1}, target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match='refuses to be pickled'):
        atomic_torch_save({'version': 2, 'bad': Unpicklable()}, target)
    assert target.read_bytes() == before
    assert torch.load(target, weights_only=True) == {'version': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['model.pth']


def test_a_failed_write_of_a_new_file_creates_nothing(tmp_path):
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / 'new.bin', 'text, not bytes')
    assert list(tmp_path.iterdir()) == []


def test_data_is_fsynced_before_the_file_replaces_the_old_one(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(('fsync', os.readlink(f'/proc/self/fd/{fd}')))
        real_fsync(fd)

    def recording_replace(source, destination):
        events.append(('replace', str(source)))
        real_replace(source, destination)

    monkeypatch.setattr(files.os, 'fsync', recording_fsync)
    monkeypatch.setattr(files.os, 'replace', recording_replace)
    atomic_write_bytes(tmp_path / 'out.bin', b'data')
    assert [kind for kind, _ in events] == ['fsync', 'replace']
    assert events[0][1] == events[1][1]  # the temporary file that was synced is the one renamed


def write_image(path, bgr):
    assert cv2.imwrite(str(path), bgr)
    return path


def test_read_image_rgb_returns_rgb_uint8(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's channel order
    bgr[0, 0] = (0, 0, 255)  # red
    image = read_image_rgb(write_image(tmp_path / 'frame.png', bgr))
    assert image.dtype == np.uint8 and image.shape == (5, 7, 3)
    assert tuple(image[1, 1]) == (0, 0, 200) and tuple(image[0, 0]) == (255, 0, 0)
    grey = read_image_rgb(write_image(tmp_path / 'grey.png', np.full((3, 4), 77, np.uint8)))
    assert grey.shape == (3, 4, 3) and (grey == 77).all()


def test_image_read_errors_name_the_file(tmp_path):
    missing = tmp_path / 'missing.jpg'
    with pytest.raises(ImageReadError, match='missing.jpg: no such image file') as error:
        read_image_rgb(missing)
    assert error.value.missing and error.value.path == missing
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not a jpeg')
    with pytest.raises(ImageReadError, match='corrupt.jpg: cannot decode image') as error:
        read_image_rgb(corrupt)
    assert not error.value.missing and isinstance(error.value, OSError)
    with pytest.raises(ImageReadError, match='no such image file'):
        read_image_rgb(tmp_path)  # a folder is not an image file


def test_domain_id_explicit_then_environment_then_pid():
    assert choose_ros_domain_id(7, {'ROS_DOMAIN_ID': '42'}) == 7
    assert choose_ros_domain_id(0, {'ROS_DOMAIN_ID': '42'}) == 0  # 0 is a choice, not "unset"
    assert choose_ros_domain_id(None, {'ROS_DOMAIN_ID': ' 42 '}) == 42
    assert choose_ros_domain_id(None, {'ROS_DOMAIN_ID': ''}) == 100 + os.getpid() % 100
    assert choose_ros_domain_id(None, {}) == 100 + os.getpid() % 100
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID='abc'"):
        choose_ros_domain_id(None, {'ROS_DOMAIN_ID': 'abc'})


def test_domain_id_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv('ROS_DOMAIN_ID', '61')
    assert choose_ros_domain_id() == 61
    monkeypatch.delenv('ROS_DOMAIN_ID')
    assert 100 <= choose_ros_domain_id() < 200


def test_passive_openmp_is_a_default_the_user_can_override():
    env = {'PATH': '/bin'}
    assert passive_openmp_env(env) is env and env == {'PATH': '/bin', 'OMP_WAIT_POLICY': PASSIVE_OPENMP}
    assert passive_openmp_env({'OMP_WAIT_POLICY': 'ACTIVE'}) == {'OMP_WAIT_POLICY': 'ACTIVE'}


def test_env_script_exports_the_same_openmp_default():
    script = 'unset OMP_WAIT_POLICY; source scripts/env.sh >/dev/null; printf %s "$OMP_WAIT_POLICY"'
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(['bash', '-c', script], cwd=root, capture_output=True, text=True, check=True)
    assert result.stdout == PASSIVE_OPENMP


def test_ros_environment_needs_no_rclpy():
    code = ('import sys, transt_ros.common.ros_environment as m; '
            'assert "rclpy" not in sys.modules, "rclpy imported"; print(m.TRACKER_NODE_NAME)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == TRACKER_NODE_NAME
    assert {TRACKER_NODE_NAME, MODEL_MANAGER_NODE_NAME} == {'transt_tracker', 'transt_model_manager'}


def test_training_scenes_and_the_demo_use_different_seeds():
    from transt_ros.training.synthetic import SyntheticVideos

    assert SyntheticVideos().seed == TRAINING_SCENE_SEED != HELD_OUT_DEMO_SEED


BOXES = '1,2,3,4\n2,3,4,5\n3,4,5,6\n4,5,6,7\n'


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_got10k_absent_is_absence_1_or_cover_0_for_training_and_evaluation(tmp_path, caplog):
    layouts = {  # (absence.label, cover.label) -> absent frames
        'both': (('0\n1\n0\n0\n', '8\n0\n0\n3\n'), [False, True, True, False]),
        'cover': ((None, '0\n1\n8\n0\n'), [True, False, False, True]),
        'absence': (('0,0,1,0', None), [False, False, True, False]),
        'short': ((None, '1\n0\n'), [False, True, False, False]),  # missing cover values: visible
        'none': ((None, None), None),
    }
    for name, ((absence, cover), _) in layouts.items():
        folder = tmp_path / 'val' / name
        write(folder / 'groundtruth.txt', BOXES)
        if absence is not None:
            write(folder / 'absence.label', absence)
        if cover is not None:
            write(folder / 'cover.label', cover)
    training = Got10k(str(tmp_path), split='val')
    evaluation = {sequence.name: sequence for sequence in read_got10k(tmp_path, 'val')}
    for index in range(len(training)):
        name = training.sequence_name(index)
        expected = layouts[name][1]
        annotation = read_got10k_sequence(tmp_path / 'val' / name)
        np.testing.assert_array_equal(annotation.boxes, np.loadtxt(BOXES.splitlines(), delimiter=','))
        if expected is None:
            assert annotation.absent is None and evaluation[name].absent is None
            expected = [False] * 4
        else:
            assert annotation.absent.tolist() == expected and evaluation[name].absent.tolist() == expected
        assert training.sequence_info(index).visible.tolist() == [not absent for absent in expected]
    assert 'cover.label has 2 values for 4 frames' in caplog.text


def test_lasot_flags_are_attributes_that_training_does_not_draw(tmp_path):
    folder = tmp_path / 'cat' / 'cat-1'
    write(folder / 'groundtruth.txt', '1,2,3,4\n0,0,0,0\n3,4,5,6\n4,5,6,7\n')
    write(folder / 'full_occlusion.txt', '0,1,0,0')
    write(folder / 'out_of_view.txt', '0\n0\n0\n1\n')
    (folder / 'img').mkdir()
    annotation = read_lasot_sequence(folder)
    assert annotation.absent is None
    assert {k: v.tolist() for k, v in annotation.attributes.items()} == {
        'full_occlusion': [False, True, False, False], 'out_of_view': [False, False, False, True]}
    (sequence,) = read_lasot(tmp_path)
    assert sequence.absent is None and sequence.attributes.keys() == annotation.attributes.keys()
    np.testing.assert_array_equal(sequence.ground_truth, annotation.boxes)
    assert Lasot(str(tmp_path)).sequence_info(0).visible.tolist() == [True, False, True, False]


def test_trackingnet_boxes_are_the_same_for_training_and_evaluation(tmp_path):
    write(tmp_path / 'TRAIN_0' / 'anno' / 'abc.txt', BOXES)
    annotation = read_trackingnet_sequence(tmp_path / 'TRAIN_0', 'abc')
    assert annotation.absent is None and not annotation.attributes
    (sequence,) = read_trackingnet(tmp_path, 'TRAIN_0')
    np.testing.assert_array_equal(sequence.ground_truth, annotation.boxes)
    np.testing.assert_array_equal(TrackingNet(str(tmp_path)).sequence_info(0).boxes, annotation.boxes)


def test_a_malformed_annotation_names_file_and_line_in_training_and_evaluation(tmp_path):
    folder = tmp_path / 'val' / 'seq'
    write(folder / 'groundtruth.txt', '1,2,3,4\n1,2,3\n')
    with pytest.raises(BoxFileError, match=r'seq/groundtruth.txt, line 2: 3 numbers, expected 4'):
        read_got10k(tmp_path, 'val')
    with pytest.raises(AnnotationError, match=r'seq/groundtruth.txt, line 2: 3 numbers, expected 4') as error:
        Got10k(str(tmp_path), split='val').sequence_info(0)
    assert error.value.reason == 'bad_annotation'
    write(folder / 'groundtruth.txt', BOXES)
    write(folder / 'cover.label', '8\nx\n')
    with pytest.raises(BoxFileError, match=r'cover.label, line 2: not a number'):
        read_got10k_sequence(folder)


def test_require_dir_names_what_is_missing(tmp_path):
    assert require_dir(tmp_path, 'root') == tmp_path
    with pytest.raises(FileNotFoundError, match='GOT-10k root not found: no directory given'):
        require_dir('', 'GOT-10k root')
    with pytest.raises(FileNotFoundError, match=f'LaSOT root not found: {tmp_path / "x"} is not a directory'):
        require_dir(tmp_path / 'x', 'LaSOT root')
