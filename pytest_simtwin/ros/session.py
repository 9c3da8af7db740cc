"""A private rclpy context for the test process, kept alive for the whole session.

The plugin never touches rclpy's default context (users' own tests call ``rclpy.init()`` on it) and
creates nothing at import or session start. One node stays alive per session because the next node
of a context whose last node was destroyed needs 2-3 s to match; with one alive it takes ~25 ms.
Spinning happens in a background executor thread: ``spin_once`` from the test thread costs ~140 µs
a call and starves subscriptions.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import itertools
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.waiting import notify_arrival, wait_until
from pytest_simtwin.errors import ControlError, WaitTimeout
from pytest_simtwin.ros.deadlock import deadlock_watchdog
from pytest_simtwin.ros.environment import apply_environment

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

_counter = itertools.count()
#: Longest wait of one spin of the background executor (s); see RosSession._spin.
SPIN_WAIT = 1.0


def quiet_message_support() -> None:
    """Import the message type-support loader once, without its code generator.

    Every ROS message class loads ``rosidl_generator_py``, whose ``__init__`` also imports its code
    generator (``generate_py``: the rosidl parser, ``lark``, ``em``), which a test process never
    runs: ~18 ms of CPU in every worker, and ``lark`` imports the deprecated ``sre_parse``/
    ``sre_constants``, two DeprecationWarnings in the user's summary (an error under ``-W error``).
    The package's ``__init__`` tolerates a generator that fails to import: it is made to fail
    here, and ``generate_py`` stays importable from the package on first use (:func:`_generator`).
    """
    if "rosidl_generator_py" in sys.modules:
        return
    impl = "rosidl_generator_py.generate_py_impl"
    had_impl = impl in sys.modules
    if not had_impl:
        sys.modules[impl] = None  # type: ignore[assignment]  # the import machinery's "not importable"
    # The package logs the failed generator import at debug level, with a traceback: not news here.
    pkg_log = logging.getLogger("rosidl_generator_py")
    was_disabled, pkg_log.disabled = pkg_log.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"module 'sre_(parse|constants)' is deprecated", DeprecationWarning)
            with contextlib.suppress(ImportError):  # reported by the message import itself
                package = importlib.import_module("rosidl_generator_py")
                if not hasattr(package, "generate_py"):
                    vars(package)["__getattr__"] = _generator  # PEP 562: looked up in the module namespace
    finally:
        pkg_log.disabled = was_disabled
        if not had_impl and sys.modules.get(impl, ...) is None:
            del sys.modules[impl]


def _generator(name: str) -> Any:
    """``rosidl_generator_py.generate_py``, imported when someone asks for it (see quiet_message_support)."""
    if name != "generate_py":
        raise AttributeError(f"module 'rosidl_generator_py' has no attribute {name!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"module 'sre_(parse|constants)' is deprecated", DeprecationWarning)
        return importlib.import_module("rosidl_generator_py.generate_py_impl").generate_py


@dataclass
class Received:
    """One message with the wall-clock (monotonic) time it arrived in this process."""

    msg: Any
    t: float


class TopicBuffer:
    """Thread-safe record of the messages a subscription received (bounded)."""

    def __init__(self, topic: str, msg_type: type, maxlen: int = 100_000) -> None:
        self.topic = topic
        self.msg_type = msg_type
        self._items: collections.deque[Received] = collections.deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.count = 0  # total received, unaffected by maxlen and clear()

    def _callback(self, msg: Any) -> None:
        with self._lock:
            self._items.append(Received(msg, time.monotonic()))
            self.count += 1
        notify_arrival()  # wakes the waits polling for it (wait_until)

    def latest(self) -> Any | None:
        with self._lock:
            return self._items[-1].msg if self._items else None

    def since(self, t: float) -> list[Received]:
        # Items are appended in arrival order: walk back from the newest, so polling waits over a
        # long session's full buffer stay cheap.
        with self._lock:
            out: list[Received] = []
            for r in reversed(self._items):
                if r.t < t:
                    break
                out.append(r)
        out.reverse()
        return out

    def messages(self) -> list[Any]:
        with self._lock:
            return [r.msg for r in self._items]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def latched_qos(depth: int = 100) -> Any:
    """Reliable, transient local: a reader that joins late still gets the publisher's history."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def sensor_qos(depth: int = 50) -> Any:
    """Reliability BEST_AVAILABLE: reliable against reliable publishers (the simulator's), best effort
    against best-effort ones already discovered.

    A plain best-effort reader loses samples on a loaded host (measured: whole odometry bursts of a
    lockstep simulator on 2 busy cores), which makes sim-time waits step further than asked.
    With no publisher discovered yet the middleware picks reliable.
    """
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_AVAILABLE)


