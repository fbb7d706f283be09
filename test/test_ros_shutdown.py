"""Stopping the bringup the way ``ros2 launch`` and a terminal do (issue 14, item 7): SIGINT once,
SIGINT twice in quick succession (launch forwards Ctrl-C while the process is already cleaning up),
SIGTERM; each sent to the process group while frames are being tracked. Every stop is silent
(no traceback, no rosout or "never retrieved" complaint) and exits with code 0.

``TRANST_SHUTDOWN_STOPS=20 python -m pytest test/test_ros_shutdown.py`` runs a longer series.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from .ros_helpers import ros_context, start_bringup, stop_process_group, write_light_checkpoint

pytestmark = pytest.mark.ros

TOPIC = '/shutdown_cam/image'
SEQUENCES = {'sigint': (signal.SIGINT,), 'sigint-twice': (signal.SIGINT, signal.SIGINT), 'sigterm': (signal.SIGTERM,)}
FORBIDDEN = ('Traceback', 'KeyboardInterrupt', 'Failed to publish log message', 'never retrieved',
             'cannot use Destroyable', 'Exception')


def stop_plan() -> list[str]:
    count = int(os.environ.get('TRANST_SHUTDOWN_STOPS', '6'))
    names = list(SEQUENCES)
    return [names[index % len(names)] for index in range(count)]


def test_repeated_stops_are_silent_with_exit_code_0(tmp_path):
    from sensor_msgs.msg import Image

    checkpoint = write_light_checkpoint(tmp_path / 'light.pth')
    results = []
    with ros_context():
        from transt_ros.ros.client import TrackerClient

        probe = TrackerClient('transt_shutdown_probe')
        camera = probe.node.create_publisher(Image, TOPIC, 10)
        frame = Image(height=240, width=320, encoding='rgb8', step=960, data=bytes(range(256)) * 900)
        try:
            for index, name in enumerate(stop_plan()):
                log_path = tmp_path / f'bringup_{index}.log'
                process = start_bringup(log_path, '-p', f'image_topic:={TOPIC}', '-p', f'checkpoint:={checkpoint}')
                try:
                    probe.wait_until(lambda p=log_path: 'activated' in p.read_text(), 60.0, 'autostart')
                    if index % 2 == 0:  # half of the stops while a target is tracked
                        camera.publish(frame)
                        probe.wait_until(lambda: probe.set_target(100, 80, 60, 60).accepted or camera.publish(frame),
                                         20.0, 'a target')
                    for _ in range(5):
                        camera.publish(frame)
                        time.sleep(0.03)
                    start = time.monotonic()
                    code = stop_process_group(process, SEQUENCES[name], gap_s=0.05)
                    results.append((name, code, round(time.monotonic() - start, 2)))
                finally:
                    if process.poll() is None:
                        stop_process_group(process, (signal.SIGKILL,))
                log = log_path.read_text()
                assert code == 0, (name, code, log)
                problems = [line for line in log.splitlines() if any(word in line for word in FORBIDDEN)]
                assert not problems, (name, log)
        finally:
            probe.close()
    print(f'\nstops (signals, exit code, seconds): {results}')
