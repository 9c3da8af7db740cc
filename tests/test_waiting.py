"""wait_until wakes when a message arrives instead of sleeping out its poll interval."""

from __future__ import annotations

import threading
import time

from pytest_simtwin._internal.waiting import arrivals, notify_arrival, wait_until
from pytest_simtwin.ros.session import TopicBuffer


def test_a_wait_ends_at_the_arrival_not_at_its_next_poll() -> None:
    flag = threading.Event()
    calls = [0]

    def probe() -> bool:
        calls[0] += 1
        return flag.is_set()

    def arrive() -> None:
        flag.set()
        notify_arrival()

    timer = threading.Timer(0.05, arrive)
    timer.start()
    t0 = time.monotonic()
    try:
        # One poll every 60 s: only the arrival's pulse can end this wait early.
        assert wait_until(probe, 120.0, what="the flag", interval=60.0, max_interval=60.0) is True
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 30.0
    assert calls[0] == 2  # checked once before the arrival, once when it woke


def test_a_pulse_between_the_check_and_the_wait_is_not_lost() -> None:
    mark = arrivals.mark()
    notify_arrival()  # after the check, before the wait: the wait must return at once
    t0 = time.monotonic()
    arrivals.wait(mark, 60.0)
    assert time.monotonic() - t0 < 30.0


def test_a_received_message_pulses_the_waits() -> None:
    buf = TopicBuffer("/odom", object)
    mark = arrivals.mark()
    buf._callback("a message")  # what rclpy calls for each message
    assert arrivals.mark() != mark
    assert buf.count == 1
