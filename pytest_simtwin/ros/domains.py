"""Cross-process allocation of ROS_DOMAIN_IDs (and matching GZ_PARTITIONs).

Each domain is one lock file under the state directory, held with ``flock`` by the process that
leases it. The kernel drops the lock when that process dies (even on SIGKILL), so a killed pytest
worker never leaks its domain. The lease also records the processes started on the domain
(simulators, nodes under test); whoever acquires a stale lease first kills those leftovers, so an
orphaned simulator can never talk into the next session's domain.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_simtwin._internal.statedir import default_state_dir as default_state_dir  # re-exported
from pytest_simtwin._internal.statedir import state_dir as state_dir
from pytest_simtwin.errors import DomainError
from pytest_simtwin.ros.domain_ids import DEFAULT_DOMAIN_RANGE as DEFAULT_DOMAIN_RANGE  # re-exported
from pytest_simtwin.ros.domain_ids import MAX_DOMAIN_ID as MAX_DOMAIN_ID
from pytest_simtwin.ros.domain_ids import parse_domain_range as parse_domain_range


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (field 22 of /proc/PID/stat), to survive pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """True if ``pid`` runs and (when given) started at ``start_time``; zombies count as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    return start_time is None or _proc_start_time(pid) == start_time


def terminate_pid(pid: int, start_time: str | None = None, grace: float = 2.0) -> bool:
    """SIGTERM then SIGKILL a process (and its process group when it leads one). True if it was alive."""
    if not process_alive(pid, start_time):
        return False
    targets: list[tuple[Any, int]] = []
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            targets.append((os.killpg, pid))
    targets.append((os.kill, pid))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for fn, target in targets:
            with contextlib.suppress(OSError):
                fn(target, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            if not process_alive(pid, start_time):
                return True
            time.sleep(0.02)
    return True


@dataclass
class DomainLease:
    """A held ROS domain: ``with acquire_domain(...) as lease: ...`` releases it on every path."""

    domain_id: int
    partition: str
    path: Path
    owner: str
    _fd: int | None = None
    children: list[dict[str, Any]] = field(default_factory=list)

    def _write(self) -> None:
        if self._fd is None:
            return
        record = {
            "domain_id": self.domain_id,
            "partition": self.partition,
            "owner": self.owner,
            "owner_pid": os.getpid(),
            "owner_start": _proc_start_time(os.getpid()),
            "host": socket.gethostname(),
            "children": self.children,
            "since": time.time(),
        }
        data = json.dumps(record).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def add_child(self, pid: int, kind: str, extra: dict[str, Any] | None = None) -> None:
        """Record a process (or container, via ``extra``) started on this domain for leftover reaping."""
        entry: dict[str, Any] = {"pid": pid, "start": _proc_start_time(pid), "kind": kind}
        if extra:
            entry.update(extra)
        self.children.append(entry)
        self._write()

    def remove_child(self, pid: int) -> None:
        self.children = [c for c in self.children if c.get("pid") != pid]
        self._write()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Kill recorded children still alive, clear the record and drop the lock."""
        if self._fd is None:
            return
        for child in self.children:
            pid = child.get("pid")
            if isinstance(pid, int) and pid > 0:
                terminate_pid(pid, child.get("start"))
        self.children = []
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> DomainLease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


#: Callbacks that remove non-process leftovers (e.g. docker containers) named in a stale lease.
_stale_child_reapers: list[Any] = []


def register_stale_child_reaper(fn: Any) -> None:
    """Register ``fn(child_record) -> bool`` to clean up a stale lease's non-process child."""
    if fn not in _stale_child_reapers:
        _stale_child_reapers.append(fn)


def _reap_stale(fd: int) -> list[str]:
    """Kill the leftovers recorded in a lease whose holder died. Returns what was reaped."""
    try:
        raw = os.pread(fd, 1 << 20, 0)
        record = json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return []
    reaped: list[str] = []
    for child in record.get("children", []):
        handled = False
        for reaper in _stale_child_reapers:
            with contextlib.suppress(Exception):
                handled = bool(reaper(child)) or handled
        pid = child.get("pid")
        if not handled and isinstance(pid, int) and pid > 0 and terminate_pid(pid, child.get("start")):
            reaped.append(f"{child.get('kind', 'process')} pid {pid} on domain {record.get('domain_id')}")
    os.ftruncate(fd, 0)
    return reaped


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _holder_summary(path: Path) -> str:
    try:
        record = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "unknown holder"
    return f"{record.get('owner', '?')} (pid {record.get('owner_pid', '?')})"


def acquire_domain(domains: Sequence[int], *, owner: str, prefer: int | None = None) -> DomainLease:
    """Lease the first free domain of ``domains`` (starting at ``prefer`` when given).

    Raises :class:`DomainError` listing the holders when every domain is taken.
    """
    ids = list(domains)
    if prefer is not None and prefer in ids:
        start = ids.index(prefer)
        ids = ids[start:] + ids[:start]
    try:
        directory = state_dir() / "domains"
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DomainError(
            f"cannot keep ROS domain leases in {os.environ.get('SIMTWIN_STATE_DIR') or 'the state directory'} "
            f"({exc}): expected a writable directory; point SIMTWIN_STATE_DIR at one, or unset it to use "
            f"{default_state_dir()}"
        ) from None
    for domain_id in ids:
        path = directory / f"domain-{domain_id}.lock"
        fd = _try_lock(path)
        if fd is None:
            continue
        _reap_stale(fd)
        lease = DomainLease(
            domain_id=domain_id,
            partition=f"simtwin_{socket.gethostname()}_{domain_id}_{os.getpid()}",
            path=path,
            owner=owner,
            _fd=fd,
        )
        lease._write()
        return lease
    holders = ", ".join(f"{d}: {_holder_summary(directory / f'domain-{d}.lock')}" for d in list(domains)[:8])
    raise DomainError(
        f"no free ROS_DOMAIN_ID: all {len(ids)} domains of the configured range are leased "
        f"(first holders: {holders}{', ...' if len(ids) > 8 else ''}). Expected at least one free id for "
        f"this worker. Use fewer xdist workers (-n), widen --simtwin-domain-range (safe ids: "
        f"{DEFAULT_DOMAIN_RANGE}), or stop the other simtwin sessions on this host. "
        f"Leases live in {directory}."
    )


def reap_leftovers(domains: Iterable[int] | None = None) -> list[str]:
    """Clean every stale lease (holder dead) in the state directory; used at session start."""
    try:
        directory = state_dir() / "domains"
    except OSError:  # unusable state directory: nothing to clean; a lease says so when one is needed
        return []
    if not directory.exists():
        return []
    wanted = set(domains) if domains is not None else None
    reaped: list[str] = []
    for path in sorted(directory.glob("domain-*.lock")):
        try:
            domain_id = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if wanted is not None and domain_id not in wanted:
            continue
        fd = _try_lock(path)
        if fd is None:
            continue  # held by a live process
        try:
            reaped.extend(_reap_stale(fd))
        finally:
            os.close(fd)
    return reaped
