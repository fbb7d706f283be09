"""Dataset readers on tiny fake layouts, the generated dataset, pair processing, skipping."""
import json

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from transt_ros.training.config import load_config
from transt_ros.training.datasets import AnnotationError, Coco, CustomVideos, FrameError, Got10k, Lasot, TrackingNet
from transt_ros.training.processing import CropSettings, PairProcessing
from transt_ros.training.sampler import SKIP_REASONS, PairDataset, StepBatchSampler
from transt_ros.training.synthetic import SyntheticVideos
from transt_ros.training.trainer import build_pairs

BOX = (10, 12, 20, 16)


def write_frame(path, width=64, height=48, box=BOX):
    """A dark frame with a bright rectangle at ``box``."""
    image = np.full((height, width, 3), 30, dtype=np.uint8)
    x, y, w, h = box
    image[y:y + h, x:x + w] = (200, 180, 160)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def box_lines(count, separator=','):
    return '\n'.join(separator.join(str(v) for v in BOX) for _ in range(count)) + '\n'


def make_got10k(root, frames=20, name='GOT-10k_Train_000001'):
    folder = root / 'train' / name
    for i in range(frames):
        write_frame(folder / f'{i + 1:08d}.jpg')
    (folder / 'groundtruth.txt').write_text(box_lines(frames))
    (folder / 'absence.label').write_text('\n'.join(['0'] * (frames - 1) + ['1']) + '\n')
    return folder


def small_processing(template=32, search=64, jitter=True):
    return PairProcessing(CropSettings(2.0, template, 0.0, 0.0),
                          CropSettings(4.0, search, 3.0 if jitter else 0.0, 0.25 if jitter else 0.0))


def test_got10k_reader(tmp_path):
    make_got10k(tmp_path, frames=5)
    dataset = Got10k(str(tmp_path))
    assert len(dataset) == 1 and dataset.sequence_name(0) == 'GOT-10k_Train_000001'
    info = dataset.sequence_info(0)
    assert info.boxes.shape == (5, 4) and info.boxes[0].tolist() == list(BOX)
    assert info.visible.tolist() == [True, True, True, True, False]
    assert dataset.frame(0, 2).shape == (48, 64, 3)
    with pytest.raises(FrameError) as error:
        dataset.frame(0, 9)
    assert error.value.reason == 'missing_frame'


def test_lasot_reader(tmp_path):
    folder = tmp_path / 'cat' / 'cat-2'
    for i in range(4):
        write_frame(folder / 'img' / f'{i + 1:08d}.jpg')
    (folder / 'groundtruth.txt').write_text(box_lines(4))
    (folder / 'full_occlusion.txt').write_text('0,1,0,0')
    (folder / 'out_of_view.txt').write_text('0,0,0,1')
    (tmp_path / 'cat' / 'cat-10' / 'img').mkdir(parents=True)
    (tmp_path / 'cat' / 'cat-10' / 'groundtruth.txt').write_text(box_lines(2))
    dataset = Lasot(str(tmp_path))
    assert [dataset.sequence_name(i) for i in range(len(dataset))] == ['cat-2', 'cat-10']
    assert dataset.sequence_info(0).visible.tolist() == [True, False, True, False]
    assert dataset.frame(0, 3)[20, 20].tolist() == pytest.approx([160, 180, 200], abs=3)  # RGB
    assert len(Lasot(str(tmp_path), classes=['dog'])) == 0


def test_trackingnet_reader(tmp_path):
    for chunk, name in (('TRAIN_0', 'a'), ('TRAIN_1', 'b')):
        for i in range(3):
            write_frame(tmp_path / chunk / 'frames' / name / f'{i}.jpg')
        (tmp_path / chunk / 'anno').mkdir(parents=True, exist_ok=True)
        (tmp_path / chunk / 'anno' / f'{name}.txt').write_text(box_lines(3))
    dataset = TrackingNet(str(tmp_path))
    assert [dataset.sequence_name(i) for i in range(2)] == ['TRAIN_0/a', 'TRAIN_1/b']
    assert dataset.sequence_info(1).visible.all() and dataset.frame(1, 0).shape == (48, 64, 3)
    assert len(TrackingNet(str(tmp_path), sets=[1])) == 1


