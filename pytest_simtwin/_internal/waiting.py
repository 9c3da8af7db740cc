"""The one polling wait helper: every ``wait_for_*`` in pytest-simtwin goes through :func:`wait_until`.

:class:`Background` runs one wait beside another (a control probe while the first message is awaited).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from pytest_simtwin.errors import WaitTimeout

T = TypeVar("T")


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
        time.sleep(min(delay, max(deadline - now, 0.0)))
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
