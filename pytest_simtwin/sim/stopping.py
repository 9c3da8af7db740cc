"""SIGTERM / SIGINT for the simulator process: an orderly stop, at once, also while paused."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_simtwin.sim.runner import Runner


class StopSignals:
    """Signal state shared by start-up and the runner: a signal before the runner exists still stops cleanly.

    The handler only sets a flag (a lock taken in a signal handler can deadlock), which a paused
    runner would see at its next 0.1 s wait; a thread reading the signal wake-up fd wakes it at
    once, so a stopped simulator exits in milliseconds (every test session's teardown waits for it).
    """

    STOPPING = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.reason: str | None = None
        self.runner: Runner | None = None

    def install(self) -> None:
        """Install the handlers and the wake-up thread (main thread only, before anything else)."""
        for sig in self.STOPPING:
            signal.signal(sig, self.handler)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # a full pipe must never block the interpreter's C handler
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_fd,), name="simtwin-signals", daemon=True).start()

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        self.reason = f"signal {signal.Signals(signum).name}"
        if self.runner is not None:
            self.runner.signal_stop(self.reason)  # never take a lock in a signal handler

    def _watch(self, read_fd: int) -> None:
        numbers = {int(sig) for sig in self.STOPPING}
        while True:
            try:
                data = os.read(read_fd, 16)  # the signal numbers, written before the handler runs
            except OSError:
                return
            if not data:
                return
            for number in data:
                runner = self.runner
                if number in numbers and runner is not None:
                    runner.request_stop(f"signal {signal.Signals(number).name}")
