"""``transt-track``: track one target through a video file or an image folder (no ROS).

Writes ``boxes.txt`` (x,y,w,h,score per frame, the first row is the given box) and an
overlay video to ``--output``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..checkpoint import CheckpointError, load_model
from ..common.images import read_image_rgb
from ..runtimes.backends import add_backend_arguments
from .tracker import Tracker, TrackerInputError

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp'}
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / 'data' / 'demo_model.pth'


def read_frames(source: Path):
    """Yield RGB uint8 frames of a video file, or of the images of a folder in name order."""
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f'{source}: no images ({", ".join(sorted(IMAGE_SUFFIXES))})')
        for path in paths:
            yield read_image_rgb(path)  # ImageReadError is an OSError naming the file
        return
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise FileNotFoundError(f'{source}: cannot open video')
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def parse_box(text: str) -> tuple[float, float, float, float]:
    values = [float(v) for v in text.replace(' ', '').split(',')]
    if len(values) != 4:
        raise argparse.ArgumentTypeError('box must be x,y,w,h')
    return tuple(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='transt-track', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', type=Path, help='video file or folder of images')
    parser.add_argument('--box', type=parse_box, required=True, help='target in the first frame: x,y,w,h (pixels)')
    parser.add_argument('--checkpoint', type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    add_backend_arguments(parser)
    parser.add_argument('--output', type=Path, default=Path('out/track'))
    parser.add_argument('--fps', type=float, default=30.0, help='frame rate of the overlay video')
    parser.add_argument('--reacquire', action=argparse.BooleanOptionalAction, default=False,
                        help='search wider (growing window, then the whole frame in tiles) for a LOST target '
                             "(default: off, the authors' tracker)")
    args = parser.parse_args(argv)
    try:
        tracker = Tracker(load_model(args.checkpoint, device=args.device), device=args.device,
                          precision=args.precision, reacquire=args.reacquire, backend=args.backend)
    except (CheckpointError, ValueError, RuntimeError, FileNotFoundError) as error:
        print(f'transt-track: error: {error}', file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)
    rows, writer = [], None
    try:
        for index, frame in enumerate(tqdm(read_frames(args.source), unit='frame', desc='tracking')):
            if index == 0:
                tracker.initialize(frame, args.box)
                box, score = args.box, 1.0
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(args.output / 'overlay.mp4'), cv2.VideoWriter_fourcc(*'mp4v'),
                                         args.fps, (width, height))
            else:
                result = tracker.track(frame)
                box, score = result.box, result.score
            rows.append((*box, score))
            overlay = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            x, y, w, h = (int(round(v)) for v in box)
            cv2.rectangle(overlay, (x, y), (x + w, y + h), (0, 0, 255), 2)
            cv2.putText(overlay, f'#{index} score {score:.2f}', (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(overlay)
    except (FileNotFoundError, OSError, TrackerInputError) as error:
        print(f'transt-track: error: {error}', file=sys.stderr)
        return 1
    finally:
        if writer is not None:
            writer.release()
    np.savetxt(args.output / 'boxes.txt', np.array(rows), fmt='%.2f', delimiter=',', header='x,y,w,h,score')
    print(f'tracked {len(rows)} frames -> {args.output}/boxes.txt, {args.output}/overlay.mp4')
    return 0


if __name__ == '__main__':
    sys.exit(main())
