"""The one polling wait helper: every ``wait_for_*`` in pytest-simtwin goes through :func:`wait_until`.

Between polls a wait sleeps on :data:`arrivals`, which every received message pulses
(:func:`notify_arrival`): a wait for a message ends when it arrives, not at the next poll (the
backed-off interval reaches 50 ms; a start-up wait lost ~35 ms to it).
:class:`Background` runs one wait beside another (a control probe while the first message is awaited).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from pytest_simtwin.errors import WaitTimeout

T = TypeVar("T")


class Arrivals:
    """A pulse: :meth:`notify` wakes every :meth:`wait` that started before it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0

    def mark(self) -> int:
        """Take before checking a condition; pass to :meth:`wait`, so a pulse in between is not missed."""
        return self._count

    def notify(self) -> None:
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    def wait(self, mark: int, timeout: float) -> None:
        """Return at the first pulse after ``mark`` or after ``timeout`` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self._count != mark, timeout)


#: Pulsed by every message the plugin's subscriptions receive (ros/session.py's TopicBuffer).
arrivals = Arrivals()
notify_arrival = arrivals.notify


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    *,
    what: str,
    interval: float = 0.005,
    max_interval: float = 0.05,
    describe: Callable[[], str] | None = None,
    error: Callable[[str], Exception] | None = None,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``probe`` until it returns something other than ``None``/``False`` or ``timeout`` passes.

    ``what`` names the awaited condition; ``describe()`` adds what was seen instead; ``abort()``
    returns a reason to stop early (e.g. the simulator died); ``error`` builds the exception
    (default :class:`WaitTimeout`, which is an ``AssertionError``).
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        mark = arrivals.mark()
        value = probe()
        if value is not None and value is not False:
            return value
        if abort is not None:
            reason = abort()
            if reason:
                raise (error or WaitTimeout)(f"stopped waiting for {what}: {reason}")
        now = time.monotonic()
        if now >= deadline:
            seen = f"; {describe()}" if describe is not None else ""
            raise (error or WaitTimeout)(f"timed out after {timeout:.2f} s waiting for {what}{seen}")
        arrivals.wait(mark, min(delay, max(deadline - now, 0.0)))
        delay = min(delay * 1.5, max_interval)


class Background(Generic[T]):
    """``fn()`` running in a daemon thread; :meth:`result` joins it and returns or re-raises."""

    def __init__(self, fn: Callable[[], T], name: str = "simtwin-background") -> None:
        self._fn = fn
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