class RosSession:
    """A private rclpy context + one long-lived node + a background executor on one domain."""

    def __init__(self, domain_id: int, env: Mapping[str, str] | None = None, name: str = "simtwin_test") -> None:
        self.domain_id = domain_id
        self._env = env
        self._name = name
        self.context: Context | None = None
        self.node: Node | None = None
        self._executor: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stop_guard: Any = None
        self._buffers: dict[tuple[str, str], TopicBuffer] = {}
        self._fresh: list[str] = []  # topics subscribed since the last take_fresh()
        self._publishers: dict[tuple[str, str], Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> RosSession:
        quiet_message_support()
        import rclpy  # lazy: rclpy and DDS load at the first simulation test, not at plugin import
        from rclpy.executors import SingleThreadedExecutor

        if self._env is not None:
            # Fast DDS reads the profile when the participant is created: set it before init.
            apply_environment(self._env)
        self.context = rclpy.Context()
        # Context.init, not rclpy.init: no signal handlers in the test process (pytest owns Ctrl-C)
        # and no share in rclpy's global logging set-up, whose reference-counted fini deadlocked
        # worker teardown (seen with several contexts per process); node logs go to stderr.
        self.context.init(domain_id=self.domain_id, initialize_logging=False)
        self.node = rclpy.create_node(f"{self._name}_{next(_counter)}", context=self.context)
        # Single-threaded: callbacks only fill buffers; the multi-threaded executor re-scans its
        # list of pending futures on every callback and took ~10x the CPU on message bursts.
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._stopping = threading.Event()
        # Triggered by close(): running its (empty) callback ends the current spin_once at once.
        # Executor.wake() only makes the wait start over, so stopping took up to the 0.1 s timeout.
        self._stop_guard = self.node.create_guard_condition(lambda: None)
        self._thread = threading.Thread(target=self._spin, name=f"simtwin-ros-{self.domain_id}", daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException, Exception):
            # close() ends a wait at once (its guard condition) and new endpoints wake the executor
            # (rclpy rebuilds its wait set), so the timeout only bounds a lost wake-up: each timed-out
            # wait costs a wait-set rebuild, and at 0.1 s an idle worker spent ~4 ms of CPU a second.
            while not self._stopping.is_set():
                self._executor.spin_once(timeout_sec=SPIN_WAIT)

    def close(self) -> None:
        """Stop the spin thread, then destroy the node, the executor and the context, in that order.

        Shutting the context down under a spinning executor made the spin thread destroy a
        publisher itself, holding the GIL while Fast DDS waited for its event thread: a worker
        hung at teardown (seen once in CI-like runs). Nothing is destroyed while it spins.
        """
        if self.context is None:
            return
        ctx, self.context = self.context, None
        # Bounded: a Fast DDS deadlock (eProsima/Fast-DDS#6502) would otherwise hang here for good.
        with deadlock_watchdog():
            self._stopping.set()
            with contextlib.suppress(Exception):
                self._stop_guard.trigger()  # end the current wait now rather than after its 0.1 s
            thread = self._thread
            if thread is not None:
                thread.join(timeout=2.0)
            if thread is not None and thread.is_alive():
                # A callback still runs: let the context shutdown wake and end the loop (bounded).
                with contextlib.suppress(Exception):
                    ctx.shutdown()
                thread.join(timeout=5.0)
            with contextlib.suppress(Exception):
                self._executor.shutdown(timeout_sec=1.0)
            with contextlib.suppress(Exception):
                if self.node is not None:
                    self.node.destroy_node()
            with contextlib.suppress(Exception):
                if ctx.ok():
                    ctx.shutdown()
        self.node = None
        self._buffers.clear()
        self._fresh.clear()
        self._publishers.clear()
        self._clients.clear()

    def __enter__(self) -> RosSession:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def active(self) -> bool:
        return self.context is not None and self.context.ok()

    def _require_node(self) -> Node:
        if self.node is None:
            raise RuntimeError("RosSession is not started")
        return self.node

    # -- topics ------------------------------------------------------------------------------
    def subscribe(self, topic: str, msg_type: type, qos: Any = None) -> TopicBuffer:
        """Subscribe once per (topic, type) and return the buffer that records what arrives."""
        key = (topic, f"{msg_type.__module__}.{msg_type.__name__}")
        with self._lock:
            buf = self._buffers.get(key)
            if buf is None:
                buf = TopicBuffer(topic, msg_type)
                self._require_node().create_subscription(
                    msg_type, topic, buf._callback, qos if qos is not None else sensor_qos()
                )
                self._buffers[key] = buf
                self._fresh.append(topic)
            return buf

    def is_subscribed(self, topic: str, msg_type: type) -> bool:
        """Whether :meth:`subscribe` already holds a subscription for (topic, type)."""
        with self._lock:
            return (topic, f"{msg_type.__module__}.{msg_type.__name__}") in self._buffers

    def take_fresh(self) -> list[str]:
        """Topics subscribed since the last call (a stepping client asks the simulator to match them first)."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return fresh

    def buffers(self) -> list[TopicBuffer]:
        """Every subscription's buffer (a copy of the list)."""
        with self._lock:
            return list(self._buffers.values())

    def clear_buffers(self) -> None:
        """Forget every received message (after a simulator restart, old messages are not news)."""
        with self._lock:
            for buf in self._buffers.values():
                buf.clear()

    def publisher(self, topic: str, msg_type: type, qos: Any = None) -> Any:
        key = (topic, f"{msg_type.__module__}.{msg_type.__name__}")
        with self._lock:
            pub = self._publishers.get(key)
            if pub is None:
                pub = self._require_node().create_publisher(msg_type, topic, qos if qos is not None else 10)
                self._publishers[key] = pub
            return pub

    def wait_for_message(
        self,
        topic: str,
        msg_type: type,
        timeout: float = 5.0,
        predicate: Callable[[Any], bool] | None = None,
        *,
        since: float | None = None,
        context: str = "",
    ) -> Any:
        """Wait for a message on ``topic`` that arrives after ``since`` (default: now) and matches."""
        buf = self.subscribe(topic, msg_type)
        start = time.monotonic() if since is None else since
        seen: list[int] = [0]

        def probe() -> Any | None:
            items = buf.since(start)
            seen[0] = len(items)
            for r in items:
                if predicate is None or predicate(r.msg):
                    return r.msg
            return None

        def describe() -> str:
            parts = [f"domain {self.domain_id}", f"{seen[0]} message(s) arrived on {topic}"]
            if seen[0] and predicate is not None:
                parts.append(f"none matched the predicate; last: {buf.latest()!r:.300}")
            if not seen[0]:
                parts.append(f"publishers on {topic}: {self.count_publishers(topic)}")
            if context:
                parts.append(context)
            return "; ".join(parts)

        return wait_until(probe, timeout, what=f"a {msg_type.__name__} on {topic}", describe=describe)

    def await_publishers_at_most(self, topic: str, count: int, timeout: float) -> bool:
        """Wait (bounded) until at most ``count`` publishers of ``topic`` are known; False if more still are."""
        try:
            wait_until(
                lambda: self.count_publishers(topic) <= count, timeout, what=f"at most {count} publisher(s) on {topic}"
            )
        except WaitTimeout:
            return False
        return True

    def count_publishers(self, topic: str) -> int:
        return int(self._require_node().count_publishers(topic))

    def topic_types(self) -> dict[str, list[str]]:
        return {name: list(types) for name, types in self._require_node().get_topic_names_and_types()}

    # -- services ----------------------------------------------------------------------------
    def call(
        self,
        srv_type: type,
        name: str,
        request: Any,
        timeout: float = 10.0,
        abort: Callable[[], str | None] | None = None,
        resend: float | None = None,
    ) -> Any:
        """Call a service and wait for the reply; raises :class:`ControlError` on timeout.

        ``abort()`` returns a reason to stop waiting early (the server's process died).
        ``resend`` (idempotent services only): send the request again every ``resend`` s (doubling)
        until one reply arrives. A reply sent before the server has matched our reply reader is
        lost; on a loaded machine that window lasts seconds after ``service_is_ready()``.
        """
        key = (name, f"{srv_type.__module__}.{srv_type.__name__}")
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._require_node().create_client(srv_type, name)
                self._clients[key] = client
        deadline = time.monotonic() + timeout
        try:
            wait_until(
                lambda: client.service_is_ready(),
                timeout,
                what=f"service {name} on domain {self.domain_id}",
                abort=abort,
            )
        except WaitTimeout as exc:
            raise ControlError(str(exc)) from None
        done = threading.Event()
        futures = [client.call_async(request)]
        futures[0].add_done_callback(lambda _f: done.set())
        next_send = None if resend is None else time.monotonic() + resend
        interval = resend
        # Wait in slices so that a dead server ends the wait at once instead of at the timeout.
        while not done.wait(min(max(deadline - time.monotonic(), 0.0), 0.25 if interval is None else interval)):
            now = time.monotonic()
            reason = abort() if abort is not None else None
            if reason or now >= deadline:
                for pending in futures:
                    with contextlib.suppress(Exception):
                        client.remove_pending_request(pending)
                if reason:
                    raise ControlError(f"stopped waiting for an answer from service {name}: {reason}")
                raise ControlError(f"service {name} on domain {self.domain_id} did not answer within {timeout:.1f} s")
            if next_send is not None and interval is not None and now >= next_send:
                again = client.call_async(request)
                again.add_done_callback(lambda _f: done.set())
                futures.append(again)
                interval = min(interval * 2, 1.0)
                next_send = now + interval
        future = next(f for f in futures if f.done())
        for pending in futures:
            if pending is not future:
                with contextlib.suppress(Exception):
                    client.remove_pending_request(pending)
        if future.exception() is not None:
            raise ControlError(f"service {name} failed: {future.exception()}")
        return future.result()