def test_coco_reader(tmp_path):
    write_frame(tmp_path / 'train2017' / '000001.jpg')
    annotations = {
        'images': [{'id': 1, 'file_name': '000001.jpg', 'width': 64, 'height': 48}],
        'annotations': [{'id': 5, 'image_id': 1, 'bbox': list(BOX), 'area': 320, 'iscrowd': 0, 'category_id': 1},
                        {'id': 6, 'image_id': 1, 'bbox': [0, 0, 5, 5], 'area': 25, 'iscrowd': 1,
                         'category_id': 1}],
        'categories': [{'id': 1, 'name': 'thing'}]}
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'instances_train2017.json').write_text(json.dumps(annotations))
    dataset = Coco(str(tmp_path))
    assert len(dataset) == 1 and not dataset.is_video  # the crowd annotation is left out
    assert dataset.sequence_info(0).boxes.tolist() == [list(BOX)]
    assert dataset.frame(0, 0).shape == (48, 64, 3)


def test_custom_reader_and_its_absent_and_malformed_lines(tmp_path):
    folder = tmp_path / 'my_video'
    for i in range(4):
        write_frame(folder / 'frames' / f'{i:04d}.png')
    (folder / 'boxes.txt').write_text('10 12 20 16\n\nnan,nan,nan,nan\n1,2,-3,4\n10\t12\t20\t16\n\n')
    dataset = CustomVideos(str(tmp_path))
    info = dataset.sequence_info(0)
    assert info.visible.tolist() == [True, False, False, False, True]  # the empty line at the end is no frame
    assert info.num_invalid_boxes == 0  # empty/NaN lines and w/h <= 0 mean "absent"
    assert dataset.frame(0, 3).shape == (48, 64, 3)
    with pytest.raises(FrameError, match='no frame 4'):
        dataset.frame(0, 4)
    (folder / 'boxes.txt').write_text('10 12 20 16\n1,2,three,4\n')  # malformed: the video is skipped
    with pytest.raises(AnnotationError, match=r'boxes.txt, line 2: not numbers') as error:
        dataset.sequence_info(0)
    assert error.value.reason == 'bad_annotation'


def test_synthetic_videos_are_deterministic_and_boxes_match_the_frames():
    first, again, other = SyntheticVideos(num_videos=3, seed=1), SyntheticVideos(num_videos=3, seed=1), \
        SyntheticVideos(num_videos=3, seed=2)
    assert np.array_equal(first.frame(2, 17), again.frame(2, 17))
    assert np.array_equal(first.sequence_info(2).boxes, again.sequence_info(2).boxes)
    assert not np.array_equal(first.frame(2, 17), other.frame(2, 17))
    boxes = first.sequence_info(0).boxes
    assert boxes.shape == (100, 4) and first.frame(0, 0).shape == (240, 320, 3)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 320).all()
    assert (boxes[:, 1] + boxes[:, 3] <= 240).all()
    assert np.abs(np.diff(boxes[:, 0])).max() < 20 and np.ptp(boxes[:, 2]) > 0  # it moves and scales


