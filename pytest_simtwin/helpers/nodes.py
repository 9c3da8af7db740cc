"""Nodes under test as processes on the worker's domain (``launch_node``) and the ``ros_node`` helper.

A launched node gets the domain's ROS environment (fast-discovery profile) plus the user's, runs in
its own process group with PR_SET_PDEATHSIG and is recorded on the domain lease (shared
``backends.processes.ManagedProcess``), so it dies with the worker and a killed worker's node is
reaped by the next session. Its output goes to a log file that the report links; at teardown it is
stopped with SIGINT (rclpy shuts down cleanly), then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.tracebacks import hide_frames
from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.processes import ManagedProcess
from pytest_simtwin.errors import ConfigError, WaitTimeout, format_log_tail
from pytest_simtwin.ros.msgtypes import resolve_msg_type

if TYPE_CHECKING:
    from pytest_simtwin.results.records import TestRecord
    from pytest_simtwin.ros.domains import DomainLease
    from pytest_simtwin.ros.session import RosSession, TopicBuffer

_counter = itertools.count(1)
SIGINT_GRACE = 3.0  # seconds a node gets to shut down on SIGINT before SIGTERM
TERM_GRACE = 2.0


def as_type(msg_type: type | str) -> type:
    """A message/service class, or ``"pkg/msg/Type"`` / ``"pkg/srv/Type"`` resolved lazily."""
    return resolve_msg_type(msg_type) if isinstance(msg_type, str) else msg_type


def fill_fields(msg: Any, fields: Mapping[str, Any], path: str = "") -> Any:
    """Set (nested) fields of a ROS message from a dict; unknown field names are a ConfigError."""
    for key, value in fields.items():
        if not hasattr(msg, key):
            fields_of = getattr(msg, "get_fields_and_field_types", None)
            names = ", ".join(fields_of()) if fields_of is not None else "?"
            raise ConfigError(f"{type(msg).__name__} has no field '{path}{key}'; its fields: {names}")
        if isinstance(value, Mapping):
            fill_fields(getattr(msg, key), value, f"{path}{key}.")
        else:
            setattr(msg, key, value)
    return msg


def node_argv(cmd: str | Path | Sequence[str], args: Sequence[str] = ()) -> list[str]:
    """Turn what the user gave into an argv.

    A ``.py`` file runs with this interpreter; a list is used as is; text with spaces is split like
    a shell would; an executable on PATH runs as is; a dotted name that Python can import runs with
    ``python -m``.
    """
    extra = [str(a) for a in args]
    if isinstance(cmd, (list, tuple)):
        return [str(c) for c in cmd] + extra
    text = str(cmd)
    if isinstance(cmd, Path) or text.endswith(".py"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(
                f"node script {path} does not exist: expected a Python file (path relative to {Path.cwd()})"
            )
        return [sys.executable, str(path.resolve()), *extra]
    if any(ch.isspace() for ch in text.strip()):
        return shlex.split(text) + extra
    if shutil.which(text):
        return [text, *extra]
    if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", text):
        try:
            found = importlib.util.find_spec(text) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return [sys.executable, "-m", text, *extra]
    raise ConfigError(
        f"cannot run node {text!r}: expected a .py file, an executable on PATH, an importable Python module "
        f"(run with python -m) or an argv list"
    )


class NodeProcess:
    """A running node under test: ``pid``, ``alive``, ``returncode``, ``log_tail()``, ``stop()``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        proc: ManagedProcess,
        *,
        respawn: Callable[[], ManagedProcess] | None = None,
        events: list[dict[str, Any]] | None = None,
        clock: Callable[[], float | None] | None = None,
    ) -> None:
        self.name = name
        self._clock = clock  # sim time now (None: no simulator): node faults are drawn on the plots there
        self.argv = argv
        self._proc = proc
        self._respawn = respawn  # a fresh ManagedProcess with the same command, environment and log
        self._events = events  # the test's record.faults: node faults are listed with the others

    # -- node faults: kill, pause/resume, restart (robustness tests) --------------------------------
    def kill(self) -> None:
        """SIGKILL the node's process group, as a crash would (no shutdown handlers run)."""
        self._signal(signal.SIGKILL, "node_kill")
        popen = self._proc.proc
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=TERM_GRACE)

    def pause(self) -> None:
        """SIGSTOP the node's group: it stays alive but does nothing (a hung node)."""
        self._signal(signal.SIGSTOP, "node_pause")

    def resume(self) -> None:
        """SIGCONT a paused node."""
        self._signal(signal.SIGCONT, "node_resume")

    def restart(self) -> None:
        """Stop the node (as at teardown) and start it again with the same command; the log continues."""
        if self._respawn is None:
            raise ConfigError(f"node {self.name} cannot be restarted: it was not started by launch_node")
        self._note("node_restart")
        self.stop()
        self._proc = self._respawn()
        self._proc.start()

    def _signal(self, sig: signal.Signals, kind: str) -> None:
        popen = self._proc.proc
        if popen is None or popen.poll() is not None:
            raise ConfigError(f"{kind}: node {self.name} is not running ({self.death_reason()})")
        self._note(kind)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)

    def _note(self, kind: str) -> None:
        """List the fault in the test's record, with where the node's log stood (the report shows around it)."""
        if self._events is None:
            return
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        event = {"kind": kind, "target": self.name, "pid": self._proc.pid, "wall_time": time.time(),
                 "log": str(self.log_path), "log_offset": offset}  # fmt: skip
        sim_time = self._clock() if self._clock is not None else None
        if sim_time is not None:
            event["at"] = sim_time
            event["duration"] = 0.0  # an instant: a line on the plots
        self._events.append(event)

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.is_alive()

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode()

    @property
    def log_path(self) -> Path:
        return self._proc.log_path

    def log_tail(self, lines: int = 30) -> list[str]:
        return self._proc.log_tail(lines)

    def log_text(self) -> str:
        self._proc.log_tail(1)  # flushes
        return self.log_path.read_text(errors="replace")

    def death_reason(self) -> str | None:
        code = self.returncode
        return None if code is None else f"node {self.name} (pid {self.pid}) exited with code {code}"

    def assert_alive(self) -> None:
        """Fail (with the exit code and the log tail) if the node exited."""
        __tracebackhide__ = True
        reason = self.death_reason()
        if reason is not None:

            raise AssertionError(
                f"{reason}; expected it to keep running. Its log: {self.log_path}\n"
                f"{format_log_tail(self.log_tail(), f'node {self.name} log')}"
            )

    def stop(self, sigint_grace: float | None = None) -> int | None:
        """SIGINT the node's group, then SIGTERM, then SIGKILL; returns its exit code. Idempotent."""
        sigint_grace = SIGINT_GRACE if sigint_grace is None else sigint_grace
        popen = self._proc.proc
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(popen.pid, signal.SIGCONT)  # a paused node (pause()) must see the SIGINT
                os.killpg(popen.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=sigint_grace)
        return self._proc.stop(grace=TERM_GRACE)

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.returncode}"
        return f"<NodeProcess {self.name} pid {self._proc.pid} {state}>"


