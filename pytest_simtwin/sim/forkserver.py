"""A warm fork server for simulators: import MuJoCo, rclpy and the simulator once, fork one per request.

Starting ``simtwin-sim`` costs ~0.65 s of CPU before it can publish, nearly all of it importing
MuJoCo, rclpy and the message packages. This server pays that once: it imports them (creating no
threads and no ROS context, so forking stays safe) and then forks a simulator per request, which
publishes its first odometry ~0.2 s later. Eight simulators for a pool, or one per xdist worker,
then cost one import instead of eight.

Protocol (newline-delimited JSON on an abstract Unix socket, one connection per simulator)::

    -> {"op": "spawn", "args": [...], "env": {...}, "cwd": "...", "log": "/path/sim.log"}
    <- {"pid": 1234}            then later, when the simulator exits:
    <- {"exit": 0}              (negative: killed by that signal)
    -> {"op": "hello"}          a client's keep-alive connection
    <- {"pid": <server pid>}

A simulator dies with its connection: when a client (an xdist worker) is killed, the kernel closes
its sockets and the server SIGKILLs that client's simulators. The server exits once no client has
been connected for ``--idle-exit`` seconds, and its children get ``PR_SET_PDEATHSIG`` so they never
outlive it. Started by :mod:`pytest_simtwin.backends.forkclient`; ``python -m
pytest_simtwin.sim.forkserver --name NAME`` runs it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

from pytest_simtwin.sim import msgbuild
from pytest_simtwin.sim.forkpad import EXIT_FORK_FAILED

PR_SET_PDEATHSIG = 1
EXIT_INTERNAL = EXIT_FORK_FAILED
_HANDLED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT)

# Everything a simulator imports before it publishes (measured with -X importtime): ~0.6 s.
PRELOAD = (
    "numpy",
    "mujoco",
    "rclpy",
    "rclpy.context",
    "rclpy.executors",
    "rclpy.node",
    "rclpy.qos",
    "rclpy.signals",
    "rclpy.callback_groups",
    "geometry_msgs.msg",
    "nav_msgs.msg",
    "sensor_msgs.msg",
    "rosgraph_msgs.msg",
    "diagnostic_msgs.srv",
    "pytest_simtwin.sim.cli",
    "pytest_simtwin.sim.node",
    "pytest_simtwin.sim.runner",
    "pytest_simtwin.sim.engine.physics",
    "pytest_simtwin.sim.world.sdf",
    "pytest_simtwin.sim.world.urdf",
    "pytest_simtwin.sim.world.mjcf",
    "pytest_simtwin.sim.engine.lidar",
    "pytest_simtwin.sim.topics",
    "pytest_simtwin.sim.sensor_node",
    # imported lazily by rclpy when the first node and entities are created
    "rosidl_generator_py.import_type_support_impl",
    "type_description_interfaces.msg",
    "rcl_interfaces.msg",
    "std_msgs.msg",
    "numpy.random",
    "hashlib",
    "secrets",
)
# Message and service classes whose C type support (a shared library each) a simulator loads.
WARM_TYPES = (
    ("geometry_msgs.msg", "Twist"),
    ("geometry_msgs.msg", "TwistStamped"),
    ("nav_msgs.msg", "Odometry"),
    ("sensor_msgs.msg", "JointState"),
    ("sensor_msgs.msg", "LaserScan"),
    ("sensor_msgs.msg", "Imu"),  # IMUs and cameras (sensor_node.py)
    ("sensor_msgs.msg", "Image"),
    ("sensor_msgs.msg", "CameraInfo"),
    ("rosgraph_msgs.msg", "Clock"),
    ("diagnostic_msgs.srv", "AddDiagnostics"),
    ("rcl_interfaces.msg", "ParameterEvent"),
    ("type_description_interfaces.srv", "GetTypeDescription"),
)


def _without_message_generator() -> None:
    """Make ``rosidl_generator_py`` import only its ``import_type_support``.

    Its ``__init__`` also imports the message *generator* (the rosidl_parser grammar through lark,
    empy: ~45 ms of the server's start, on the first simulator's critical path) that only builds
    of message packages use. Every message class imports the package to load its type support.
    Here (a simulator process of ours, never a user's process) the package is a plain namespace
    over the same files, so submodules, the generator included, still import on demand.
    """
    import importlib.util
    import types

    if "rosidl_generator_py" in sys.modules:
        return
    spec = importlib.util.find_spec("rosidl_generator_py")
    if spec is None or not spec.submodule_search_locations:
        return
    package = types.ModuleType("rosidl_generator_py")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__spec__ = spec
    sys.modules["rosidl_generator_py"] = package
    try:
        from rosidl_generator_py.import_type_support_impl import import_type_support
    except ImportError:
        del sys.modules["rosidl_generator_py"]  # let the real package report what is missing
        return
    package.import_type_support = import_type_support  # type: ignore[attr-defined]


def preload() -> list[str]:
    """Import :data:`PRELOAD`; returns the modules that could not be imported (they load in the child)."""
    os.environ.setdefault("MUJOCO_GL", "disable")  # never render: no GLFW/X11 libraries
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no BLAS thread pool to lose in the fork
    _without_message_generator()
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    # Built once per machine (not on PyPI): children publish /tf and contact sensors with them.
    for package, cls in (("tf2_msgs", "TFMessage"), ("ros_gz_interfaces", "Contacts")):
        try:
            msgbuild.ensure(package)
            missing += [] if msgbuild.import_type(f"{package}.msg", cls) else [f"{package}.msg.{cls}"]
        except Exception:  # no compiler: the simulators then run without them and say why
            missing.append(package)
    for module, cls in WARM_TYPES:
        try:
            getattr(importlib.import_module(module), cls).__class__.__import_type_support__()
        except (ImportError, AttributeError):
            missing.append(f"{module}.{cls}")
    return missing


def warm_world() -> None:
    """Load and compile the built-in world once.

    The first world load in a process pays ~35 ms of one-time set-up (lazy imports, parser and
    compiler state); done here, no forked simulator pays it again.
    """
    try:
        from pytest_simtwin.sim.engine.physics import Physics
        from pytest_simtwin.sim.world.sdf import load_world

        Physics(load_world(None, None, None), seed=0)
    except Exception as exc:  # only a warm-up: each simulator reports its own world's errors
        print(f"simtwin fork server: warm-up of the built-in world failed: {exc}", flush=True)


def _peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's user id (SO_PEERCRED), None when the kernel does not say."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _send(conn: socket.socket, payload: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(payload).encode() + b"\n")


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died between fork and prctl
        os._exit(EXIT_INTERNAL)


_SHOWN_FIRST = ("GZ_PARTITION", "ROS_DOMAIN_ID")


def _proc_areas() -> tuple[tuple[int, int], tuple[int, int]] | None:
    """(arg_start, arg_end), (env_start, env_end) of this process, from /proc/self/stat (Linux >= 3.5)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        arg_start, arg_end, env_start, env_end = (int(f) for f in fields[45:49])
    except (OSError, ValueError, IndexError):
        return None
    return (arg_start, arg_end), (env_start, env_end)


def _overwrite(area: tuple[int, int], entries: list[str]) -> None:
    start, end = area
    size = end - start
    data = b""
    for entry in entries:  # whole entries only, NUL-terminated, as many as fit
        raw = entry.encode(errors="replace") + b"\0"
        if len(data) + len(raw) > size:
            break
        data += raw
    ctypes.memmove(start, data + b"\0" * (size - len(data)), size)


def _show_as(argv: list[str], env: dict[str, str]) -> None:
    """Make /proc/self/{cmdline,environ} describe the simulator instead of the server.

    Safe because nothing points into those areas any more: Python copied them at start-up and
    the environment was just replaced through putenv (libc's environ holds the new strings).
    """
    areas = _proc_areas()
    if areas is None:
        return
    first = [f"{k}={env[k]}" for k in _SHOWN_FIRST if k in env]
    rest = [f"{k}={v}" for k, v in env.items() if k not in _SHOWN_FIRST]
    with contextlib.suppress(Exception):  # cosmetic for ps; only the reaper's lookup depends on it
        _overwrite(areas[0], argv)
        _overwrite(areas[1], first + rest)


def _run_child(request: dict[str, Any], server_pid: int, close_fds: list[int], ready_fd: int) -> None:
    """In the forked child: become a clean ``simtwin-sim`` process and run it; never returns."""
    code = EXIT_INTERNAL
    try:
        signal.set_wakeup_fd(-1)
        for sig in _HANDLED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.setsid()  # its own process group: stop() signals the group, like a Popen child
        _die_with_parent(server_pid)
        os.write(ready_fd, b"1")
        os.close(ready_fd)
        log_fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        # The environment C code reads (DDS, rmw) is the process environment: replace it whole.
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        os.chdir(request.get("cwd") or "/")
        args = [str(a) for a in request["args"]]
        sys.argv = [sys.executable, "-m", "pytest_simtwin.sim", *args]
        _show_as(sys.argv, dict(os.environ))
        from pytest_simtwin.sim.cli import main

        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_INTERNAL
    except BaseException:
        print("simtwin fork server: the forked simulator failed before it could run:", file=sys.stderr, flush=True)
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


class Server:
    """The select loop: accept connections, fork on ``spawn``, report exits, kill orphans, idle out."""

    def __init__(self, name: str, idle_exit: float) -> None:
        self.name = name
        self.idle_exit = idle_exit
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conns: dict[socket.socket, bytes] = {}  # connection -> unparsed input
        self.child_of: dict[socket.socket, int] = {}
        self.conn_of: dict[int, socket.socket] = {}

    def bind(self, wait: float = 0.0) -> bool:
        """Claim the abstract name; False when another server still holds it after ``wait`` seconds.

        A client starts a server only when the one holding the name did not answer: that one is
        usually on its way out (idle exit, interpreter teardown), so the name frees up shortly.
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                self.listener.bind("\0" + self.name)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        self.listener.listen(64)
        return True

    def serve(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
        stop: list[int] = []
        signal.signal(signal.SIGTERM, lambda sig, _f: stop.append(sig))
        idle_since: float | None = time.monotonic()
        print(f"simtwin fork server {self.name} ready (pid {os.getpid()})", flush=True)
        warm = True
        while not stop:
            by_fd = {c.fileno(): c for c in self.conns}
            readable, _, _ = select.select([self.listener.fileno(), wake_r, *by_fd], [], [], 0.0 if warm else 0.5)
            if warm and not readable:
                warm = False  # once, when no request waits: a waiting simulator comes first
                warm_world()
            for fd in readable:
                if fd == self.listener.fileno():
                    conn, _addr = self.listener.accept()
                    if _peer_uid(conn) != os.getuid():
                        # Abstract sockets are visible to every user of the host: only our own
                        # user may make us fork (a spawn request names files we then write).
                        conn.close()
                        continue
                    self.conns[conn] = b""
                elif fd == wake_r:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 4096)
                else:
                    self._on_input(by_fd[fd], [self.listener.fileno(), wake_r, wake_w])
            self._reap()
            if self.conns:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_exit:
                if self._connection_waiting():
                    continue  # a client connected after the select: serve it instead of leaving it hanging
                break
        # Refuse new clients at once: one that connects to a server on its way out would wait for a
        # reply that never comes, then start a server that cannot bind the name yet.
        self.listener.close()
        for pid in list(self.conn_of):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        self._reap()
        return 0

    def _connection_waiting(self) -> bool:
        readable, _, _ = select.select([self.listener.fileno()], [], [], 0.0)
        return bool(readable)

    def _on_input(self, conn: socket.socket, server_fds: list[int]) -> None:
        try:
            data = conn.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self.conns[conn] + data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            self._handle(conn, line, server_fds)
        if conn in self.conns:
            self.conns[conn] = buf

    def _handle(self, conn: socket.socket, line: bytes, server_fds: list[int]) -> None:
        try:
            request = json.loads(line)
            op = request["op"]
        except (ValueError, KeyError, TypeError) as exc:
            _send(conn, {"error": f"bad request ({exc}); expected a JSON object with 'op'"})
            return
        if op == "hello":
            _send(conn, {"pid": os.getpid()})
        elif op == "spawn":
            if conn in self.child_of:
                _send(conn, {"error": "this connection already has a simulator; open one per simulator"})
                return
            missing = [k for k in ("args", "env", "log") if k not in request]
            if missing:
                _send(conn, {"error": f"spawn request without {missing}"})
                return
            fds = [*server_fds, *(c.fileno() for c in self.conns)]
            # Signals stay blocked across the fork until the child has dropped our handlers: an
            # early SIGTERM must end the child, not run the server's handler inside it.
            signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
            ready_r, ready_w = os.pipe()
            server_pid = os.getpid()  # taken before the fork: a child whose server died at once must notice
            try:
                pid = os.fork()
                if pid == 0:
                    _run_child(request, server_pid, [*fds, ready_r], ready_w)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED)
                os.close(ready_w)
            # Answer only once the child leads its own process group: a client that signals the
            # group (stop(), or dropping its connection) right after the reply must reach it.
            with contextlib.suppress(OSError):
                select.select([ready_r], [], [], 5.0)
            os.close(ready_r)
            self.child_of[conn] = pid
            self.conn_of[pid] = conn
            _send(conn, {"pid": pid})
        else:
            _send(conn, {"error": f"unknown op {op!r}; expected 'spawn' or 'hello'"})

    def _drop(self, conn: socket.socket) -> None:
        """A client went away (closed, or was killed): its simulator must not outlive it."""
        self.conns.pop(conn, None)
        pid = self.child_of.pop(conn, None)
        if pid is not None:
            for kill in (os.killpg, os.kill):  # its group, and it (should it not lead one)
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            conn.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.conn_of.pop(pid, None)
            if conn is not None:
                self.child_of.pop(conn, None)
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                # Whatever the simulator left in its group dies with it, as with a Popen child.
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_simtwin.sim.forkserver", description=__doc__.split("\n")[0])
    parser.add_argument("--name", required=True, help="abstract Unix socket name to serve on")
    parser.add_argument("--idle-exit", type=float, default=2.0, help="exit after this many seconds without clients")
    parser.add_argument("--pad", default="", help="room for the children's command lines (ignored)")
    parser.add_argument(
        "--bind-wait", type=float, default=3.0, help="seconds to wait for a server on its way out to free the name"
    )
    args = parser.parse_args(argv)
    server = Server(args.name, args.idle_exit)
    if not server.bind(args.bind_wait):
        print(f"simtwin fork server {args.name}: already served by another process", flush=True)
        return 0
    missing = preload()
    if missing:
        print(f"not preloaded (imported per simulator instead): {', '.join(missing)}", flush=True)
    if threading.active_count() != 1:
        # A Python thread could hold a lock (the import lock, logging's) that the child then waits
        # for forever. (The two idle threads rclpy's C extension starts at load are known: the
        # children run without them and exit through os._exit, never joining them.)
        print(f"refusing to serve: {threading.active_count()} Python threads after the imports", flush=True)
        return 1
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
