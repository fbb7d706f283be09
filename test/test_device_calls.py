"""Every model call of the node in turn, and on CUDA all on one thread (``transt_ros/ros/device_calls.py``).

The unit tests prove the mechanism; the node tests set, re-set and clear targets from service calls while
frames flow, with the device thread on, and check that every model call (template, frame step, catch-up)
ran on that one thread. On the CPU the device thread is switched on by hand (it is for CUDA models); the
CUDA test runs the same with CUDA graphs on, where a CUDA device is present (skipped with the reason
elsewhere)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from transt_ros.ros.device_calls import THREAD_NAME, DeviceCalls

from .ros_helpers import in_process_tracker, ros_context, write_light_checkpoint

TOPIC = '/device_calls_cam/image'
WIDTH, HEIGHT = 320, 240
BOXES = [(20.0, 30.0, 40.0, 40.0), (120.0, 40.0, 50.0, 50.0), (220.0, 150.0, 40.0, 40.0)]


def test_calls_run_on_one_device_thread_in_the_order_asked():
    calls = DeviceCalls(own_thread=True)
    seen, order = [], []
    gate = threading.Event()

    def first():
        gate.wait(5)
        seen.append(threading.current_thread().name)
        order.append('first')

    def later(name):
        seen.append(threading.current_thread().name)
        order.append(name)
        return name

    holder = threading.Thread(target=calls.run, args=(first,))
    holder.start()
    time.sleep(0.1)  # 'first' holds the turn
    waiting = []
    for index in range(3):
        thread = threading.Thread(target=lambda index=index: waiting.append(calls.run(later, f'call {index}')))
        thread.start()
        time.sleep(0.05)  # asked in this order
    gate.set()
    holder.join(5)
    while len(order) < 4:
        time.sleep(0.01)
    assert order == ['first', 'call 0', 'call 1', 'call 2']
    assert len(set(seen)) == 1 and seen[0].startswith(THREAD_NAME)
    assert calls.run(lambda: calls.run(threading.current_thread)).name.startswith(THREAD_NAME)  # re-entrant
    with pytest.raises(ZeroDivisionError):
        calls.run(lambda: 1 / 0)
    calls.close()


def test_without_the_device_thread_calls_run_on_the_caller():
    calls = DeviceCalls()
    assert calls.run(threading.current_thread) is threading.current_thread()
    calls.use_own_thread(True)
    assert calls.run(threading.current_thread) is not threading.current_thread()
    calls.close()


def run_node_with_device_thread(model, device: str, cuda_graph: bool, cycles: int) -> set[str]:
    """An in-process tracker node on ``model`` with the device thread on; ``cycles`` x (set 3 targets by
    service while frames flow at 20 Hz, re-set one, clear one, clear all); -> the names of the threads that
    ran the model's template and track calls."""
    from transt_ros.ros.model_handle import ModelHandle

    threads: set[str] = set()
    for name in ('template', 'track'):
        original = getattr(model, name)

        def recorded(*args, original=original):
            threads.add(threading.current_thread().name)
            return original(*args)

        setattr(model, name, recorded)
    rgb = np.random.default_rng(3).integers(40, 200, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    with ros_context():
        handle = ModelHandle()
        handle.load(model, device, 'fp32', cuda_graph=cuda_graph)
        handle.calls.use_own_thread(True)
        handle.set_active(True)
        try:
            with in_process_tracker(handle, TOPIC, rgb, 'device_calls_client', 20.0, 4, max_targets=4) as (client, _):
                for _ in range(cycles):
                    replies = [client.set_target_async(*box) for box in BOXES]  # three requests at once
                    ids = [client.answer(reply).track_id for reply in replies]
                    assert all(ids), ids
                    again = client.set_target(*BOXES[0], track_id=ids[1])  # re-set a live track
                    assert again.accepted, again.reason
                    assert client.clear_track(ids[2]).success
                    client.detections.wait_for(lambda m: len(m.detections) == 2, what='two tracks after clear_track')
                    assert client.clear_target().success
                    client.detections.wait_for(lambda m: len(m.detections) == 0, what='no track after clear_target')
        finally:
            handle.close()
    return threads


@pytest.mark.ros
def test_every_model_call_of_the_node_runs_on_the_device_thread(tmp_path):
    from transt_ros.checkpoint import load_model
    from transt_ros.tracking import prepare_model

    model = prepare_model(load_model(write_light_checkpoint(tmp_path / 'light.pth')))
    threads = run_node_with_device_thread(model, 'cpu', cuda_graph=False, cycles=3)
    assert threads and all(name.startswith(THREAD_NAME) for name in threads), threads


@pytest.mark.ros
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device (none here)')
def test_service_calls_while_frames_flow_with_cuda_graphs(tmp_path):
    from transt_ros.checkpoint import load_model
    from transt_ros.tracking import prepare_model

    model = prepare_model(load_model(write_light_checkpoint(tmp_path / 'light.pth')), 'cuda')
    threads = run_node_with_device_thread(model, 'cuda', cuda_graph=True, cycles=10)
    assert threads and all(name.startswith(THREAD_NAME) for name in threads), threads
