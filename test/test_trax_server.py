"""``transt-trax`` driven by the TraX package's own client, as the VOT toolkit drives it; the VOT
layout reader (``transt-eval dataset vot``) and writer (``transt-eval convert-vot``)."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

trax = pytest.importorskip('trax', reason='vot-trax is not installed (requirements/lock.txt)')
from trax.client import Client  # noqa: E402

from transt_ros.common.box_files import BoxFileError  # noqa: E402
from transt_ros.evaluation.datasets import read_dataset  # noqa: E402
from transt_ros.evaluation.offline_run import transt_tracker  # noqa: E402
from transt_ros.evaluation.trax_messages import TraxRequestError, box_of  # noqa: E402
from transt_ros.evaluation.vot_convert import convert_dataset  # noqa: E402
from transt_ros.evaluation.vot_layout import bounding_rectangle  # noqa: E402

SESSION_TIMEOUT_S = 60.0
SQUARE = 28
FRAME_SIZE = 128


def trax_command() -> list[str]:
    """The installed console script when there is one (what the toolkit's trackers.ini runs), else the module."""
    script = Path(sys.executable).parent / 'transt-trax'
    return [str(script)] if script.is_file() else [sys.executable, '-m', 'transt_ros.evaluation.trax_server']


def moving_square(count: int, seed: int = 3) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:
    """RGB frames of a textured square drifting over noise, and its boxes."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (SQUARE, SQUARE, 3), dtype=np.uint8)
    frames, boxes = [], []
    for index in range(count):
        frame = rng.integers(0, 70, (FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
        x, y = 20 + 3 * index, 30 + 2 * index
        frame[y:y + SQUARE, x:x + SQUARE] = texture
        frames.append(frame)
        boxes.append((x, y, SQUARE, SQUARE))
    return frames, boxes


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """``rgb`` as ``path`` (PNG, or JPEG by the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def over_the_wire(box) -> tuple[float, ...]:
    """A box as a TraX rectangle carries it: float32, written with 4 decimals, read back as float32."""
    return tuple(float(np.float32(float(f'{float(np.float32(value)):.4f}'))) for value in box)


@contextlib.contextmanager
def trax_process(*args: str):
    """``transt-trax`` started as the toolkit starts it (TraX over stdin / stdout); killed by a watchdog
    after :data:`SESSION_TIMEOUT_S` so that a hanging server fails the test instead of blocking it."""
    process = subprocess.Popen([*trax_command(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    watchdog = threading.Timer(SESSION_TIMEOUT_S, process.kill)
    watchdog.start()
    try:
        yield process
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
        process.communicate()


def connect(process: subprocess.Popen) -> Client:
    return Client(stream=(process.stdin.fileno(), process.stdout.fileno()), log=lambda text: None)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """Exit status and stderr of a server whose session ended."""
    _, stderr = process.communicate(timeout=SESSION_TIMEOUT_S)
    return process.returncode, stderr.decode(errors='replace')


def answer(objects) -> tuple[tuple[float, ...], float]:
    (region, properties), = objects
    return tuple(region.bounds()), float(properties['confidence'])


def path_image(path: Path):
    return {'color': trax.FileImage.create(str(path))}


@pytest.fixture(scope='module')
def square_sequence(tmp_path_factory):
    frames, boxes = moving_square(10)
    folder = tmp_path_factory.mktemp('square')
    paths = [write_png(folder / f'{index + 1:08d}.png', frame) for index, frame in enumerate(frames)]
    return [cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB) for path in paths], paths, boxes


def test_the_server_answers_the_trackers_own_boxes_and_confidences(square_sequence, light_checkpoint):
    frames, paths, boxes = square_sequence
    tracker = transt_tracker(light_checkpoint, 'cpu')
    tracker.initialize(frames[0], np.array(boxes[0], dtype=float))
    expected = [tracker.track(frame) for frame in frames[1:]]
    with trax_process('--checkpoint', str(light_checkpoint), '--device', 'cpu') as process:
        client = connect(process)
        assert client.region_formats == ['rectangle', 'polygon']
        assert set(client.image_formats) == {'path', 'memory', 'buffer'}
        initial, _ = client.initialize(path_image(paths[0]), [(trax.Rectangle.create(*boxes[0]), {})], {})
        assert answer(initial) == (boxes[0], 1.0)
        for path, result in zip(paths[1:], expected):
            box, confidence = answer(client.frame(path_image(path), {}, [])[0])
            assert box == over_the_wire(result.box)
            assert confidence == result.score
        client.quit()
        assert finish(process) == (0, '')


def test_polygons_and_in_memory_images(square_sequence, light_checkpoint):
    frames, paths, boxes = square_sequence
    x, y, w, h = boxes[0]
    tilted = [(x + 2, y), (x + w, y + 3), (x + w - 1, y + h), (x, y + h - 2)]  # bounding rectangle: boxes[0]
    assert tuple(bounding_rectangle(tilted)) == tuple(box_of(trax.Polygon.create(tilted))) == boxes[0]
    tracker = transt_tracker(light_checkpoint, 'cpu')
    tracker.initialize(frames[0], np.array(boxes[0], dtype=float))
    expected = [tracker.track(frame).box for frame in frames[1:4]]
    encoded = cv2.imencode('.png', cv2.cvtColor(frames[3], cv2.COLOR_RGB2BGR))[1].tobytes()
    with trax_process('--checkpoint', str(light_checkpoint)) as process:
        client = connect(process)
        initial, _ = client.initialize({'color': trax.MemoryImage.create(frames[0])},
                                       [(trax.Polygon.create(tilted), {})], {})
        assert answer(initial)[0] == boxes[0]
        images = [{'color': trax.MemoryImage.create(frames[1])}, path_image(paths[2]),
                  {'color': trax.BufferImage.create(encoded)}]
        for image, box in zip(images, expected):
            assert answer(client.frame(image, {}, [])[0])[0] == over_the_wire(box)
        client.quit()
        assert finish(process)[0] == 0


def test_an_unreadable_image_ends_the_session_naming_the_file(square_sequence, light_checkpoint, tmp_path):
    _, paths, boxes = square_sequence
    broken = tmp_path / 'broken.png'
    broken.write_bytes(b'not a png')
    with trax_process('--checkpoint', str(light_checkpoint)) as process:
        client = connect(process)
        client.initialize(path_image(paths[0]), [(trax.Rectangle.create(*boxes[0]), {})], {})
        with pytest.raises(trax.TraxException, match='broken.png: cannot decode image'):
            client.frame(path_image(broken), {}, [])
        status, stderr = finish(process)
    assert status == 1
    assert f'{broken}: cannot decode image' in stderr


def test_a_bad_checkpoint_ends_the_process_before_the_handshake(tmp_path):
    checkpoint = tmp_path / 'broken.pth'
    checkpoint.write_bytes(b'not a checkpoint')
    with trax_process('--checkpoint', str(checkpoint)) as process:
        with pytest.raises(trax.TraxException, match='Unable to connect'):
            connect(process)
        status, stderr = finish(process)
    assert status == 1
    assert f'transt-trax: error: cannot load the tracker: {checkpoint}: truncated or corrupt checkpoint' in stderr


def test_masks_are_not_taken_as_boxes():
    with pytest.raises(TraxRequestError, match='unsupported region'):
        box_of(trax.Mask.create(np.ones((4, 4), np.uint8)))


# ---------------------------------------------------------------------------------- the VOT layout

def write_vot_sequence(folder: Path, frames, region_lines: list[str], sequence_file: str | None) -> None:
    for index, frame in enumerate(frames):
        write_png(folder / 'color' / f'{index + 1:08d}.png', frame)
    (folder / 'groundtruth.txt').write_text(''.join(line + '\n' for line in region_lines))
    if sequence_file is not None:
        (folder / 'sequence').write_text(sequence_file)


def test_the_vot_reader_takes_rectangles_polygons_and_unannotated_frames(tmp_path):
    frames, _ = moving_square(4)
    write_vot_sequence(tmp_path / 'rects', frames, ['1,2,30,40', '2.5,3,30,40', 'nan,nan,nan,nan', '0'],
                       'channels.color=color/%08d.png\nfps=30\n')
    write_vot_sequence(tmp_path / 'polygons', frames[:3], ['10,20,50,20,50,60,10,60', '12,22,40,30,20,70,5,40'],
                       'channels.color=color/%08d.png\n')
    write_vot_sequence(tmp_path / 'not-listed', frames[:2], ['1,1,5,5', '1,1,5,5'], None)
    (tmp_path / 'list.txt').write_text('rects\npolygons\n')
    sequences = {sequence.name: sequence for sequence in read_dataset('vot', tmp_path)}
    assert list(sequences) == ['rects', 'polygons']
    rects, polygons = sequences['rects'], sequences['polygons']
    np.testing.assert_array_equal(rects.ground_truth[:2], [[1, 2, 30, 40], [2.5, 3, 30, 40]])
    assert np.isnan(rects.ground_truth[2:]).all()
    assert rects.frame_paths[3] == tmp_path / 'rects' / 'color' / '00000004.png' and rects.missing_frames == ()
    np.testing.assert_array_equal(polygons.ground_truth, [[10, 20, 40, 40], [5, 22, 35, 48], [np.nan] * 4])


def test_the_vot_reader_names_the_line_of_a_mask(tmp_path):
    frames, _ = moving_square(2)
    write_vot_sequence(tmp_path / 'masked', frames, ['1,1,5,5', 'm1,1,2,2,0,4'], None)
    with pytest.raises(BoxFileError, match=r'masked/groundtruth.txt, line 2: a mask region'):
        read_dataset('vot', tmp_path)


def test_a_converted_data_set_reads_back_the_same(tmp_path):
    frames, boxes = moving_square(5)
    otb = tmp_path / 'otb' / 'Square'
    for index, frame in enumerate(frames):
        write_png(otb / 'img' / f'{index + 1:04d}.jpg', frame)
    (otb / 'groundtruth_rect.txt').write_text(''.join(','.join(map(str, box)) + '\n' for box in boxes))
    assert convert_dataset('otb', tmp_path / 'otb', tmp_path / 'vot') == ['Square']
    (converted,) = read_dataset('vot', tmp_path / 'vot')
    np.testing.assert_array_equal(converted.ground_truth, boxes)
    assert [path.read_bytes() for path in converted.frame_paths] == \
        [path.read_bytes() for path in sorted((otb / 'img').glob('*.jpg'))]
    (otb / 'img' / '0003.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='0003.jpg is missing'):
        convert_dataset('otb', tmp_path / 'otb', tmp_path / 'vot-again')
