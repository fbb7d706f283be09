"""Node names, the DDS environment (domain id, loopback discovery) and the OpenMP wait policy: plain values,
no rclpy.

The one DDS policy of the project's own processes (the ROS tests, ``transt-eval bag --mode live``, the
benchmarks; ``scripts/env.sh`` applies the same to shells):

* **domain id**: the one asked for, else ``$ROS_DOMAIN_ID``, else one of :data:`DERIVED_DOMAIN_IDS`
  (100..199) derived from the process id (:func:`choose_ros_domain_id`). Away from 0 (every robot's and
  every ``ros2`` shell's default) and the low ids people pick by hand, so a run never joins someone
  else's graph; spread over 100 ids so concurrent runs (other shells, CI jobs, agents) rarely share one;
  and valid for DDS: with Fast DDS's port formula (7400 + 250 x id + 2 x participant + 10/11) the
  highest, 199, still gives ports below 57,400 for 120 participants. Ids 102..199 put those ports inside
  Linux's ephemeral range (32768-60999) that ROS's docs advise against (they call 0..101 safe): an
  outgoing connection may hold one of them. Only the unicast ports can clash (the discovery multicast
  port, 7400 + 250 x id, stays below 57,200), and Fast DDS binds the next free unicast port when its own
  is taken, so the cost is nil on loopback; the range is kept for one reason: shells (``env.sh``) and
  processes draw from the same 100 ids. Any id can be chosen explicitly (``--domain-id``,
  ``$ROS_DOMAIN_ID``; 0..232).
* **discovery**: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` unless set (tests force it), no
  ``ROS_STATIC_PEERS``: DDS stays on loopback (:func:`ros_dds_environment`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

TRACKER_NODE_NAME = 'transt_tracker'
MODEL_MANAGER_NODE_NAME = 'transt_model_manager'

PASSIVE_OPENMP = 'PASSIVE'
"""``OMP_WAIT_POLICY`` of the project's processes unless the user set one: torch's OpenMP workers
otherwise spin between operations and, on a machine with few cores, starve the other processes
(camera, bag player, node, OpenCV trackers; measured on 2 busy cores: 200 ms instead of 30 ms per
frame). OpenMP reads it when torch is imported, so entry points set it before that.
``scripts/env.sh`` exports the same default for shells."""


DERIVED_DOMAIN_IDS = range(100, 200)
"""The domain ids derived from a process id when none is chosen (see the module doc; ``scripts/env.sh``
derives its default from the shell's pid the same way)."""
LOCALHOST = 'LOCALHOST'
"""``ROS_AUTOMATIC_DISCOVERY_RANGE`` that keeps discovery on the loopback interface."""


def choose_ros_domain_id(explicit: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    """``explicit`` if given, else ``$ROS_DOMAIN_ID`` if set, else ``100 + pid % 100`` (as ``scripts/env.sh``).

    Raises ``ValueError`` naming the variable when ``$ROS_DOMAIN_ID`` is not an integer.
    """
    if explicit is not None:
        return int(explicit)
    environ = os.environ if environ is None else environ
    value = environ.get('ROS_DOMAIN_ID', '').strip()
    if value:
        try:
            return int(value)
        except ValueError:
            raise ValueError(f'ROS_DOMAIN_ID={value!r} is not an integer') from None
    return DERIVED_DOMAIN_IDS.start + os.getpid() % len(DERIVED_DOMAIN_IDS)


def ros_dds_environment(env: MutableMapping[str, str], domain_id: int | None = None, *,
                        force_loopback: bool = False) -> MutableMapping[str, str]:
    """Apply the DDS policy (module doc) to ``env`` (``os.environ`` or a subprocess's dict); returns ``env``.

    Sets ``ROS_DOMAIN_ID`` to :func:`choose_ros_domain_id` (``domain_id``, else the one in ``env``, else
    derived), ``ROS_AUTOMATIC_DISCOVERY_RANGE`` to :data:`LOCALHOST` unless set (always with
    ``force_loopback``, as the tests do) and removes ``ROS_STATIC_PEERS``. rclpy reads these when it is
    initialised: apply it to ``os.environ`` before ``rclpy.init``, and pass the same domain id there.
    """
    env['ROS_DOMAIN_ID'] = str(choose_ros_domain_id(domain_id, env))
    if force_loopback:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = LOCALHOST
    else:
        env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', LOCALHOST)
    env.pop('ROS_STATIC_PEERS', None)
    return env


def passive_openmp_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Set ``OMP_WAIT_POLICY`` to :data:`PASSIVE_OPENMP` in ``env`` unless it is set; returns ``env`` itself.

    Works on ``os.environ`` (call it before torch is imported) and on a subprocess's environment dict.
    """
    env.setdefault('OMP_WAIT_POLICY', PASSIVE_OPENMP)
    return env
