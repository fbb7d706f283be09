"""The whole tracker node measured end to end: camera process -> bringup process -> this process.

Three processes, as on a robot:

* the **bringup** (``python -m transt_ros.ros.bringup``: ``transt_tracker`` + the lifecycle
  ``transt_model_manager``, autostart), with ``--device`` / ``--precision`` and the checkpoint
  (the bundled demo model by default, ``--checkpoint`` another one, ``--full`` the full TransT-R50 with
  random weights);
* a **camera** (this script's ``camera`` mode): rgb8 frames of 8 swinging squares, reliable, at the rate
  asked (0: as fast as it can publish), each stamped with its send time (``time.time_ns()``, the clock
  every process on the machine shares);
* this **measuring** process: a :class:`~transt_ros.ros.client.TrackerClient` sets N targets
  (``~/set_target``) and records every ``~/detection`` (Detection2D) with its arrival time.

Per run (frame size, rate, N): clear the targets, prime the node with a frame of this size, set N
targets, warm up (excluded), then the timed window. The node's counters come from ``/diagnostics``
(settled before and after the window); its frames are told apart by their stamps. Reported: frames
published, received by the node, processed, with results received here; processed fps; latency p50 /
p95 (image stamp -> Detection2D received here); frames dropped (published - processed); the node's
RSS (``/proc/<pid>/status``) and, on CUDA, its GPU memory (``nvidia-smi`` per process); the node's own
per-stage means (``/diagnostics``: receive, wait, convert, track, publish) and the CPU time of the three
processes. The baseline, in the same run: the tracker alone (``MultiTracker`` with the node's tracker
options, same model, device, frame size and N) in a process of its own before the node starts and again
after it stopped, per-frame median (the faster of the two counts: the less disturbed by other load); the
table gives node fps / tracker fps.

    python benchmarks/node_speed.py                              # full matrix, demo model
    python benchmarks/node_speed.py --quick --device cpu         # CPU smoke run (CI: test/test_node_speed.py)
    python benchmarks/node_speed.py --device cuda --full --out node_speed.json

Prints markdown tables and the machine; writes JSON with ``--out``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, machine_name  # noqa: E402

from transt_ros.common.ros_environment import passive_openmp_env, ros_dds_environment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = ROOT / 'transt_ros' / 'data' / 'demo_model.pth'
LARGE_FRAMES_PROFILE = ROOT / 'config' / 'fastdds_large_frames.xml'
TOPIC = '/node_speed_cam/image'
STAGES = ('receive', 'wait', 'convert', 'track', 'publish', 'latency')
"""The node's per-stage means in /diagnostics (``<stage>_ms``, see processing_stats.TIMING_STAGES)."""
CAMERA_FRAMES = 30
START_TIMEOUT_S = 180.0
"""Bringup start, model load and warm-up (the full model on a loaded CPU is slow)."""
DIAGNOSTICS_PERIOD_S = 0.25
CAMERA_QOS_DEPTH = 5
RUN_FIELDS = ('width', 'height', 'rate_hz', 'targets', 'seconds', 'published', 'publish_failed', 'received',
              'processed', 'skipped', 'lost', 'results', 'detections', 'overlays', 'fps', 'tracker_ms', 'tracker_fps',
              'node_vs_tracker', 'latency_p50_ms', 'latency_p95_ms', 'latency_max_ms', 'dropped', 'rss_mb',
              'peak_rss_mb', 'gpu_mb', 'node_step_ms', 'stages_ms', 'cpu_percent')
"""Every field of a run in the JSON (``stages_ms``: the node's /diagnostics means over the window;
``cpu_percent``: CPU time of the node, camera and measuring processes over the window, % of one core)."""


# ------------------------------------------------------------------------------------ shared helpers

PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230))
OBJECTS = 8
"""Objects in every frame, one per target slot (:func:`target_boxes`), whatever N is."""


