"""When to start the simulator fork server: as soon as it is known that tests will need it.

Importing MuJoCo, rclpy and numpy takes the server ~0.5 s, on the first simulation test's critical
path. The server is started (in the background, a separate process; nothing of ROS in this one)

* at ``pytest_configure`` when the same test paths in the same root directory used simulators the
  last time they ran (a marker file per (rootdir, paths) in the state directory, like pytest's own
  cache, but there even with ``-p no:cacheprovider``), and
* otherwise at the first collected test that uses ``sim``.

A wrong guess costs an idle server that exits 2 s after this process; the marker follows what the
run collected, so the next run guesses right.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from pathlib import Path

from .config import Settings
from .domains import state_dir


def prewarm(settings: Settings) -> None:
    """Tests will need embedded simulators: start the warm fork server now, in the background."""
    from .backends.embedded import uses_fork_server

    if settings.backend == "embedded" and uses_fork_server(settings.sim):
        from .backends import _forkclient

        _forkclient.prewarm()


def _marker(rootdir: Path, paths: Sequence[str]) -> Path:
    key = hashlib.sha256("\0".join([str(rootdir), *paths]).encode()).hexdigest()[:20]
    return state_dir() / "warmup" / f"uses-sim-{key}"


def used_simulators_last_time(rootdir: Path, paths: Sequence[str]) -> bool:
    return _marker(rootdir, paths).exists()


def remember(rootdir: Path, paths: Sequence[str], used: bool) -> None:
    """Record whether this run's tests use simulators (only a change touches the disk)."""
    marker = _marker(rootdir, paths)
    with contextlib.suppress(OSError):  # a hint only: an unwritable state dir costs the early start
        if used and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        elif not used and marker.exists():
            marker.unlink()
