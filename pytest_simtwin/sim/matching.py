"""Subscribers joining the simulator's publishers, as DDS reports them (publisher matched events).

The runner publishes lazily (only to heard topics, re-read every 50 ms) and, while paused, re-sends
its state to late joiners; a step that names just-subscribed topics waits until they are matched.
Polling subscription counts made a new subscriber wait up to 50 ms (playing) or 0.25 s (paused)
for its first message, and cost a 2 ms polling loop per step; the matched event ends those waits
when the match happens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("simtwin.sim")


class Matches:
    """Counts subscriptions matched by the publishers made through :meth:`publisher`; wakes waiters."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.joined = 0  # matched subscriptions so far (only grows; compare with an earlier value)
        self._waker: Callable[[], None] | None = None

    def set_waker(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called (from the ROS executor thread) whenever a subscription joins."""
        self._waker = fn

    def publisher(self, node: Any, msg_type: Any, topic: str, qos: Any) -> Any:
        """``node.create_publisher`` with a matched-event callback (plain, if the rmw has no such event)."""
        from rclpy.event_handler import PublisherEventCallbacks

        try:
            return node.create_publisher(
                msg_type, topic, qos, event_callbacks=PublisherEventCallbacks(matched=self._on_matched)
            )
        except Exception as exc:  # e.g. UnsupportedEventTypeError: the 50 ms re-reads still cover it
            log.debug("no matched events for %s (%s); subscribers are found by polling", topic, exc)
            return node.create_publisher(msg_type, topic, qos)

    def _on_matched(self, info: Any) -> None:
        if int(getattr(info, "current_count_change", 0)) <= 0:
            return  # a subscriber left: nothing waits for that
        with self._cond:
            self.joined += 1
            self._cond.notify_all()
        waker = self._waker
        if waker is not None:
            waker()

    def wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` (re-checked at every match and every 50 ms), at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True
