"""The simulator's ROS 2 node: its contexts and spin threads, entities, the control services, shutdown.

Everything here is plain rclpy with standard messages. The node lives in a private context and is
spun by a background executor thread; the runner's loop (the only thread touching physics) calls
the ``publish_*`` methods (:mod:`pytest_simtwin.sim.publishing`), takes the velocity commands
(:mod:`pytest_simtwin.sim.commands`) and drains :attr:`SimNode.requests`, which the service callbacks
fill. Each robot's publishers and messages: :mod:`pytest_simtwin.sim.robot_io`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_simtwin.control import protocol
from pytest_simtwin.sim import joint_commands
from pytest_simtwin.sim import transforms as transforms_mod
from pytest_simtwin.sim.commands import Commands
from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.joint_commands import JointCommandQueue
from pytest_simtwin.sim.matching import Matches
from pytest_simtwin.sim.publishing import Publishing
from pytest_simtwin.sim.robot_io import RobotIO, make_robot_io, scan_message
from pytest_simtwin.sim.topics import Topics

log = logging.getLogger("simtwin.sim")


# -- requests from service callbacks to the runner loop ---------------------------------------------
@dataclass
class Request:
    """One control call waiting for the runner loop; ``reply`` is (success, payload)."""

    name: str
    payload: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    reply: tuple[bool, dict[str, Any]] = (False, {"error": "not handled"})

    def finish(self, ok: bool, payload: dict[str, Any]) -> None:
        self.reply = (ok, payload)
        self.done.set()


class SimNode(Commands, Publishing):
    """rclpy node of the simulator: publishers, cmd_vel subscriptions, services, background spin.

    Sending is :class:`~pytest_simtwin.sim.publishing.Publishing`'s, the commands
    :class:`~pytest_simtwin.sim.commands.Commands`'.

    Every robot of the world has its own command, odometry, ground-truth, joint-state and lidar topics.
    A command topic takes Twist and TwistStamped at once by default: one DDS participant cannot hold
    two types on one topic, so the second type is subscribed by a second node in its own context.
    """

    def __init__(self, *, namespace: str = protocol.NAMESPACE, domain_id: int | None = None) -> None:
        """Create the context and node: DDS discovery starts now, while the caller loads the world."""
        self.namespace = namespace.rstrip("/") or "/"
        self.domain_id = domain_id
        self.requests: queue.Queue[Request] = queue.Queue()
        self._cmd_lock = threading.Lock()
        self.cmd_count = 0
        self.dropped: dict[str, int] = {}  # topic -> messages the DDS writer refused
        self.faults: FaultSet | None = None  # set by the runner: sensor and command faults
        self.pub_faults: Any = None
        self._sent: dict[str, float] = {}  # topic -> stamp of the last message sent while faults were active
        self._type_errors: set[tuple[str, str, str]] = set()
        self._wake: Callable[[], None] | None = None
        #: position-controller commands (JointTrajectory, Float64MultiArray) for the runner
        self.joint_commands = JointCommandQueue()
        self.matches = Matches()  # subscribers joining our publishers wake the runner
        self._spinners: list[tuple[Any, Any, Any, threading.Thread | None]] = []  # (context, node, executor, thread)
        self.robots: dict[str, RobotIO] = {}
        self.scan_pubs: list[tuple[Any, Any]] = []  # by physics lidar index: (publisher, message)
        self.context, self.node = self._context_node("simtwin_sim")
        self._thread: threading.Thread | None = None
        self._executor: Any = None

    def _context_node(self, name: str) -> tuple[Any, Any]:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        context = rclpy.Context()
        # No rosout publisher and no log files under ~/.ros: we log to stderr; the runner owns signals.
        rclpy.init(
            args=["--ros-args", "--disable-rosout-logs", "--disable-external-lib-logs"],
            context=context,
            domain_id=self.domain_id,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        try:
            # No parameter services (6 services, ~70 ms of start-up CPU and discovery traffic): the
            # simulator has no run-time parameters; its settings are the command line.
            node = rclpy.create_node(name, context=context, start_parameter_services=False, enable_rosout=False)
        except BaseException:
            with contextlib.suppress(Exception):
                rclpy.shutdown(context=context)
            raise
        self._spinners.append((context, node, None, None))
        return context, node

    def start(
        self,
        topics: Topics,
        *,
        joint_names: Sequence[str] = (),
        lidar: Any = None,
        lidars: Sequence[Any] = (),
        static_transforms: Sequence[tuple[str, str, Any]] = (),
    ) -> None:
        """Create publishers, the command subscriptions and the services, then spin in background threads.

        ``lidars``: every simulated lidar in physics order (``ScanTopic.index``); ``lidar``: the one lidar
        of a single-lidar robot (older callers).
        """
        from rclpy.executors import SingleThreadedExecutor

        self.topics = topics
        wants_tf = any(t.tf or t.tf_static for t in topics.robots)
        self._tf_type = transforms_mod.tf_message_type() if wants_tf else None
        self._tf_pubs: dict[str, Any] = {}
        self._make_entities(joint_names, list(lidars) or ([lidar] if lidar is not None else []))
        self._publish_static(static_transforms)
        # One thread per context: a service callback only queues its request and waits for the runner, so
        # nothing needs a second one. rclpy's MultiThreadedExecutor (2 threads, a callback group each for
        # commands and services) served the next request 0.15-0.75 s late after about one test in five
        # (no UDP drops, not cured by waking the executor every 50 ms); with this one: none in 42 runs
        # of the tutorial's three tests, ~0.4 s faster per run.
        for i, (context, node, _executor, _thread) in enumerate(self._spinners):
            executor = SingleThreadedExecutor(context=context)
            executor.add_node(node)
            thread = threading.Thread(target=self._spin, args=(executor,), name=f"simtwin-sim-ros{i}", daemon=True)
            self._spinners[i] = (context, node, executor, thread)
            thread.start()
        self._executor, self._thread = self._spinners[0][2], self._spinners[0][3]

    # -- construction -----------------------------------------------------------------------------
    def _make_entities(self, joint_names: Sequence[str], lidars: Sequence[Any]) -> None:
        from diagnostic_msgs.srv import AddDiagnostics
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import LaserScan

        node = self.node
        # Reliable with a deep history (see _robot_entities).
        self.pub_clock = self.matches.publisher(node, Clock, self.topics.clock, 100)
        self.msg_clock = Clock()
        for t in self.topics.robots:
            self.robots[t.robot or "robot"] = self._robot_entities(t)
        primary = next(iter(self.robots.values()))
        # The first robot's entities under their single-robot names (cli, runner, older callers).
        self.pub_odom, self.msg_odom = primary.pub_odom, primary.msg_odom
        self.pub_truth, self.msg_truth = primary.pub_truth, primary.msg_truth
        self.pub_joints, self.msg_joints = primary.pub_joints, primary.msg_joints
        self.msg_joints.name = list(joint_names)
        scans = sorted((s for t in self.topics.robots for s in t.scans), key=lambda s: s.index)
        self.scan_pubs = []
        for scan in scans:
            spec = lidars[scan.index] if scan.index < len(lidars) else None
            pub = self.matches.publisher(node, LaserScan, scan.topic, 100)
            self.scan_pubs.append((pub, scan_message(scan, spec)))
        main = next((s for s in self.topics.scans if s.topic == self.topics.scan), None)
        self.pub_scan = self.scan_pubs[main.index][0] if main is not None else None
        self.msg_scan = self.scan_pubs[main.index][1] if main is not None else LaserScan()
        for name in protocol.SERVICES:
            node.create_service(
                AddDiagnostics,
                protocol.service_name(name, self.namespace),
                self._service_callback(name),
            )

    def _publish_static(self, transforms: Sequence[tuple[str, str, Any]]) -> None:
        """The description's fixed joints once, latched like robot_state_publisher's /tf_static."""
        self.pub_tf_static = None
        topic = self.topics.tf_static
        if self._tf_type is None or not topic or not transforms:
            return
        self.pub_tf_static = self.node.create_publisher(self._tf_type, topic, transforms_mod.latched_qos())
        self._send(self.pub_tf_static, transforms_mod.static_message(self._tf_type, transforms))

    def _robot_entities(self, t: Topics) -> RobotIO:
        from geometry_msgs.msg import Twist, TwistStamped

        io = make_robot_io(self.publisher, t, self._tf_type, self._tf_pubs)
        classes = {"twist": Twist, "twist_stamped": TwistStamped}
        for i, kind in enumerate(t.cmd_vel_types):
            if i >= len(self._spinners):  # the second type needs a participant of its own
                self._context_node(f"simtwin_sim_{kind}")
            sub_node = self._spinners[i][1]
            sub_node.create_subscription(classes[kind], t.cmd_vel, self._cmd_callback(io), 10)
        joint_commands.subscribe(self._spinners[0][1], t, self.joint_commands, self._wake_runner)
        return io

    def _wake_runner(self) -> None:
        if self._wake is not None:
            self._wake()

    def _spin(self, executor: Any) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # the executor must never take the process down silently
            log.exception("ROS executor thread failed")

    # -- faults -----------------------------------------------------------------------------------
    def announce_fault(self, event: str, fault: Any) -> None:
        """Publish a fault change on /simtwin/faults (JSON), so recordings and timelines show it."""
        from std_msgs.msg import String  # lazy: only simulators that get faults need it

        if self.pub_faults is None:  # created with the first fault: no extra endpoint otherwise
            from rclpy.qos import DurabilityPolicy, QoSProfile

            qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
            self.pub_faults = self.node.create_publisher(String, protocol.FAULTS_TOPIC, qos)

        spec = fault.describe()
        self._publish(self.pub_faults, String(data=json.dumps({"event": event, "t": self.faults_now(), **spec})))

    def faults_now(self) -> float:
        return self.faults.now if self.faults is not None else 0.0

    def sensor_topics(self) -> set[str]:
        """The topics sensor faults may target here: every robot's odometry, ground truth, joints and lidars."""
        pubs = [p for io in self.robots.values() for p in (io.pub_odom, io.pub_truth, io.pub_joints)]
        return {str(p.topic_name) for p in [*pubs, *(p for p, _m in self.scan_pubs)] if p is not None}

    # -- services ---------------------------------------------------------------------------------
    def _service_callback(self, name: str) -> Callable[[Any, Any], Any]:
        def callback(request: Any, response: Any) -> Any:
            try:
                payload = protocol.decode(request.load_namespace)
            except ValueError as exc:
                response.success = False
                response.message = protocol.encode(
                    {"error": f"{name}: request is not a JSON object ({exc}); send e.g. '{{\"steps\": 10}}'"}
                )
                return response
            req = Request(name, payload)
            self.requests.put(req)
            if self._wake is not None:
                self._wake()
            # The runner answers every request, also when it stops (see fail_pending).
            while not req.done.wait(0.1):
                if not self.context.ok():
                    req.finish(False, {"error": "the simulator is shutting down"})
            ok, body = req.reply
            response.success = ok
            response.message = protocol.encode(body)
            return response

        return callback

    def fail_pending(self, reason: str) -> None:
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                return
            req.finish(False, {"error": reason})

    def set_waker(self, fn: Callable[[], None]) -> None:
        self._wake = fn
        self.matches.set_waker(fn)

    def publisher(self, msg_type: Any, topic: str, qos: Any) -> Any:
        """A publisher on the main node whose subscribers joining wake the runner (sim/matching.py)."""
        return self.matches.publisher(self.node, msg_type, topic, qos)

    # -- shutdown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """rclpy.shutdown first, then join the spin threads (the other order aborts the process)."""
        import rclpy

        self.fail_pending("the simulator is shutting down")
        for context, _node, _executor, _thread in self._spinners:
            with contextlib.suppress(Exception):
                rclpy.shutdown(context=context)
        for _context, _node, executor, thread in self._spinners:
            if thread is not None:
                thread.join(timeout=2.0)
            if executor is not None:
                with contextlib.suppress(Exception):
                    executor.shutdown(timeout_sec=0.5)
        self.fail_pending("the simulator is shutting down")
        # Delete the DDS entities now: peers then drop our endpoints at once instead of after the
        # participant lease (10 s), and nothing is left for interpreter teardown.
        for context, node, _executor, _thread in self._spinners:
            with contextlib.suppress(Exception):
                node.destroy_node()
            with contextlib.suppress(Exception):
                context.destroy()
