"""Client of the simulator fork server (:mod:`pytest_simtwin.sim.forkserver`): warm simulator starts.

One server per machine and code version is shared by every process that starts embedded
simulators (all xdist workers of a run, a SimPool): the first one starts it under a file lock,
the others connect. Each process keeps a keep-alive connection while it lives; the server exits
a few seconds after the last one closed. When the server cannot run, :func:`shared_server` returns
``None`` and simulators start as ordinary processes (the reason is logged once).

``SIMTWIN_FORK_SERVER=0`` turns it off for a process; the plugin's ``--simtwin-fork-server`` too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_simtwin.ros import domains
from pytest_simtwin.sim import forkpad

log = logging.getLogger("simtwin.forkserver")

START_TIMEOUT = 30.0  # the server's imports take ~0.6 s; a loaded CI runner can take much longer
ENV_SWITCH = "SIMTWIN_FORK_SERVER"
# Per-process variables that must not leak into the shared server: a partition reaper finds
# processes by GZ_PARTITION and would kill the server of everybody.
_PRIVATE_ENV = ("ROS_DOMAIN_ID", "GZ_PARTITION", "IGN_PARTITION", "SIMTWIN_WORKER")


def _code_version() -> str:
    """Hash of what the server imports from us plus what decides how libraries load."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(sys.executable.encode())
    for var in ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "AMENT_PREFIX_PATH", "RMW_IMPLEMENTATION"):
        h.update(f"{var}={os.environ.get(var, '')}\0".encode())
    for path in sorted(root.rglob("*.py")):
        with contextlib.suppress(OSError):
            st = path.stat()
            h.update(f"{path}:{st.st_mtime_ns}:{st.st_size}\0".encode())
    return h.hexdigest()[:16]


class ForkedProcess:
    """A simulator forked by the server: the parts of ``subprocess.Popen`` that ManagedProcess uses.

    Its exit status arrives on its connection (the server is its parent and reaps it).
    """

    def __init__(self, conn: socket.socket, pid: int, buffered: bytes = b"") -> None:
        self._conn = conn
        self.pid = pid
        self.returncode: int | None = None
        self._buf = buffered
        # poll() runs in more than one thread (a control probe beside the wait for the first
        # message): one reader at a time, and never a blocking recv after another took the data.
        self._lock = threading.Lock()
        self._parse()

    def _parse(self) -> None:
        while b"\n" in self._buf and self.returncode is None:
            line, self._buf = self._buf.split(b"\n", 1)
            with contextlib.suppress(ValueError, TypeError):
                msg = json.loads(line)
                if "exit" in msg:
                    self.returncode = int(msg["exit"])

    def _read(self, timeout: float) -> None:
        with self._lock:
            self._read_locked(timeout)

    def _read_locked(self, timeout: float) -> None:
        if self.returncode is not None:
            return
        try:
            ready, _, _ = select.select([self._conn], [], [], max(timeout, 0.0))
            if not ready:
                return
            data = self._conn.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except (OSError, ValueError):
            data = b""
        if not data:
            # The server went away without a word: it was killed, and its children with it (pdeathsig).
            self.returncode = -signal.SIGKILL if not domains.process_alive(self.pid) else None
            if self.returncode is None:
                time.sleep(min(timeout, 0.05))
            return
        self._buf += data
        self._parse()

    def poll(self) -> int | None:
        self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"simulator pid {self.pid}", timeout or 0.0)
            self._read(min(left, 1.0))
        self.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()


