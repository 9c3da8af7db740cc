"""Who this process is under pytest-xdist: the worker's name, index and the number of workers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WorkerInfo:
    """Who we are under xdist: ``gw3`` of 8 -> name "gw3", index 3, count 8 (plain run: master, 0, 1)."""

    name: str = "master"
    index: int = 0
    count: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerInfo:
        env = os.environ if environ is None else environ
        name = env.get("PYTEST_XDIST_WORKER", "master")
        try:
            index = int(name[2:]) if name.startswith("gw") else 0
            count = int(env.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        except ValueError:
            index, count = 0, 1
        return cls(name, index, max(count, 1))

    @classmethod
    def from_config(cls, config: Any) -> WorkerInfo:
        """From pytest's config: ``workerinput`` exists only in a real xdist worker.

        The environment variables are inherited by every child process, e.g. a pytest that a test
        runs in a subprocess, which is not a worker of ours.
        """
        workerinput = getattr(config, "workerinput", None)
        if not workerinput:
            return cls()
        name = str(workerinput.get("workerid", "gw0"))
        try:
            index = int(name[2:]) if name.startswith("gw") else 0
            count = int(workerinput.get("workercount", 1))
        except (TypeError, ValueError):
            index, count = 0, 1
        return cls(name, index, max(count, 1))

    def preferred_domain(self, ids: tuple[int, ...]) -> int:
        """Spread workers over the range so they do not all race for the first id."""
        stride = max(len(ids) // max(self.count, 1), 1)
        return ids[(self.index * stride) % len(ids)]
