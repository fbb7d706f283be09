"""Node names, the ROS domain-id choice and the OpenMP wait policy: plain values, no rclpy."""
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
    return 100 + os.getpid() % 100


def passive_openmp_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Set ``OMP_WAIT_POLICY`` to :data:`PASSIVE_OPENMP` in ``env`` unless it is set; returns ``env`` itself.

    Works on ``os.environ`` (call it before torch is imported) and on a subprocess's environment dict.
    """
    env.setdefault('OMP_WAIT_POLICY', PASSIVE_OPENMP)
    return env