class ForkServer:
    """Handle on a running fork server (``name`` is its abstract socket name)."""

    def __init__(self, name: str, keepalive: socket.socket, server_pid: int) -> None:
        self.name = name
        self._keepalive = keepalive  # open while this process lives: keeps the server up
        self.server_pid = server_pid

    def _connect(self, timeout: float) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        conn.connect("\0" + self.name)
        return conn

    def spawn(
        self, args: Sequence[str], *, env: Mapping[str, str], log_path: Path, cwd: Path | None = None
    ) -> ForkedProcess:
        """Fork a simulator running ``simtwin-sim ARGS``; raises OSError when the server is gone."""
        conn = self._connect(10.0)
        try:
            request = {
                "op": "spawn",
                "args": list(args),
                "env": dict(env),
                "log": str(log_path),
                "cwd": str(cwd or os.getcwd()),
            }
            conn.sendall(json.dumps(request).encode() + b"\n")
            reply, rest = _read_line(conn, 10.0)
        except (OSError, ValueError):
            conn.close()
            raise
        if "pid" not in reply:
            conn.close()
            raise OSError(f"the fork server refused: {reply.get('error', reply)}")
        conn.settimeout(None)
        return ForkedProcess(conn, int(reply["pid"]), rest)


def _read_line(conn: socket.socket, timeout: float) -> tuple[dict[str, Any], bytes]:
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        conn.settimeout(max(deadline - time.monotonic(), 0.01))
        data = conn.recv(4096)
        if not data:
            raise OSError("the fork server closed the connection")
        buf += data
    line, rest = buf.split(b"\n", 1)
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise ValueError(f"unexpected reply {reply!r}")
    return reply, rest


_lock = threading.Lock()
_server: ForkServer | None = None
_disabled: str | None = None


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "off", "false", "no")


def _hello(name: str, timeout: float) -> tuple[socket.socket, int]:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(timeout)
        conn.connect("\0" + name)
        conn.sendall(b'{"op": "hello"}\n')
        reply, _ = _read_line(conn, timeout)
        return conn, int(reply["pid"])
    except BaseException:
        conn.close()
        raise


def _start_server(name: str, log_path: Path) -> subprocess.Popen[bytes]:

    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env["OPENBLAS_NUM_THREADS"] = "1"
    env[forkpad.ENV_PAD_VAR] = "x" * forkpad.ENV_PAD  # room for each child's environment
    pad = "x" * forkpad.ARGV_PAD
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest_simtwin.sim.forkserver", "--name", name, "--pad", pad],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # not in a worker's group: it serves every worker of the run
            close_fds=True,
        )


def shared_server() -> ForkServer | None:
    """This machine's fork server for the current code, started if needed; None when unavailable."""
    global _server, _disabled
    if not enabled():
        return None
    with _lock:
        if _server is not None:
            return _server
        if _disabled is not None:
            return None
        name = f"simtwin-fork-{os.getuid()}-{_code_version()}"
        try:
            log_path = domains.state_dir() / f"{name}.log"
            with (domains.state_dir() / f"{name}.lock").open("a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)  # one starter; the others wait, then connect
                try:
                    conn, pid = _hello(name, 1.0)
                except OSError:
                    proc = _start_server(name, log_path)
                    conn, pid = _await_server(name, proc, log_path)
        except (OSError, ValueError, KeyError) as exc:
            _disabled = str(exc)
            log.warning("simulator fork server unavailable (%s); starting simulators as plain processes", exc)
            return None
        _server = ForkServer(name, conn, pid)
        return _server


def current_server() -> ForkServer | None:
    """The server this process uses now (None: none yet, or it was forgotten)."""
    return _server


def forget(server: ForkServer) -> None:
    """Drop a server that stopped answering: the next :func:`shared_server` starts or finds another."""
    global _server
    with _lock:
        if _server is server:
            _server = None
    with contextlib.suppress(OSError):
        server._keepalive.close()


def prewarm() -> None:
    """Start (or find) the shared server in the background: the first simulator then forks warm."""
    if enabled() and _server is None and _disabled is None:
        threading.Thread(target=shared_server, name="simtwin-forkserver-prewarm", daemon=True).start()


def _await_server(name: str, proc: subprocess.Popen[bytes], log_path: Path) -> tuple[socket.socket, int]:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return _hello(name, max(deadline - time.monotonic(), 0.1))
        except OSError as exc:
            code = proc.poll()
            if code is not None or time.monotonic() >= deadline:
                tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-5:]) if log_path.exists() else ""
                if code is None:
                    proc.kill()
                raise OSError(
                    f"the fork server did not come up ({exc}; exit code {code}); its log {log_path}: {tail}"
                ) from None
            time.sleep(0.02)
