"""When to start the simulator fork server: as soon as it is known that tests will need it.

Importing MuJoCo, rclpy and numpy takes the server ~0.5 s, on the first simulation test's critical
path. The server is started (in the background, a separate process; nothing of ROS in this one)

* when the plugin is registered (pytest's first call into it, ~0.1 s before ``pytest_configure``) if
  the same command in the same directory used the fork server the last time it ran (a marker file per
  (directory, arguments) in the state directory, like pytest's own cache, but there even with
  ``-p no:cacheprovider``), and
* otherwise at the first collected test that uses ``sim``.

A wrong guess costs an idle server that exits 2 s after this process; the marker follows what the
run collected, so the next run guesses right.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.statedir import state_dir

if TYPE_CHECKING:
    from pytest_simtwin.runtime.settings import Settings


def wants_fork_server(settings: Settings) -> bool:
    """Whether this run's simulators come from the fork server (embedded backend, fork server on)."""
    return settings.backend_class.wants_fork_server(settings.sim)


def prewarm(settings: Settings) -> None:
    """Tests will need embedded simulators: start the warm fork server now, in the background."""
    if wants_fork_server(settings):
        from pytest_simtwin.backends import forkclient

        forkclient.prewarm()


def _marker(directory: Path, args: Sequence[str]) -> Path:
    key = hashlib.sha256("\0".join([str(directory), *args]).encode()).hexdigest()[:20]
    return state_dir() / "warmup" / f"uses-fork-server-{key}"


def invocation(config: Any) -> tuple[Path, tuple[str, ...]]:
    """The command this run answers to: its directory and arguments (an xdist worker: its controller's)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput:  # workers run in the controller's directory and are told its command line
        return Path.cwd(), tuple(str(a) for a in workerinput.get("mainargv", ())[1:])
    return Path(config.invocation_params.dir), tuple(str(a) for a in config.invocation_params.args)


_started_for: tuple[Path, tuple[str, ...]] | None = None  # the command start_if_used_last_time started it for


def start_if_used_last_time() -> None:
    """At plugin registration: start the server if this very command used it last time.

    Only the current directory and ``sys.argv`` are known this early (they are what pytest records as
    its invocation for a command-line run). An xdist worker's ``sys.argv`` is its bootstrap's, not
    the command's (and PYTEST_XDIST_WORKER is inherited by any pytest a test starts, so it cannot tell
    a worker): a worker normally finds no marker and leaves the start to its controller; if it does
    find one, it only connects to the one server of the machine.
    """
    global _started_for
    try:
        command = (Path.cwd(), tuple(sys.argv[1:]))
    except OSError:  # the working directory was removed: nothing to go by
        return
    if not _exists(*command):
        return
    from pytest_simtwin.backends import forkclient

    forkclient.prewarm()
    _started_for = command


def started_early(config: Any) -> bool:
    """Whether :func:`start_if_used_last_time` already started the server for this run's command."""
    return _started_for is not None and _started_for == invocation(config)


def _exists(directory: Path, args: Sequence[str]) -> bool:
    try:  # a hint only: an unusable state directory must not break pytest (this runs in every run)
        return _marker(directory, args).exists()
    except OSError:
        return False


def used_last_time(config: Any) -> bool:
    return _exists(*invocation(config))


def remember(config: Any, used: bool) -> None:
    """Record whether this run used the fork server (only a change touches the disk)."""
    with contextlib.suppress(OSError):  # a hint only: an unwritable state dir costs the early start
        marker = _marker(*invocation(config))
        if used and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        elif not used and marker.exists():
            marker.unlink()
