"""Removal of simtwin containers whose owner is gone.

Three layers, so a killed run leaves nothing behind for long:

1. live link (in the backend): the worker holds the container's stdin; when the worker dies the
   entrypoint stops the simulator and the auto-remove container disappears within seconds;
2. lease record: the container is recorded on the domain lease; whoever takes the stale lease
   removes it (:func:`reap_lease_child`, registered with :mod:`pytest_simtwin.ros.domains`);
3. label sweep: every container carries ``simtwin.*`` labels naming the owner process (pid and its
   kernel start time, host); :func:`sweep` removes those whose owner no longer runs. It runs once per
   process before the first container starts and from ``simtwin image reap`` / ``python -m
   pytest_simtwin.backends.containers.reaper``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any

from pytest_simtwin.backends.containers.client import connect
from pytest_simtwin.errors import BackendError
from pytest_simtwin.ros.domains import _proc_start_time, process_alive, register_stale_child_reaper

LABEL = "simtwin.managed"
L_SESSION = "simtwin.session"
L_WORKER = "simtwin.worker"
L_PID = "simtwin.owner_pid"
L_START = "simtwin.owner_start"
L_HOST = "simtwin.host"
L_DOMAIN = "simtwin.domain"
L_PARTITION = "simtwin.partition"

_swept = threading.Event()


def session_id() -> str:
    """One id per pytest run: xdist's shared ``testrunuid`` when present, else the main pid."""
    return (
        os.environ.get("PYTEST_XDIST_TESTRUNUID")
        or f"pid{os.getppid() if 'PYTEST_XDIST_WORKER' in os.environ else os.getpid()}"
    )


def owner_labels(*, domain_id: int, partition: str) -> dict[str, str]:
    pid = os.getpid()
    return {
        LABEL: "1",
        L_SESSION: session_id(),
        L_WORKER: os.environ.get("PYTEST_XDIST_WORKER", "main"),
        L_PID: str(pid),
        L_START: _proc_start_time(pid) or "",
        L_HOST: socket.gethostname(),
        L_DOMAIN: str(domain_id),
        L_PARTITION: partition,
    }


def owner_alive(labels: Mapping[str, str]) -> bool:
    """True while the process that started the container runs (or it belongs to another host)."""
    if labels.get(L_HOST) not in (None, socket.gethostname()):
        return True  # a shared daemon: we cannot judge another host's processes
    try:
        pid = int(labels.get(L_PID, ""))
    except ValueError:
        return False
    return process_alive(pid, labels.get(L_START) or None)


def _client() -> Any | None:
    """A docker client, or None when docker is unavailable (reaping is then nothing to do)."""

    try:

        return connect(timeout=10.0)
    except BackendError:
        return None


def sweep(client: Any | None = None, *, everything: bool = False) -> list[str]:
    """Remove simtwin containers whose owner process is dead (all of them with ``everything``)."""
    client = client if client is not None else _client()
    if client is None:
        return []
    removed: list[str] = []
    try:
        found = client.api.containers(all=True, filters={"label": f"{LABEL}=1"})
    except Exception:
        return []
    for info in found:
        labels = info.get("Labels") or {}
        if not everything and owner_alive(labels):
            continue
        cid = str(info.get("Id", ""))
        with contextlib.suppress(Exception):
            client.api.remove_container(cid, force=True)
            removed.append(
                f"container {cid[:12]} (worker {labels.get(L_WORKER, '?')}, owner pid {labels.get(L_PID, '?')}, "
                f"domain {labels.get(L_DOMAIN, '?')})"
            )
    return removed


def sweep_once(client: Any | None = None) -> list[str]:
    """:func:`sweep` the first time a process asks (session start of a docker run)."""
    if _swept.is_set():
        return []
    _swept.set()
    return sweep(client)


def reap_lease_child(child: Mapping[str, Any]) -> bool:
    """Stale-lease reaper (see ``domains.register_stale_child_reaper``): remove a recorded container."""
    cid = child.get("container")
    if child.get("kind") != "container" or not isinstance(cid, str):
        return False
    client = _client()
    if client is None:
        return False
    with contextlib.suppress(Exception):
        client.api.remove_container(cid, force=True)
    # False: domains also terminates the recorded pid (the container's init), harmless if gone.
    return False


def register() -> None:
    """Let stale domain leases remove their recorded containers (see ``domains.register_stale_child_reaper``)."""

    register_stale_child_reaper(reap_lease_child)


def session_start() -> list[str]:
    """Session start of a docker run (controller): register the lease reaper, then sweep dead owners' containers."""
    register()
    return sweep_once()


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_simtwin.backends.containers.reaper [--all]``: remove leftover simtwin containers."""
    args = sys.argv[1:] if argv is None else argv
    removed = sweep(everything="--all" in args)
    for line in removed:
        print(f"removed {line}")
    print(f"{len(removed)} simtwin container(s) removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