def camera_frame(width: int, height: int, index: int) -> np.ndarray:
    """Frame ``index`` of the camera (rgb8, H x W x 3): a static noise background and :data:`OBJECTS`
    checkered squares of distinct colours at the target boxes, swinging +-8 px sideways over 30 frames.
    Every target sits on an object of its own size, so the boxes (and with them the crops, hence the
    cost of a step) stay steady in the node and in the baseline alike."""
    frame = np.random.default_rng(0).integers(90, 130, (height, width, 3), dtype=np.uint8)
    shift = round(8 * math.sin(2 * math.pi * index / CAMERA_FRAMES))
    for slot, (x, y, side, _) in enumerate(target_boxes(OBJECTS, width, height)):
        side, x, y = int(side), int(x) + shift, int(y)
        checker = (np.indices((side, side)).sum(axis=0) // max(4, side // 6) % 2).astype(bool)
        colour = np.array(PALETTE[slot % len(PALETTE)], np.uint8)
        frame[y:y + side, x:x + side] = np.where(checker[..., None], colour, 255 - colour)
    return frame


def target_boxes(count: int, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """``count`` square boxes on a grid over the frame (as benchmarks/multi_target_node.py)."""
    columns = 4
    side = min(width, height) / 6
    return [(width * (0.1 + 0.22 * (index % columns)), height * (0.15 + 0.35 * (index // columns)), side, side)
            for index in range(count)]


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition('x')
    return int(width), int(height)


def rate_label(rate_hz: float) -> str:
    return 'max' if rate_hz <= 0 else f'{rate_hz:g}'


# ------------------------------------------------------------------------------------ camera process

def run_camera(argv: list[str]) -> int:
    """The camera: JSON commands on stdin, one JSON answer line each on stdout.

    ``{"op": "wait"}``: until the node's subscription matched; ``{"op": "publish", "width", "height",
    "rate", "seconds", "count"}``: publish at ``rate`` (0: as fast as possible) for ``seconds`` or
    ``count`` frames, whichever ends first; -> ``{"stamps": [...], "failed": F}`` (the send times in ns;
    F writes that Fast DDS refused, not sent);
    ``{"op": "quit"}`` or end of stdin: exit."""
    parser = argparse.ArgumentParser(prog='node_speed.py camera')
    parser.add_argument('--topic', default=TOPIC)
    options = parser.parse_args(argv)
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init(domain_id=int(os.environ['ROS_DOMAIN_ID']))
    node = rclpy.create_node('node_speed_camera')
    publisher = node.create_publisher(Image, options.topic, QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=CAMERA_QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE))
    frames: dict[tuple[int, int], list] = {}

    def answer(value: dict) -> None:
        sys.stdout.write(json.dumps(value) + '\n')
        sys.stdout.flush()

    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command['op'] == 'quit':
                break
            if command['op'] == 'wait':
                deadline = time.monotonic() + command.get('timeout', 60.0)
                while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                    time.sleep(0.05)
                answer({'matched': publisher.get_subscription_count()})
                continue
            width, height = int(command['width']), int(command['height'])
            if (width, height) not in frames:
                frames[(width, height)] = [
                    Image(height=height, width=width, encoding='rgb8', step=width * 3,
                          data=camera_frame(width, height, index).tobytes()) for index in range(CAMERA_FRAMES)]
                for msg in frames[(width, height)]:
                    msg.header.frame_id = 'camera'
            cycle = frames[(width, height)]
            rate, seconds = float(command['rate']), float(command['seconds'])
            count = int(command.get('count') or 0) or (math.ceil(seconds * rate) if rate > 0 else 1 << 60)
            stamps, failed = [], 0
            start = time.perf_counter()
            index = 0
            while index < count and time.perf_counter() - start < seconds:
                msg = cycle[index % len(cycle)]
                stamp = time.time_ns()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
                try:
                    publisher.publish(msg)
                    stamps.append(stamp)
                except RCLError:  # Fast DDS gave up on a write (a reliable writer blocked too long): not sent
                    failed += 1
                index += 1
                if rate > 0:
                    time.sleep(max(0.0, start + index / rate - time.perf_counter()))
            answer({'stamps': stamps, 'failed': failed})
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def run_viewer(argv: list[str]) -> int:
    """A viewer of the node's ``~/overlay`` (as rqt_image_view): subscribes (reliable, depth 1) and
    records each image's stamp. ``{"op": "stamps"}`` on stdin -> ``{"stamps": [...]}`` (those received
    since the last such call); ``{"op": "quit"}`` or end of stdin: exit."""
    parser = argparse.ArgumentParser(prog='node_speed.py viewer')
    parser.add_argument('--topic', required=True)
    options = parser.parse_args(argv)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init(domain_id=int(os.environ['ROS_DOMAIN_ID']))
    node = rclpy.create_node('node_speed_viewer')
    lock, stamps = threading.Lock(), []

    def on_image(msg) -> None:
        with lock:
            stamps.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
    node.create_subscription(Image, options.topic, on_image, QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        for line in sys.stdin:
            command = json.loads(line)
            if command['op'] == 'quit':
                break
            with lock:
                taken = stamps[:]
                del stamps[:]
            sys.stdout.write(json.dumps({'stamps': taken}) + '\n')
            sys.stdout.flush()
    finally:
        rclpy.try_shutdown()
    return 0


class Helper:
    """A helper process of this script (``camera`` or ``viewer`` mode), driven over its stdin / stdout."""

    def __init__(self, env: dict, *arguments: str):
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *arguments],
                                        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put('')

    def call(self, timeout_s: float, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + '\n')
        self.process.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f'{self.process.args[2]} did not answer {command} within {timeout_s:.0f} s') from None
        if not line:
            raise RuntimeError(f'the {self.process.args[2]} process ended (code {self.process.poll()})')
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.write(json.dumps({'op': 'quit'}) + '\n')
                self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Camera(Helper):
    """The camera process."""

    def __init__(self, env: dict):
        super().__init__(env, 'camera', '--topic', TOPIC)
        self.failed = 0

    def publish(self, width: int, height: int, rate: float, seconds: float, count: int = 0) -> list[int]:
        """The stamps of the frames sent; :attr:`failed`: how many writes Fast DDS refused."""
        reply = self.call(seconds + 60.0, op='publish', width=width, height=height, rate=rate, seconds=seconds,
                          count=count)
        self.failed = reply['failed']
        return reply['stamps']


# ------------------------------------------------------------------------------------ baseline process

def tracker_options(device: str, precision: str, backend: str = 'torch') -> dict:
    """The node's tracker (``ModelHandle.new_tracker``): CUDA graphs on CUDA with the torch backend (the
    manager's default ``cuda_graph: true``), TF32 off, the default window influence, no re-acquisition."""
    import torch
    cuda = torch.device(device).type == 'cuda' and backend == 'torch'
    return {'device': device, 'precision': precision, 'prepared': True, 'cuda_graph': cuda, 'allow_tf32': False,
            'window_influence': 0.49}


def run_baseline(argv: list[str]) -> int:
    """The tracker alone: median ms per frame of one ``MultiTracker.track`` with N targets, per size;
    one JSON line ``{"WxH": {"N": ms}}`` on stdout."""
    parser = argparse.ArgumentParser(prog='node_speed.py baseline')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', default='fp32')
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--sizes', required=True)
    parser.add_argument('--targets', required=True)
    parser.add_argument('--frames', type=int, default=20)
    options = parser.parse_args(argv)
    import torch

    from transt_ros.checkpoint import load_model
    from transt_ros.runtimes.backends import resolve_backend
    from transt_ros.tracking import MultiTracker, prepare_model

    torch.manual_seed(0)
    backend = resolve_backend(options.backend, options.device)  # what the manager resolves it to
    model = prepare_model(load_model(options.checkpoint, device=torch.device(options.device)), options.device,
                          options.precision, backend=backend)
    results: dict[str, dict[str, float]] = {}
    for size in options.sizes.split(','):
        width, height = parse_size(size)
        frames = [camera_frame(width, height, index) for index in range(CAMERA_FRAMES)]
        results[size] = {}
        for count in (int(value) for value in options.targets.split(',')):
            multi = MultiTracker(model, **tracker_options(options.device, options.precision, backend))
            for box in target_boxes(count, width, height):
                multi.add(frames[0], box)
            for index in range(3):  # warm-up (CUDA graphs captured here)
                multi.track([frames[index + 1]] * count)
            times = []
            for index in range(options.frames):
                frame = frames[(index + 4) % len(frames)]
                start = time.perf_counter()
                multi.track([frame] * count)  # ends with the answer on the host: synchronised
                times.append((time.perf_counter() - start) * 1000.0)
            results[size][str(count)] = statistics.median(times)
    print(json.dumps(results), flush=True)
    return 0


def baseline(env: dict, checkpoint: Path, device: str, precision: str, sizes: list[str], targets: list[int],
             frames: int, backend: str = 'auto') -> dict[str, dict[str, float]]:
    command = [sys.executable, str(Path(__file__).resolve()), 'baseline', '--checkpoint', str(checkpoint),
               '--device', device, '--precision', precision, '--backend', backend, '--sizes', ','.join(sizes),
               '--targets', ','.join(map(str, targets)), '--frames', str(frames)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f'the baseline failed ({done.returncode}):\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ the node

class Bringup:
    """``python -m transt_ros.ros.bringup`` in its own process group, output to a log file."""

    def __init__(self, env: dict, log_path: Path, *ros_args: str):
        self.log_path = log_path
        env = dict(env, PYTHONUNBUFFERED='1')
        with open(log_path, 'w') as log:
            self.process = subprocess.Popen([sys.executable, '-m', 'transt_ros.ros.bringup', '--ros-args', *ros_args],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            tail = '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-30:])
            raise RuntimeError(f'the bringup exited with code {self.process.returncode}:\n{tail}')

    def memory_mb(self) -> tuple[float, float]:
        """(RSS, peak RSS since the last :meth:`reset_peak`) in MB, from /proc/<pid>/status."""
        values = dict(line.split(':', 1) for line in Path(f'/proc/{self.pid}/status').read_text().splitlines()
                      if ':' in line)
        return int(values['VmRSS'].split()[0]) / 1024.0, int(values['VmHWM'].split()[0]) / 1024.0

    def reset_peak(self) -> None:
        with contextlib.suppress(OSError):
            Path(f'/proc/{self.pid}/clear_refs').write_text('5')

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()


def gpu_memory_mb(pid: int) -> float | None:
    """GPU memory of process ``pid`` from ``nvidia-smi`` (None: no nvidia-smi, or the process is not
    listed, e.g. in another PID namespace)."""
    try:
        output = subprocess.run(['nvidia-smi', '--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'],
                                capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(',')]
        if len(fields) == 2 and fields[0] == str(pid):
            with contextlib.suppress(ValueError):
                return float(fields[1])
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) from /proc/<pid>/stat [s]."""
    fields = Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def tracker_status(array):
    """The tracker's entry of a /diagnostics array as TrackerDiagnostics, else None."""
    from transt_ros.common.ros_environment import TRACKER_NODE_NAME
    from transt_ros.ros.client import TrackerDiagnostics

    for status in array.status:
        if status.name.startswith(f'{TRACKER_NODE_NAME}: '):
            return TrackerDiagnostics.from_status(status)
    return None


class Bench:
    """The measuring side: a TrackerClient on the bringup, and the camera; with ``overlay``, a viewer of
    ``~/overlay`` too (the node draws and publishes it only while someone subscribes)."""

    def __init__(self, client, bringup: Bringup, camera: Camera, device: str, viewer: Helper | None = None):
        self.client, self.bringup, self.camera, self.device, self.viewer = client, bringup, camera, device, viewer

    def overlays(self, stamps: set[int]) -> int | None:
        """Overlays with these stamps that the viewer received (None without a viewer)."""
        if self.viewer is None:
            return None
        return sum(stamp in stamps for stamp in self.viewer.call(30.0, op='stamps')['stamps'])

    def settled_diagnostics(self):
        """The tracker's diagnostics once its counters stop changing (two in a row with the same
        received and processed counts); -> (TrackerDiagnostics, arrival monotonic time)."""
        client = self.client
        previous: list = [None]

        def settled():
            self.bringup.check_alive()
            item = client.diagnostics.wait_for(lambda array: tracker_status(array) is not None, timeout_s=30.0,
                                               check=self.bringup.check_alive)
            current = tracker_status(item)
            last, previous[0] = previous[0], current
            done = last is not None and (last.frames_received, last.frames_processed) == (
                current.frames_received, current.frames_processed)
            return current if done else None
        diagnostics = client.wait_until(settled, 60.0, 'the frame counters to settle', self.bringup.check_alive)
        return diagnostics, time.monotonic()

    def wait_processed(self, stamp: int, timeout_s: float) -> None:
        self.client.status.wait_for_stamp(stamp, timeout_s, check=self.bringup.check_alive)

    def wait_results(self, stamp: int) -> None:
        """Until the Detection2D of frame ``stamp`` arrived here (the earlier ones came before it: one
        reliable topic), so a busy measuring process counts every result; tolerated when it never comes
        (a non-finite answer publishes none)."""
        from transt_ros.ros.client import WaitTimeout

        with contextlib.suppress(WaitTimeout):
            self.client.detection.wait_for_stamp(stamp, 10.0, check=self.bringup.check_alive)

    def prime(self, width: int, height: int) -> None:
        """Until the node processed a frame of this size (a frame published before the subscription
        matched on both sides is lost: retried)."""
        from transt_ros.ros.client import WaitTimeout

        for _ in range(20):
            stamps = self.camera.publish(width, height, 10.0, 1.0, count=3)
            try:
                self.wait_processed(stamps[-1], 10.0)
                return
            except WaitTimeout:
                continue
        raise RuntimeError(f'no frame of {width}x{height} processed by the node')

    def run(self, width: int, height: int, rate: float, count: int, seconds: float, warmup_s: float) -> dict:
        client = self.client
        reply = client.clear_target()
        if not reply.success:
            raise RuntimeError(f'clear_target failed: {reply.message}')
        self.prime(width, height)
        for box in target_boxes(count, width, height):
            reply = client.set_target(*box, timeout_s=60.0)
            if not reply.accepted:
                raise RuntimeError(f'SetTarget refused: {reply.reason}')
        if warmup_s > 0:
            stamps = self.camera.publish(width, height, rate, warmup_s)
            self.wait_processed(stamps[-1], 120.0)
        before, _ = self.settled_diagnostics()
        self.bringup.reset_peak()
        since = time.monotonic()
        cpu_before = self.cpu_seconds()
        stamps = self.camera.publish(width, height, rate, seconds)
        self.wait_processed(stamps[-1], 120.0 + seconds)
        cpu_after, wall_s = self.cpu_seconds(), time.monotonic() - since
        self.wait_results(stamps[-1])
        rss_mb, peak_rss_mb = self.bringup.memory_mb()
        gpu_mb = gpu_memory_mb(self.bringup.pid) if self.device.startswith('cuda') else None
        after, until = self.settled_diagnostics()

        timed = set(stamps)
        detections = [item for item in client.detection.received(since) if item.stamp_ns in timed]
        latencies = np.array([(item.wall_ns - item.stamp_ns) / 1e6 for item in detections])
        statuses = {}
        for item in client.status.received(since):
            if item.stamp_ns in timed:
                statuses.setdefault(item.stamp_ns, item)
        processed = after.frames_processed - before.frames_processed
        last_ns = max((item.wall_ns for item in statuses.values()), default=stamps[-1])
        span_s = max(1e-9, (last_ns - stamps[0]) / 1e9)
        fps = processed / span_s
        row = {
            'width': width, 'height': height, 'rate_hz': rate, 'targets': count, 'seconds': seconds,
            'published': len(stamps), 'publish_failed': self.camera.failed,
            'received': after.frames_received - before.frames_received,
            'processed': processed, 'skipped': after.frames_skipped - before.frames_skipped,
            'lost': after.frames_lost - before.frames_lost,
            'results': len({item.stamp_ns for item in detections}), 'detections': len(detections),
            'overlays': self.overlays(timed),
            'fps': fps,
            'latency_p50_ms': float(np.percentile(latencies, 50)) if latencies.size else float('nan'),
            'latency_p95_ms': float(np.percentile(latencies, 95)) if latencies.size else float('nan'),
            'latency_max_ms': float(latencies.max()) if latencies.size else float('nan'),
            'dropped': len(stamps) - processed, 'rss_mb': rss_mb, 'peak_rss_mb': peak_rss_mb, 'gpu_mb': gpu_mb,
            'node_step_ms': statistics.median(item.msg.track_ms for item in statuses.values()) if statuses
            else float('nan'),
            'stages_ms': self.stage_means(before, since, until),
            'cpu_percent': {name: 100.0 * (cpu_after[name] - cpu_before[name]) / wall_s for name in cpu_before},
        }
        return row

    def cpu_seconds(self) -> dict[str, float]:
        return {'node': cpu_seconds(self.bringup.pid), 'camera': cpu_seconds(self.camera.process.pid),
                'measuring': time.process_time()}

    def stage_means(self, before, since: float, until: float) -> dict[str, float | None]:
        """The node's per-stage means (ms) over the frames processed after the settled report ``before``
        (the last one before ``since``) up to ``until``: each /diagnostics period's means weighted by the
        frames it processed."""
        reports = [before] + [status for item in self.client.diagnostics.received(since) if item.monotonic_s <= until
                              and (status := tracker_status(item.msg)) is not None]
        sums = dict.fromkeys(STAGES, 0.0)
        weights = dict.fromkeys(STAGES, 0)
        for previous, current in zip(reports, reports[1:]):
            frames = current.frames_processed - previous.frames_processed
            for stage in STAGES:
                value = current.values.get(f'{stage}_ms', 'n/a')
                if frames > 0 and value != 'n/a':
                    sums[stage] += float(value) * frames
                    weights[stage] += frames
        return {stage: sums[stage] / weights[stage] if weights[stage] else None for stage in STAGES}


# ------------------------------------------------------------------------------------ report

def _number(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    return f'{value:.{digits}f}'


def print_tables(rows: list[dict]) -> None:
    print('| frame | rate (Hz) | N | published | received | processed | results here | fps | tracker fps | '
          'node / tracker | latency p50 (ms) | p95 (ms) | dropped | RSS (MB) | GPU (MB) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for row in rows:
        print(f"| {row['width']}x{row['height']} | {rate_label(row['rate_hz'])} | {row['targets']} | "
              f"{row['published']} | {row['received']} | {row['processed']} | {row['results']}"
              f"{'' if row['overlays'] is None else ' (overlays ' + str(row['overlays']) + ')'} | "
              f"{row['fps']:.1f} | {row['tracker_fps']:.1f} | {row['node_vs_tracker']:.2f}x | "
              f"{_number(row['latency_p50_ms'])} | {_number(row['latency_p95_ms'])} | {row['dropped']} | "
              f"{row['rss_mb']:.0f} | {_number(row['gpu_mb'], 0)} |")
    print('\nWhere the time goes: the node\'s /diagnostics means over the window (ms per processed frame; '
          'receive = stamp -> image callback, wait = callback -> processing start, latency = stamp -> '
          'results published), beside the tracker alone\n')
    print('| frame | rate (Hz) | N | receive | wait | convert | track | publish | node latency | '
          'tracker alone | CPU node / camera / measuring (% of a core) |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for row in rows:
        stages, cpu = row['stages_ms'], row['cpu_percent']
        print(f"| {row['width']}x{row['height']} | {rate_label(row['rate_hz'])} | {row['targets']} | "
              + ' | '.join(_number(stages[stage], 2) for stage in STAGES) + f" | {row['tracker_ms']:.2f} | "
              f"{cpu['node']:.0f} / {cpu['camera']:.0f} / {cpu['measuring']:.0f} |")


# ------------------------------------------------------------------------------------ main

def write_full_checkpoint(directory: Path) -> Path:
    """The full TransT-R50 (``build_transt()``) with random weights (seed 0), as a checkpoint file."""
    import torch

    from transt_ros.checkpoint import save_checkpoint
    from transt_ros.model import build_transt

    torch.manual_seed(0)
    return save_checkpoint(directory / 'transt_r50_random.pth', build_transt().eval())


def default_device() -> str:
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['camera']:
        return run_camera(argv[1:])
    if argv[:1] == ['baseline']:
        return run_baseline(argv[1:])
    if argv[:1] == ['viewer']:
        return run_viewer(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', help='cpu or cuda[:N] (default: cuda when available)')
    parser.add_argument('--precision', default='fp32', help='fp32, fp16 (CUDA), bf16 (CUDA; CPU with openvino), int8')
    parser.add_argument('--backend', default='auto', help="the manager's backend (default auto: OpenVINO on the CPU, "
                                                          'torch with CUDA graphs on CUDA); the baseline uses the same')
    model = parser.add_mutually_exclusive_group()
    model.add_argument('--checkpoint', type=Path, help=f'default: {DEMO_CHECKPOINT.relative_to(ROOT)}')
    model.add_argument('--full', action='store_true', help='the full TransT-R50 with random weights')
    parser.add_argument('--sizes', default='640x480,1280x720', help='frame sizes WxH')
    parser.add_argument('--rates', default='30,60,120,0', help='camera rates in Hz (0: as fast as it can)')
    parser.add_argument('--targets', default='1,8', help='numbers of targets N')
    parser.add_argument('--seconds', type=float, default=10.0, help='timed window per run')
    parser.add_argument('--warmup', type=float, default=2.0, help='warm-up per run, excluded [s]')
    parser.add_argument('--baseline-frames', type=int, default=20, help='timed frames of the tracker alone')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: 640x480, max rate, N = 1 and 2, 3 s (1 s warm-up), 5 baseline frames')
    parser.add_argument('--large-frames', choices=('none', 'camera', 'all'), default='none',
                        help="config/fastdds_large_frames.xml (a 32 MiB shared-memory segment instead of Fast DDS's "
                             "512 KiB) for nobody (default: as a stock camera driver and node), the camera, or the "
                             'camera and the node (whose ~/overlay is a large frame too)')
    parser.add_argument('--overlay', action='store_true',
                        help='subscribe to ~/overlay as a viewer would (the node then draws and publishes it)')
    parser.add_argument('--domain-id', type=int)
    parser.add_argument('--keep-log', type=Path, help='copy the bringup log here')
    parser.add_argument('--out', type=Path, help='JSON file for the results')
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.rates, args.targets = '640x480', '0', '1,2'
        args.seconds, args.warmup, args.baseline_frames = 3.0, 1.0, 5
    sizes = [size.strip() for size in args.sizes.split(',')]
    for size in sizes:
        parse_size(size)
    rates = [float(value) for value in args.rates.split(',')]
    targets = [int(value) for value in args.targets.split(',')]
    if not all(1 <= count <= OBJECTS for count in targets):
        parser.error(f'--targets: values in 1..{OBJECTS} (one object per target in the frames)')
    device = args.device or default_device()
    from transt_ros.runtimes.backends import check_backend
    try:
        args.backend = check_backend(args.backend, args.precision, device)
    except ValueError as error:
        parser.error(str(error))

    passive_openmp_env(os.environ)  # as scripts/env.sh: idle OpenMP workers do not spin
    ros_dds_environment(os.environ, args.domain_id)  # loopback, a domain id of our own
    env = dict(os.environ)
    failure = None
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)  # Fast DDS's defaults unless --large-frames
    large_env = dict(env, FASTDDS_DEFAULT_PROFILES_FILE=str(LARGE_FRAMES_PROFILE))
    camera_env = large_env if args.large_frames != 'none' else env
    node_env = large_env if args.large_frames == 'all' else env
    transport = {'none': 'Fast DDS defaults', 'camera': 'camera with config/fastdds_large_frames.xml',
                 'all': 'camera and node with config/fastdds_large_frames.xml'}[args.large_frames]
    if args.overlay:
        transport += '; ~/overlay subscribed'
    rows = []
    with tempfile.TemporaryDirectory(prefix='node_speed_') as tmp:
        directory = Path(tmp)
        if args.full:
            checkpoint, model_name = write_full_checkpoint(directory), 'full TransT-R50 (random weights)'
        else:
            checkpoint = args.checkpoint or DEMO_CHECKPOINT
            model_name = 'demo' if checkpoint == DEMO_CHECKPOINT else str(checkpoint)
        print(f'baseline: the tracker alone ({model_name}, {device}/{args.precision}) ...', flush=True)
        baselines = [baseline(env, checkpoint, device, args.precision, sizes, targets, args.baseline_frames,
                              args.backend)]
        print(json.dumps(baselines[0]), flush=True)

        import rclpy

        from transt_ros.ros.client import TrackerClient

        bringup = Bringup(node_env, directory / 'bringup.log', '-p', f'image_topic:={TOPIC}',
                          '-p', f'checkpoint:={checkpoint}', '-p', f'device:={device}',
                          '-p', f'precision:={args.precision}', '-p', f'backend:={args.backend}',
                          '-p', f'max_targets:={max(targets)}', '-p', 'image_qos_reliability:=reliable',
                          '-p', f'diagnostics_period:={DIAGNOSTICS_PERIOD_S}')
        camera = Camera(camera_env)
        rclpy.init(domain_id=int(os.environ['ROS_DOMAIN_ID']))
        client = viewer = None
        try:
            client = TrackerClient('node_speed_client', depth=1000)
            client.wait_until_answering(START_TIMEOUT_S, check=bringup.check_alive)
            client.wait_until(lambda: client.manager_state() == 'active', START_TIMEOUT_S, 'the model to be active',
                              bringup.check_alive)
            client.wait_for_services(60.0, check=bringup.check_alive)
            client.wait_for_outputs(60.0, check=bringup.check_alive)
            assert camera.call(60.0, op='wait', timeout=60.0)['matched'] > 0, 'the node did not subscribe'
            if args.overlay:
                viewer = Helper(env, 'viewer', '--topic', f'{client.tracker_name}/overlay')
                client.wait_until(lambda: client.node.count_subscribers(f'{client.tracker_name}/overlay') > 0, 60.0,
                                  'the overlay viewer', bringup.check_alive)
            bench = Bench(client, bringup, camera, device, viewer)
            for size in sizes:
                width, height = parse_size(size)
                for count in targets:
                    for rate in rates:
                        row = bench.run(width, height, rate, count, args.seconds, args.warmup)
                        row['model'] = model_name
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        except Exception as error:  # the runs done so far are still reported
            failure = f'{type(error).__name__}: {error}'
            print(f'benchmark stopped: {failure}', file=sys.stderr, flush=True)
        finally:
            camera.close()
            if viewer is not None:
                viewer.close()
            if client is not None:
                client.close()
            bringup.stop()
            if args.keep_log:
                args.keep_log.write_text(bringup.log_path.read_text(errors='replace'))
            rclpy.try_shutdown()

        if rows:  # again once the node is gone; the faster of the two (the less disturbed by other load) counts
            baselines.append(baseline(env, checkpoint, device, args.precision, sizes, targets, args.baseline_frames,
                                      args.backend))
            print(json.dumps(baselines[-1]), flush=True)
    for row in rows:
        key = (f"{row['width']}x{row['height']}", str(row['targets']))
        row['tracker_ms'] = min(runs[key[0]][key[1]] for runs in baselines)
        row['tracker_fps'] = 1000.0 / row['tracker_ms']
        row['node_vs_tracker'] = row['fps'] / row['tracker_fps']

    machine = describe(device)
    print(f"\nmachine: {machine_name(machine, device)}, torch {machine['torch']}, {machine['torch_threads']} threads; "
          f'model: {model_name} on {device}/{args.precision} ({args.backend}); rgb8, reliable, {transport}; '
          f'{args.seconds:g} s per run after {args.warmup:g} s warm-up; latency = image stamp -> Detection2D '
          'received by the measuring process\n')
    print_tables(rows)
    if args.out:
        args.out.write_text(json.dumps({'machine': machine, 'device': device, 'precision': args.precision,
                                        'backend': args.backend, 'model': model_name, 'transport': transport,
                                        'overlay': args.overlay,
                                        'failure': failure, 'baselines_ms': baselines, 'rows': rows}, indent=2))
    if failure:
        print(f'\nstopped early: {failure}', file=sys.stderr)
    return 1 if failure else 0


if __name__ == '__main__':
    sys.exit(main())
