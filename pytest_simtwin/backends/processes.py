"""Subprocess handling shared by every backend that starts local processes (embedded, process, pools).

A simulator child must never outlive the worker that started it, even on SIGKILL:

* it runs in its own process group (``start_new_session``) so stop() reaches everything it forked;
* it gets ``PR_SET_PDEATHSIG(SIGKILL)`` so the kernel kills it when the worker dies;
* it is recorded on the domain lease with the lease's partition, so the next session kills it and
  anything that inherited its environment (a ``sh -c`` pipeline's grandchildren, bridges) when
  it finds the stale lease (:func:`reap_partition`, registered with ``domains``).

Output goes to a log file (never a pipe that could fill up and block the simulator).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pytest_simtwin.backends.base import Backend
from pytest_simtwin.errors import BackendError
from pytest_simtwin.ros import domains

if TYPE_CHECKING:
    from pytest_simtwin.backends.forkclient import ForkedProcess
    from pytest_simtwin.ros.domains import DomainLease

    #: Starts the command another way (the fork server): (env, log path, cwd) -> a Popen-like process.
    Spawner = Callable[[Mapping[str, str], Path, Path | None], ForkedProcess]

PR_SET_PDEATHSIG = 1
_libc: Any = None


def _load_libc() -> Any:
    global _libc
    if _libc is None:
        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _make_preexec(parent_pid: int) -> Any:
    """A preexec_fn doing only async-signal-safe work (prctl, getppid, kill): libc is resolved before fork."""
    libc = _load_libc()
    prctl = libc.prctl if libc is not None else None

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody will send the signal.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def exit_with_parent() -> None:
    """Make this process (an xdist worker) die with its parent, so its own children die with it.

    Uses ``PR_SET_PDEATHSIG`` on ourselves; if the parent is already gone, exit right away.
    """
    libc = _load_libc()
    parent = os.getppid()
    if libc is not None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent or parent == 1:
        os.kill(os.getpid(), signal.SIGKILL)


def read_tail(path: Path | None, lines: int = 30, max_bytes: int = 64_000) -> list[str]:
    """The last ``lines`` lines of a text file (empty when it does not exist)."""
    if path is None:
        return []
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - max_bytes, 0))
            data = fh.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


def partition_members(partition: str, exclude: Sequence[int] = ()) -> list[int]:
    """Pids of processes whose environment has ``GZ_PARTITION=<partition>`` (ours, found through /proc)."""
    needle = f"GZ_PARTITION={partition}".encode()
    found: list[int] = []
    skip = {os.getpid(), *exclude}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_partition(partition: str, exclude: Sequence[int] = ()) -> list[int]:
    """SIGKILL every process that runs with ``GZ_PARTITION=<partition>``; returns their pids."""
    pids = partition_members(partition, exclude)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return pids


def reap_partition(child: Mapping[str, Any]) -> bool:
    """Stale-lease reaper: kill what a dead session's child left in its partition (see ``domains``).

    Returns False so ``domains`` also terminates the recorded pid itself.
    """
    partition = child.get("partition")
    if isinstance(partition, str) and partition.startswith("simtwin_"):
        kill_partition(partition)
    return False


def register_reaper() -> None:
    domains.register_stale_child_reaper(reap_partition)


class ManagedProcess:
    """One child process in its own group, logging to a file, recorded on the lease.

    ``with ManagedProcess(...) as p:`` starts it and stops it (and its group) on every path.
    """

    def __init__(
        self,
        argv: Sequence[str] | str,
        *,
        env: Mapping[str, str],
        log_path: Path,
        kind: str = "simulator",
        lease: DomainLease | None = None,
        shell: bool = False,
        cwd: Path | None = None,
        spawner: Spawner | None = None,
    ) -> None:
        self.argv = argv
        self.spawner = spawner
        self.env = dict(env)
        self.log_path = log_path
        self.kind = kind
        self.lease = lease
        self.shell = shell
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | ForkedProcess | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> ManagedProcess:
        if self.proc is not None:
            raise RuntimeError("process already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {self.argv if isinstance(self.argv, str) else ' '.join(self.argv)}\n".encode())
        self._log.flush()
        if self.spawner is not None:
            try:
                self.proc = self.spawner(self.env, self.log_path, self.cwd)
            except (OSError, ValueError) as exc:  # the fork server went away: start it the plain way
                self._log.write(f"(fork server failed: {exc}; starting a plain process)\n".encode())
                self._log.flush()
        if self.proc is None:
            self._popen()
        if self.lease is not None:
            assert self.proc is not None
            self.lease.add_child(
                self.proc.pid, self.kind, {"partition": self.env.get("GZ_PARTITION"), "pgid": self.proc.pid}
            )
        return self

    def _popen(self) -> None:
        args = ["/bin/sh", "-c", str(self.argv)] if self.shell else [str(a) for a in self.argv]
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_make_preexec(os.getpid()),
                close_fds=True,
            )
        except OSError as exc:
            self._close_log()
            cmd = self.argv if isinstance(self.argv, str) else self.argv[0]
            raise BackendError(
                f"cannot start the {self.kind} command {cmd!r}: {exc}. Expected an executable on PATH; "
                f"check the command (and the venv / ROS installation)."
            ) from None

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines: int = 30) -> list[str]:
        if self._log is not None:
            with contextlib.suppress(OSError, ValueError):
                self._log.flush()
        return read_tail(self.log_path, lines)

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, wait ``grace`` s, then SIGKILL it; idempotent, never raises."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5.0)
        # Whatever the leader left behind in its group (a shell pipeline's other commands).
        self._signal_group(signal.SIGKILL)
        if self.lease is not None:
            with contextlib.suppress(OSError):
                self.lease.remove_child(proc.pid)
        self._close_log()
        return proc.poll()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_log_counter = itertools.count(1)


class SubprocessBackend(Backend):
    """A backend whose simulator is one local command (embedded, process): lifecycle and logs."""

    kind = "simulator"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._proc: ManagedProcess | None = None
        self._log_path = self.workdir / f"{self.name}-sim-{os.getpid()}-{next(_log_counter)}.log"

    def command(self) -> tuple[Sequence[str] | str, bool]:
        """The argv (or shell text, with ``True``) to run."""
        raise NotImplementedError

    def spawner(self) -> Spawner | None:
        """A faster way to start the same command (the embedded fork server); None: a plain process."""
        return None

    def start(self) -> None:
        argv, shell = self.command()
        self._proc = ManagedProcess(
            argv,
            env=self.env,
            log_path=self._log_path,
            kind=self.kind,
            lease=self.lease,
            shell=shell,
            spawner=self.spawner(),
        ).start()

    def stop(self, grace: float = 5.0) -> None:
        if self._proc is not None:
            self._proc.stop(grace)

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode()

    def log_tail(self, lines: int = 30) -> list[str]:
        return self._proc.log_tail(lines) if self._proc is not None else read_tail(self._log_path, lines)

    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        """The simulator process's pid once started."""
        return self._proc.pid if self._proc is not None else None

    def describe(self) -> str:
        pid = f" (pid {self._proc.pid})" if self._proc is not None and self._proc.pid else ""
        return f"{self.name} simulator{pid} on ROS_DOMAIN_ID {self.domain_id}"
