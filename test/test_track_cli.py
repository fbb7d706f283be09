"""``transt-track`` on an image folder and a video file, with a real checkpoint file."""
import cv2
import numpy as np
import pytest
import torch

from transt_ros.checkpoint import save_checkpoint
from transt_ros.model import TransTConfig, build_transt
from transt_ros.tracking.video import main


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    config = TransTConfig(backbone='resnet18', d_model=32, nhead=4, num_fusion_layers=1, dim_feedforward=64,
                          template_size=64, search_size=128)
    return save_checkpoint(tmp_path / 'model.pth', build_transt(config))


def _frames(count=5):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (90, 120, 3), dtype=np.uint8) for _ in range(count)]


def test_tracks_an_image_folder(tmp_path, checkpoint):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for index, frame in enumerate(_frames()):
        cv2.imwrite(str(folder / f'{index:04d}.png'), frame)
    out = tmp_path / 'out'
    assert main([str(folder), '--box', '30,20,40,30', '--checkpoint', str(checkpoint), '--output', str(out)]) == 0
    rows = np.loadtxt(out / 'boxes.txt', delimiter=',')
    assert rows.shape == (5, 5)
    np.testing.assert_allclose(rows[0, :4], [30, 20, 40, 30])
    assert ((rows[:, 4] >= 0) & (rows[:, 4] <= 1)).all()
    capture = cv2.VideoCapture(str(out / 'overlay.mp4'))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_tracks_a_video_file_and_reports_errors(tmp_path, checkpoint, capsys):
    video = tmp_path / 'in.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 10, (120, 90))
    for frame in _frames(4):
        writer.write(frame)
    writer.release()
    out = tmp_path / 'out'
    assert main([str(video), '--box', '30,20,40,30', '--checkpoint', str(checkpoint), '--output', str(out)]) == 0
    assert np.loadtxt(out / 'boxes.txt', delimiter=',').shape == (4, 5)
    assert main([str(video), '--box', '500,500,10,10', '--checkpoint', str(checkpoint), '--output', str(out)]) == 1
    assert 'outside' in capsys.readouterr().err
    assert main([str(tmp_path / 'none.mp4'), '--box', '1,1,5,5', '--checkpoint', str(checkpoint)]) == 1
    assert main([str(video), '--box', '1,1,5,5', '--checkpoint', str(tmp_path / 'missing.pth')]) == 1


def test_an_unreadable_frame_is_an_error_naming_the_file(tmp_path, checkpoint, capsys):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for index, frame in enumerate(_frames(3)):
        cv2.imwrite(str(folder / f'{index:04d}.png'), frame)
    (folder / '0001.png').write_bytes(b'not a png')
    out = tmp_path / 'out'
    assert main([str(folder), '--box', '30,20,40,30', '--checkpoint', str(checkpoint), '--output', str(out)]) == 1
    assert f'{folder / "0001.png"}: cannot decode image' in capsys.readouterr().err
    assert not (out / 'boxes.txt').exists()
