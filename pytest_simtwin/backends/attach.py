"""The ``attach`` backend: a simulator that is already running on a given ROS_DOMAIN_ID.

It has no lifecycle: it never starts or stops the simulator, it only waits for its ready topic.
Every worker talks to the same simulator, so attach does **not** isolate parallel workers: use it
with one worker (no ``-n``), e.g. against a simulator you debug in another terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pytest_simtwin.backends.base import Backend
from pytest_simtwin.backends.processes import read_tail
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.domains import MAX_DOMAIN_ID


class AttachBackend(Backend):
    name: ClassVar[str] = "attach"
    supports_control: ClassVar[bool] = True  # probed on first use, like the process backend
    owns_simulator: ClassVar[bool] = False  # already running: no lease, no restart, shared by every worker

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        domain = options.get("attach-domain")
        if domain is None:
            raise ConfigError(
                "--simtwin-backend attach needs --simtwin-attach-domain: the ROS_DOMAIN_ID of the running "
                "simulator; none was given"
            )
        if not 0 <= domain <= MAX_DOMAIN_ID:
            raise ConfigError(f"--simtwin-attach-domain: expected 0..{MAX_DOMAIN_ID}, found {domain}")

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
