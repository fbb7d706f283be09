"""A subscription whose reliability follows its publishers, and that can be replaced safely.

``reliability``: ``reliable`` / ``best_effort`` subscribe at once. ``auto`` subscribes only once a
publisher is seen, with what the publishers offer (reliable when every one of them is reliable), so a
publisher started before the node and one started after it both get the right subscription at once;
the offer is re-checked every :data:`GRAPH_CHECK_PERIOD_S` (steady clock: also under use_sim_time
without /clock) and the subscription replaced only when it changes.

Replacing a subscription cannot stop the node: every subscription gets a callback group of its own
(shared with its DDS event handlers and nothing else). rclpy's executor strands a callback group for
good when an entity of the group is destroyed while a handler of it is being taken (``InvalidHandle``
raised outside its try/finally); with its own group, only the retired subscription's group can be
stranded. A replaced subscription is retired (its callbacks ignored from then on) and destroyed by
:meth:`MatchedSubscription.destroy_retired` from the thread that spins the executor, between two waits,
once it has been retired for :data:`RETIRE_GRACE_S` (the bringup does; otherwise it goes with the node).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy

from .parameters import AUTO_RELIABILITY, qos_profile

GRAPH_CHECK_PERIOD_S = 0.25
RETIRE_GRACE_S = 1.0


def publisher_reliability(publishers) -> str | None:
    """'reliable' when every publisher offers reliable delivery, 'best_effort' when one does not,
    None without publishers."""
    if not publishers:
        return None
    if all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers):
        return 'reliable'
    return 'best_effort'


@dataclass
class _Retired:
    subscription: object
    since: float


class MatchedSubscription:
    """``on_message(msg)`` for every message on ``topic`` (resolved), with ``on_lost(event)`` and
    ``on_incompatible(event)`` for its DDS events; ``on_replaced(reliability)`` after an ``auto``
    replacement."""

    def __init__(self, node: Node, msg_type, topic: str, reliability: str, depth: int,
                 on_message: Callable, on_lost: Callable, on_incompatible: Callable,
                 on_replaced: Callable[[str], None]):
        self._node, self.msg_type, self._depth = node, msg_type, depth
        self._on_message, self._on_lost, self._on_incompatible, self._on_replaced = (
            on_message, on_lost, on_incompatible, on_replaced)
        self.topic = node.resolve_topic_name(topic)
        self.reliability_setting = reliability
        self.reliability = ''
        """The reliability of the current subscription ('' : not subscribed yet, ``auto`` waits for a publisher)."""
        self._lock = threading.Lock()
        self._subscription = None
        self._generation = 0
        self._retired: list[_Retired] = []
        if reliability == AUTO_RELIABILITY:
            self.match_publishers()
            node.create_timer(GRAPH_CHECK_PERIOD_S, self.match_publishers,
                              callback_group=MutuallyExclusiveCallbackGroup(),
                              clock=Clock(clock_type=ClockType.STEADY_TIME))
        else:
            self._subscribe(reliability)

    def match_publishers(self) -> None:
        """``auto``: (re)subscribe with what the publishers offer; nothing while there is none."""
        wanted = publisher_reliability(self._node.get_publishers_info_by_topic(self.topic))
        if wanted is None or wanted == self.reliability:
            return
        replaced = bool(self.reliability)
        self._subscribe(wanted)
        if replaced:
            self._on_replaced(wanted)

    def _subscribe(self, reliability: str) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation

        def current_only(callback):
            def guarded(argument):
                if generation == self._generation:
                    callback(argument)
            return guarded

        events = SubscriptionEventCallbacks(message_lost=current_only(self._on_lost),
                                            incompatible_qos=current_only(self._on_incompatible))
        subscription = self._node.create_subscription(
            self.msg_type, self.topic, current_only(self._on_message), qos_profile(reliability, self._depth),
            callback_group=MutuallyExclusiveCallbackGroup(), event_callbacks=events)
        with self._lock:
            retired, self._subscription = self._subscription, subscription
            self.reliability = reliability
            if retired is not None:
                self._retired.append(_Retired(retired, time.monotonic()))

    @property
    def subscription(self):
        return self._subscription

    def retired_count(self) -> int:
        with self._lock:
            return len(self._retired)

    def destroy_retired(self, grace_s: float = RETIRE_GRACE_S) -> int:
        """Destroy the subscriptions retired at least ``grace_s`` ago -> how many. Call it from the thread
        that spins the executor, between two waits."""
        now = time.monotonic()
        with self._lock:
            due = [entry for entry in self._retired if now - entry.since >= grace_s]
            self._retired = [entry for entry in self._retired if now - entry.since < grace_s]
        for entry in due:
            self._node.destroy_subscription(entry.subscription)
        return len(due)

    def publisher_count(self) -> int:
        return self._node.count_publishers(self.topic)