def log_excerpt(path: Path, offset: int, lines: int = 12, span: int = 8192) -> tuple[str, str]:
    """The last ``lines`` lines of ``path`` before byte ``offset`` and the first ``lines`` after it."""
    with path.open("rb") as f:
        start = max(0, offset - span)
        f.seek(start)
        before = f.read(offset - start).decode(errors="replace").splitlines()
        after = f.read(span).decode(errors="replace").splitlines()
    if start > 0 and before:
        before = before[1:]  # a partial first line
    return "\n".join(before[-lines:]), "\n".join(after[:lines])


class NodeLauncher:
    """The ``launch_node`` fixture: ``launch_node(cmd, ...) -> NodeProcess``; stops every node on close."""

    def __init__(
        self,
        ros: RosSession,
        env: Mapping[str, str],
        *,
        lease: DomainLease | None,
        workdir: Path,
        record: TestRecord | None = None,
        clock: Callable[[], float | None] | None = None,
    ) -> None:
        self.ros = ros
        self.clock = clock
        self.env = dict(env)
        self.lease = lease
        self.workdir = Path(workdir)
        self.record = record
        self.nodes: list[NodeProcess] = []

    @hide_frames
    def __call__(
        self,
        cmd: str | Path | Sequence[str],
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        ready_topic: str | None = None,
        ready_type: type | str | None = None,
        timeout: float = 30.0,
    ) -> NodeProcess:
        """Start a node; with ``ready_topic`` wait for its first message (fails with its log tail)."""
        argv = node_argv(cmd, args)
        if ready_topic is not None and ready_type is None:
            raise ConfigError(f"launch_node: ready_topic {ready_topic!r} needs ready_type (e.g. 'std_msgs/msg/String')")
        msg_type = as_type(ready_type) if ready_type is not None else None
        base = name or Path(argv[1] if argv[0] == sys.executable and len(argv) > 1 else argv[0]).stem
        if base == "-m" and len(argv) > 2:
            base = argv[2].rsplit(".", 1)[-1]
        label = re.sub(r"[^\w.-]", "_", base) or "node"
        log_path = self.workdir / f"node-{label}-{next(_counter)}.log"
        full_env = dict(self.env)
        if env:
            full_env.update({str(k): str(v) for k, v in env.items()})
        buf = self.ros.subscribe(ready_topic, msg_type) if ready_topic and msg_type else None
        start_count = buf.count if buf is not None else 0
        def spawn() -> ManagedProcess:
            return ManagedProcess(argv, env=full_env, log_path=log_path, kind="node", lease=self.lease)

        proc = spawn()
        node = NodeProcess(label, argv, proc, respawn=spawn, events=self.record.faults if self.record else None,
                           clock=self.clock)  # fmt: skip
        proc.start()
        self.nodes.append(node)
        if self.record is not None:
            self.record.artifacts[f"node:{label}"] = str(log_path)
        if buf is not None and ready_topic is not None:
            self._wait_ready(node, buf, start_count, ready_topic, timeout)
        return node

    def _wait_ready(self, node: NodeProcess, buf: TopicBuffer, start_count: int, topic: str, timeout: float) -> None:
        def error(message: str) -> WaitTimeout:
            node.log_tail(1)
            code = node.returncode
            hint = (
                f"node {node.name} exited with code {code}"
                if code is not None
                else f"node {node.name} (pid {node.pid}) is running but did not publish"
            )
            return WaitTimeout(
                f"{message}. Expected `{shlex.join(node.argv)}` to publish {topic} on ROS_DOMAIN_ID "
                f"{self.ros.domain_id}; {hint}. Its whole log: {node.log_path}",
                log_tail=node.log_tail(),
                log_title=f"node {node.name} log",
            )

        wait_until(
            lambda: buf.count > start_count,
            timeout,
            what=f"the first {buf.msg_type.__name__} on {topic} from node {node.name}",
            describe=lambda: f"publishers on {topic}: {self.ros.count_publishers(topic)}",
            abort=node.death_reason,
            error=error,
        )

    def close(self) -> None:
        """Stop every node this launcher started (newest first), then put each node fault's log excerpt
        into the test's record (the report shows the log around the fault); never raises."""
        import warnings

        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                was_running, t0 = node.alive, time.monotonic()
                code = node.stop()
                if was_running and code == -signal.SIGKILL:
                    # Shown in pytest's warnings summary under the test: a node that ignores SIGINT
                    # and SIGTERM costs every test its grace periods and hides shutdown bugs.
                    warnings.warn(
                        f"node {node.name} (pid {node.pid}) ignored SIGINT and SIGTERM and was killed with "
                        f"SIGKILL after {time.monotonic() - t0:.1f} s at teardown; expected it to exit on SIGINT "
                        f"(rclpy: rclpy.spin() raises KeyboardInterrupt / ExternalShutdownException). "
                        f"Its log: {node.log_path}",
                        stacklevel=2,
                    )
        for event in self.record.faults if self.record is not None else ():
            if "log_offset" in event and "log_before" not in event:
                with contextlib.suppress(OSError, ValueError):
                    event["log_before"], event["log_after"] = log_excerpt(Path(event["log"]), int(event["log_offset"]))

    def __enter__(self) -> NodeLauncher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RosNodeHelper:
    """The ``ros_node`` fixture: wait for messages, publish, subscribe and call services on the sim domain."""

    def __init__(
        self,
        ros: RosSession,
        *,
        log_tail: Callable[[], list[str]] | None = None,
        abort: Callable[[], str | None] | None = None,
    ) -> None:
        self.ros = ros
        self._log_tail = log_tail
        self._abort = abort

    @property
    def node(self) -> Any:
        """The raw rclpy node (kept alive for the whole session; do not destroy it)."""
        return self.ros._require_node()

    @property
    def domain_id(self) -> int:
        return self.ros.domain_id

    def _error(self, message: str) -> WaitTimeout:
        tail = (self._log_tail() if self._log_tail is not None else None) or None  # no simulator: no block
        return WaitTimeout(message, log_tail=tail)

    def subscribe(self, topic: str, msg_type: type | str, qos: Any = None) -> TopicBuffer:
        """A buffer recording every message on ``topic`` from now on (``.messages()``, ``.latest()``)."""
        return self.ros.subscribe(topic, as_type(msg_type), qos)

    def publisher(self, topic: str, msg_type: type | str, qos: Any = None) -> Any:
        return self.ros.publisher(topic, as_type(msg_type), qos)

    @hide_frames
    def wait_for_subscribers(self, topic: str, msg_type: type | str, count: int = 1, timeout: float = 5.0) -> Any:
        """Wait until ``count`` readers matched our publisher of ``topic`` (else the first messages are lost)."""
        pub = self.publisher(topic, msg_type)
        wait_until(
            lambda: pub.get_subscription_count() >= count,
            timeout,
            what=f"{count} subscriber(s) of {topic} on ROS_DOMAIN_ID {self.domain_id}",
            describe=lambda: f"{pub.get_subscription_count()} matched",
            abort=self._abort,
            error=self._error,
        )
        return pub

    @hide_frames
    def wait_for_publishers(
        self, topic: str, msg_type: type | str, count: int = 1, timeout: float = 5.0
    ) -> TopicBuffer:
        """Subscribe and wait until ``count`` publishers matched it; returns the buffer.

        Call this before triggering a one-off reply (publish, service call): a reader that matches
        after the reply was sent never receives it.
        """
        cls = as_type(msg_type)
        buf = self.ros.subscribe(topic, cls)
        sub = next(
            s
            for s in self.node.subscriptions
            if s.msg_type is cls and s.topic_name == self.node.resolve_topic_name(topic)
        )
        wait_until(
            lambda: sub.get_publisher_count() >= count,
            timeout,
            what=f"{count} publisher(s) of {topic} on ROS_DOMAIN_ID {self.domain_id}",
            describe=lambda: f"{sub.get_publisher_count()} matched our subscription",
            abort=self._abort,
            error=self._error,
        )
        return buf

    @hide_frames
    def publish(
        self, topic: str, msg_type: type | str, msg: Any = None, *, wait_for_subscribers: int = 1, timeout: float = 5.0
    ) -> Any:
        """Publish a message (or a dict of its fields) once ``wait_for_subscribers`` readers matched."""
        cls = as_type(msg_type)
        if msg is None or isinstance(msg, Mapping):
            msg = fill_fields(cls(), msg or {})
        pub = (
            self.wait_for_subscribers(topic, cls, wait_for_subscribers, timeout)
            if wait_for_subscribers
            else self.publisher(topic, cls)
        )
        pub.publish(msg)
        return msg

    @hide_frames
    def wait_for_message(
        self,
        topic: str,
        msg_type: type | str,
        timeout: float = 5.0,
        predicate: Callable[[Any], bool] | None = None,
        *,
        since: float | None = None,
    ) -> Any:
        """The first message on ``topic`` arriving after ``since`` (default now) that matches ``predicate``.

        On timeout the error names the domain, the publishers and the messages that did not match.
        """
        import time

        cls = as_type(msg_type)
        buf = self.ros.subscribe(topic, cls)
        start = time.monotonic() if since is None else since
        rejected: list[Any] = []

        def probe() -> Any | None:
            rejected.clear()
            for r in buf.since(start):
                if predicate is None or predicate(r.msg):
                    return r.msg
                rejected.append(r.msg)
            return None

        def describe() -> str:
            parts = [f"ROS_DOMAIN_ID {self.domain_id}", f"publishers on {topic}: {self.ros.count_publishers(topic)}"]
            if rejected:
                shown = "; ".join(f"{m!r:.200}" for m in rejected[-3:])
                parts.append(f"{len(rejected)} message(s) arrived but none matched the predicate, last: {shown}")
            else:
                parts.append("no message arrived")
            return ", ".join(parts)

        return wait_until(
            probe,
            timeout,
            what=f"a {cls.__name__} on {topic}" + (" matching the predicate" if predicate else ""),
            describe=describe,
            abort=self._abort,
            error=self._error,
        )

    @hide_frames
    def call_service(self, srv_type: type | str, name: str, request: Any = None, timeout: float = 10.0) -> Any:
        """Call a service (``request`` a Request, a dict of its fields, or None) and return the response."""
        cls = as_type(srv_type)
        if request is None or isinstance(request, Mapping):
            request = fill_fields(cls.Request(), request or {})  # type: ignore[attr-defined]
        return self.ros.call(cls, name, request, timeout)
