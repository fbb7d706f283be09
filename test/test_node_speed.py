"""CPU smoke run of ``benchmarks/node_speed.py --quick`` (the whole node end to end: a camera process, the
bringup process, the measuring process): it runs, and its figures are consistent."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from .ros_helpers import ROOT, ros_env

pytestmark = pytest.mark.ros

FIELDS = {'width', 'height', 'rate_hz', 'targets', 'seconds', 'published', 'publish_failed', 'received',
          'processed', 'skipped', 'lost', 'results', 'detections', 'overlays', 'fps', 'tracker_ms', 'tracker_fps',
          'node_vs_tracker', 'latency_p50_ms', 'latency_p95_ms', 'latency_max_ms', 'dropped', 'rss_mb',
          'peak_rss_mb', 'gpu_mb', 'node_step_ms', 'stages_ms', 'cpu_percent', 'model'}
STAGES = {'receive', 'wait', 'convert', 'track', 'publish', 'latency'}


def test_quick_cpu_run(tmp_path):
    out = tmp_path / 'node_speed.json'
    done = subprocess.run([sys.executable, 'benchmarks/node_speed.py', '--quick', '--device', 'cpu', '--out', str(out)],
                          cwd=ROOT, env=ros_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert '| 640x480 | max | 1 |' in done.stdout and '| 640x480 | max | 2 |' in done.stdout, done.stdout
    result = json.loads(out.read_text())
    assert result['device'] == 'cpu' and result['model'] == 'demo' and result['failure'] is None
    assert {'cpu', 'cores', 'torch'} <= set(result['machine'])
    rows = result['rows']
    assert [(row['width'], row['height'], row['rate_hz'], row['targets']) for row in rows] == [
        (640, 480, 0.0, 1), (640, 480, 0.0, 2)]
    for row in rows:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert set(row['stages_ms']) == STAGES and set(row['cpu_percent']) == {'node', 'camera', 'measuring'}
        assert row['processed'] > 0 and row['results'] > 0, row
        assert 0 < row['received'] <= row['published'], row
        assert row['processed'] <= row['received'], row
        assert row['results'] <= row['processed'], row
        assert row['results'] <= row['detections'] <= row['targets'] * row['results'], row  # one per track and frame
        assert row['dropped'] == row['published'] - row['processed']
        assert 0 < row['latency_p50_ms'] <= row['latency_p95_ms'] <= row['latency_max_ms'], row
        assert row['fps'] > 0 and row['tracker_ms'] > 0
        assert math.isclose(row['tracker_fps'], 1000.0 / row['tracker_ms'])
        assert math.isclose(row['node_vs_tracker'], row['fps'] / row['tracker_fps'])
        assert row['node_step_ms'] > 0 and row['stages_ms']['track'] > 0
        assert 0 < row['rss_mb'] <= row['peak_rss_mb'], row
        assert row['gpu_mb'] is None and row['overlays'] is None  # CPU run; no overlay viewer
        assert row['cpu_percent']['node'] > 0
