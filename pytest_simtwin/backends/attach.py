"""The ``attach`` backend: a simulator that is already running on a given ROS_DOMAIN_ID.

It has no lifecycle: it never starts or stops the simulator, it only waits for its ready topic.
Every worker talks to the same simulator, so attach does **not** isolate parallel workers: use it
with one worker (no ``-n``), e.g. against a simulator you debug in another terminal.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pytest_simtwin.backends.base import Backend
from pytest_simtwin.backends.processes import read_tail


class AttachBackend(Backend):
    name: ClassVar[str] = "attach"
    supports_control: ClassVar[bool] = True  # probed on first use, like the process backend

    _started = False

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._started = False  # never stop a simulator we did not start

    def is_alive(self) -> bool:
        # We cannot see its process; liveness is judged by the health checks (clock, ready topic).
        return True

    def returncode(self) -> int | None:
        return None

    def log_tail(self, lines: int = 30) -> list[str]:
        path = self.config.options.get("attach_log") if self.config.options else None
        return (
            read_tail(Path(path), lines)
            if path
            else [f"(attached simulator on ROS_DOMAIN_ID {self.domain_id}: its log is not available to pytest-simtwin)"]
        )

    def describe(self) -> str:
        return f"attached simulator on ROS_DOMAIN_ID {self.domain_id}"