def test_crops_and_boxes_agree():
    """The box returned for a crop covers exactly the bright rectangle seen in that crop."""
    image = np.zeros((200, 240, 3), dtype=np.uint8)
    box = np.array([100.0, 90.0, 40.0, 20.0])
    image[90:110, 100:140] = 255
    processing = PairProcessing(CropSettings(2.0, 64, 0.0, 0.0), CropSettings(4.0, 128, 3.0, 0.25),
                                brightness_jitter=0.0, grayscale_probability=0.0)
    side = np.sqrt(40 * 20) * 2
    for seed in range(5):
        sample = processing(image, box, image, box, np.random.default_rng(seed))
        template_box = sample['template_box'].numpy()
        assert template_box == pytest.approx([0.5, 0.5, 40 / side, 20 / side], abs=1e-6)
        for name, size in (('template', 64), ('search', 128)):
            cx, cy, w, h = sample[f'{name}_box'].numpy() * size
            bright = (sample[name].numpy()[0] > 1.0)  # normalised white > 1, black < -2
            rows, cols = np.nonzero(bright)
            assert cols.min() == pytest.approx(cx - w / 2, abs=1.0)
            assert cols.max() + 1 == pytest.approx(cx + w / 2, abs=1.0)
            assert rows.min() == pytest.approx(cy - h / 2, abs=1.0)
            assert rows.max() + 1 == pytest.approx(cy + h / 2, abs=1.0)


def test_search_jitter_keeps_the_target_centre_in_the_crop():
    image = np.zeros((300, 300, 3), dtype=np.uint8)
    processing = small_processing()
    centres = []
    for seed in range(200):
        sample = processing(image, [140, 140, 20, 20], image, [140, 140, 20, 20], np.random.default_rng(seed))
        centres.append(sample['search_box'][:2].numpy())
    centres = np.array(centres)
    assert ((centres > 0) & (centres < 1)).all()
    assert centres.std() > 0.1  # centre jitter 3: offsets up to 3/8 of the crop


def test_corrupt_samples_are_skipped_and_counted(tmp_path):
    folder = make_got10k(tmp_path, frames=20)
    (folder / '00000003.jpg').write_bytes(b'not a jpeg')           # unreadable image
    (folder / '00000005.jpg').unlink()                              # missing frame
    lines = box_lines(20).splitlines()
    lines[7] = 'nan,nan,nan,nan'                                    # invalid box, not flagged absent
    lines[8] = '1,2,-5,4'                                           # non-positive width
    (folder / 'groundtruth.txt').write_text('\n'.join(lines) + '\n')
    pairs = PairDataset([Got10k(str(tmp_path))], [1.0], small_processing(), samples_per_epoch=400, max_gap=100)
    skips = np.zeros(len(SKIP_REASONS), dtype=np.int64)
    for index in range(120):
        sample = pairs[index]
        assert torch.isfinite(sample['search_box']).all() and torch.isfinite(sample['search']).all()
        skips += sample['skips'].numpy()
    counts = dict(zip(SKIP_REASONS, skips.tolist()))
    assert counts['invalid_box'] == 2  # counted once, when the sequence is first read
    assert counts['unreadable_image'] > 0 and counts['missing_frame'] > 0
    assert counts['degenerate_crop'] == 0


def test_a_source_without_usable_samples_fails_clearly(tmp_path):
    folder = make_got10k(tmp_path, frames=20)
    (folder / 'groundtruth.txt').write_text('garbage\n' * 20)
    pairs = PairDataset([Got10k(str(tmp_path))], [1.0], small_processing(), samples_per_epoch=10,
                        max_attempts=10)
    with pytest.raises(RuntimeError, match='no usable training pair after 10 draws'):
        pairs[0]


def test_batches_do_not_depend_on_workers_and_ranks_do_not_overlap():
    config = load_config(None, ['model.template_size=64', 'model.search_size=128', 'data.samples_per_epoch=16',
                                'data.datasets.0.num_videos=20'])
    pairs = build_pairs(config)

    def batches(workers, rank=0):
        sampler = StepBatchSampler(16, 2, 1, 5, rank=rank, world_size=2)
        loader = DataLoader(pairs, batch_sampler=sampler, num_workers=workers)
        return list(sampler), [b['search'] for b in loader]

    indices, serial = batches(0)
    _, parallel = batches(2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    other_indices, _ = batches(0, rank=1)
    assert indices[0] == [4, 5] and indices[-1] == [16, 17]  # 4 steps per epoch: step 4 opens epoch 1
    assert not set(sum(indices, [])) & set(sum(other_indices, []))
