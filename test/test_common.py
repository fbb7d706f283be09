"""transt_ros.common: atomic writes, RGB image reading, the ROS environment choices, the seeds."""
import os
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from transt_ros.common import files
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
