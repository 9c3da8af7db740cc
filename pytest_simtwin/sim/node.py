"""The simulator's ROS 2 side: publishers, the cmd_vel subscription, the control services.

Everything here is plain rclpy with standard messages. The node lives in a private context and is
spun by a background executor thread; the runner's loop (the only thread touching physics) calls
the ``publish_*`` methods and drains :attr:`SimNode.requests`, which the service callbacks fill.
Message objects are created once and refilled: allocating them costs more than the physics step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_simtwin.control import protocol
from pytest_simtwin.sim import transforms as transforms_mod
from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.topics import CMD_VEL_TYPES, ScanTopic, Topics

log = logging.getLogger("simtwin.sim")

# Odometry covariances (row-major 6x6): planar wheel odometry knows x, y, yaw; z, roll and pitch are
# not observed, which robot_localization and nav2 read from a large variance.
_POSE_COV = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)
_TWIST_COV = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)


def _diag(values: Sequence[float]) -> list[float]:
    out = [0.0] * 36
    for i, v in enumerate(values):
        out[i * 7] = v
    return out


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


def _stamp_seconds(msg: Any) -> float:
    """The sim time a message is stamped with (/clock: its clock)."""
    stamp = msg.header.stamp if hasattr(msg, "header") else getattr(msg, "clock", None)
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9 if stamp is not None else 0.0


def _stamp(msg_stamp: Any, t: float) -> None:
    sec = math.floor(t)
    msg_stamp.sec = int(sec)
    msg_stamp.nanosec = min(round((t - sec) * 1e9), 999_999_999)


class RobotIO:
    """One robot's publishers, reusable messages and latest velocity command."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.cmd: tuple[float, float] = (0.0, 0.0)
        self.count = 0  # commands received
        self.seen = 0  # count when the runner last took the command
        self.pub_odom: Any = None
        self.pub_truth: Any = None
        self.pub_joints: Any = None
        self.msg_odom: Any = None
        self.msg_truth: Any = None
        self.msg_joints: Any = None
        self.pub_tf: Any = None  # the odom -> base transform (tf2_msgs/TFMessage), None: not published
        self.msg_tf: Any = None


class SimNode:
    """rclpy node of the simulator: publishers, cmd_vel subscriptions, services, background spin.

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
        self.pub_clock = node.create_publisher(Clock, self.topics.clock, 100)
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
            self.scan_pubs.append((node.create_publisher(LaserScan, scan.topic, 100), self._scan_msg(scan, spec)))
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
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import JointState

        io = RobotIO(t)
        node = self.node
        # Reliable KEEP_LAST like ros_gz_bridge: matches reliable and best-effort subscribers.
        # Reliable with a deep history: a step request publishes a burst (60 odometry messages for
        # 2 s of sim time) faster than a loaded reader acknowledges; with depth 10 the writer drops
        # unacknowledged samples of the burst (recordings and trajectories then miss them).
        depth = 100
        io.pub_odom = node.create_publisher(Odometry, t.odom, depth)
        io.pub_truth = node.create_publisher(Odometry, t.ground_truth, depth)
        io.pub_joints = node.create_publisher(JointState, t.joint_states, depth)
        io.msg_odom = Odometry()
        io.msg_odom.header.frame_id = t.frame_id
        io.msg_odom.child_frame_id = t.child_frame_id
        io.msg_odom.pose.covariance = _diag(_POSE_COV)
        io.msg_odom.twist.covariance = _diag(_TWIST_COV)
        io.msg_truth = Odometry()
        io.msg_truth.header.frame_id = "world"
        io.msg_truth.child_frame_id = t.child_frame_id
        io.msg_joints = JointState()
        if t.tf and self._tf_type is not None:
            if t.tf not in self._tf_pubs:  # robots share /tf
                self._tf_pubs[t.tf] = node.create_publisher(self._tf_type, t.tf, depth)
            io.pub_tf = self._tf_pubs[t.tf]
            io.msg_tf = transforms_mod.odom_message(self._tf_type, t.frame_id, t.child_frame_id)
        classes = {"twist": Twist, "twist_stamped": TwistStamped}
        for i, kind in enumerate(t.cmd_vel_types):
            if i >= len(self._spinners):  # the second type needs a participant of its own
                self._context_node(f"simtwin_sim_{kind}")
            sub_node = self._spinners[i][1]
            sub_node.create_subscription(classes[kind], t.cmd_vel, self._cmd_callback(io), 10)
        return io

    @staticmethod
    def _scan_msg(scan: ScanTopic, lidar: Any) -> Any:
        from sensor_msgs.msg import LaserScan

        s = LaserScan()
        s.header.frame_id = scan.frame_id
        if lidar is not None:
            s.angle_min = float(lidar.min_angle)
            s.angle_max = float(lidar.max_angle)
            s.angle_increment = float((lidar.max_angle - lidar.min_angle) / max(int(lidar.samples) - 1, 1))
            s.time_increment = 0.0
            s.scan_time = float(1.0 / lidar.update_rate) if lidar.update_rate else 0.0
            s.range_min = float(lidar.range_min)
            s.range_max = float(lidar.range_max)
        return s

    def _spin(self, executor: Any) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # the executor must never take the process down silently
            log.exception("ROS executor thread failed")

    # -- cmd_vel ----------------------------------------------------------------------------------
    def _cmd_callback(self, io: RobotIO) -> Callable[[Any], None]:
        def on_cmd(msg: Any) -> None:
            twist = msg.twist if hasattr(msg, "twist") else msg
            vx, wz = float(twist.linear.x), float(twist.angular.z)
            if not (math.isfinite(vx) and math.isfinite(wz)):
                log.error(
                    "ignored a velocity command on %s with non-finite values (vx=%s, wz=%s)", io.topics.cmd_vel, vx, wz
                )
                return
            faults = self.faults
            cmd = (vx, wz) if faults is None or not faults.faults else faults.command_arrived((vx, wz), io.topics.robot)
            with self._cmd_lock:
                if cmd is not None:  # None: a fault dropped, froze or delayed it (it still counts as received)
                    io.cmd = cmd
                    io.count += 1
                self.cmd_count += 1
            if self._wake is not None:
                self._wake()

        return on_cmd

    def take_commands(self) -> dict[str, tuple[float, float]]:
        """Each robot's latest command if one arrived since the last call (applied before stepping)."""
        out: dict[str, tuple[float, float]] = {}
        with self._cmd_lock:
            for name, io in self.robots.items():
                if io.count != io.seen:
                    io.seen = io.count
                    out[name] = io.cmd
        return out

    def take_command(self) -> tuple[float, float] | None:
        """The first robot's latest command if one arrived since the last call."""
        return next(iter(self.take_commands().values()), None)

    def release_delayed_commands(self, t: float) -> dict[str, tuple[float, float]]:
        """Per robot, the command a ``cmd_delay`` fault held that is due at sim time ``t`` (runner thread)."""
        if self.faults is None:
            return {}
        due = self.faults.release_commands(t)
        with self._cmd_lock:
            for robot, cmd in due.items():
                io = self.robots.get(robot)
                if io is not None:  # applied by the caller now; take_commands need not return it again
                    io.cmd = cmd
                    io.count += 1
                    io.seen = io.count
        return due

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

    def check_cmd_vel_types(self) -> list[str]:
        """Errors for publishers that send another type on a command topic (DDS drops them silently)."""
        errors = []
        for io in self.robots.values():
            t = io.topics
            expected = [CMD_VEL_TYPES[k] for k in t.cmd_vel_types]
            try:
                infos = self.node.get_publishers_info_by_topic(t.cmd_vel)
            except Exception:  # context shutting down
                return []
            for info in infos:
                if info.topic_type in expected:
                    continue
                who = f"{info.node_namespace.rstrip('/')}/{info.node_name}".replace("//", "/")
                key = (t.cmd_vel, who, info.topic_type)
                if key in self._type_errors:
                    continue
                self._type_errors.add(key)
                other = next((k for k, v in CMD_VEL_TYPES.items() if v == info.topic_type), None)
                fix = (
                    f"start the simulator with --cmd-vel-type any or {other} (pytest: leave --simtwin-cmd-vel-type "
                    f"unset, or {other})"
                    if other
                    else "publish geometry_msgs/msg/Twist or TwistStamped"
                )
                errors.append(
                    f"node {who} publishes {info.topic_type} on {t.cmd_vel}, but the simulator subscribes "
                    f"{' and '.join(expected)} (--cmd-vel-type {'/'.join(t.cmd_vel_types)}); its commands are "
                    f"ignored. To fix, {fix}."
                )
        return errors

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

    # -- publishing (runner thread) ---------------------------------------------------------------
    def _send(self, pub: Any, msg: Any) -> None:
        """Publish ``msg`` as the active sensor faults say (dropped, late, changed), or as it is."""
        faults = self.faults
        if faults is None or (not faults.faults and not faults.held):
            self._publish(pub, msg)
            return
        for late_pub, late in faults.release_held(_stamp_seconds(msg)):
            self._publish(late_pub, late)
            self._sent[str(late_pub.topic_name)] = _stamp_seconds(late)
        topic = str(getattr(pub, "topic_name", ""))
        for out in faults.outgoing(pub, topic, _stamp_seconds(msg), msg):
            self._publish(pub, out)
            self._sent[topic] = _stamp_seconds(out)

    def sent_stamp(self, topic: str | None, computed: float | None) -> float | None:
        """The stamp of the last message really sent on ``topic`` once a fault touched it, else ``computed``.

        Clients wait for the state's odom/scan stamp after a step: under a latency or blackout fault that
        is the last message that left, not the last one the simulator computed.
        """
        if topic is None or self.faults is None or not self.faults.touches(topic):
            return computed
        return self._sent.get(topic)

    def forget_sent(self) -> None:
        """After a reset (sim time went back): no stamp sent so far counts."""
        self._sent.clear()

    def _publish(self, pub: Any, msg: Any) -> None:
        """Publish, surviving a refused write.

        A reliable Fast DDS writer whose history is full of samples a slow reader has not yet
        acknowledged gives up after its blocking time and rmw raises "cannot publish data" (seen
        free-running at rtf 0 on loaded cores). That sample is lost for that reader either way; the
        simulator must keep running, so it counts the drop (state "dropped") and logs it.
        """
        try:
            pub.publish(msg)
        except Exception as exc:  # rclpy's RCLError is not importable by a stable public name
            topic = str(getattr(pub, "topic_name", "?"))
            n = self.dropped.get(topic, 0) + 1
            self.dropped[topic] = n
            if n == 1 or n % 1000 == 0:
                log.warning("%d message(s) on %s not sent (a slow or stalled subscriber?): %s", n, topic, exc)

    def _io(self, robot: str | None) -> RobotIO:
        return next(iter(self.robots.values())) if robot is None else self.robots[robot]

    def publish_clock(self, t: float) -> None:
        _stamp(self.msg_clock.clock, t)
        self._send(self.pub_clock, self.msg_clock)

    def publish_odom(
        self, t: float, x: float, y: float, yaw: float, vx: float, wz: float, robot: str | None = None
    ) -> None:
        io = self._io(robot)
        m = io.msg_odom
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x = x
        p.position.y = y
        p.orientation.z = math.sin(yaw * 0.5)
        p.orientation.w = math.cos(yaw * 0.5)
        m.twist.twist.linear.x = vx  # child frame: forward speed
        m.twist.twist.angular.z = wz
        self._send(io.pub_odom, m)

    def publish_tf(self, t: float, x: float, y: float, yaw: float, robot: str | None = None) -> None:
        """The odom -> base transform of the odometry of that instant (as the DiffDrive publishes it)."""
        io = self._io(robot)
        if io.pub_tf is None:
            return
        sec = math.floor(t)
        transforms_mod.fill_odom(io.msg_tf, int(sec), min(round((t - sec) * 1e9), 999_999_999), x, y, yaw)
        self._send(io.pub_tf, io.msg_tf)

    def publish_truth(self, t: float, truth: Any, robot: str | None = None) -> None:
        io = self._io(robot)
        m = io.msg_truth
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x, p.position.y, p.position.z = truth.x, truth.y, truth.z
        o = p.orientation
        o.x, o.y, o.z, o.w = truth.qx, truth.qy, truth.qz, truth.qw
        tw = m.twist.twist  # world frame (documented in protocol.GROUND_TRUTH)
        tw.linear.x, tw.linear.y, tw.linear.z = truth.vx, truth.vy, truth.vz
        tw.angular.x, tw.angular.y, tw.angular.z = truth.wx, truth.wy, truth.wz
        self._send(io.pub_truth, m)

    def publish_joints(
        self, t: float, positions: Sequence[float], velocities: Sequence[float], robot: str | None = None,
        names: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        io = self._io(robot)
        m = io.msg_joints
        if names is not None and len(m.name) != len(names):
            m.name = list(names)
        _stamp(m.header.stamp, t)
        m.position = array("d", positions)
        m.velocity = array("d", velocities)
        self._send(io.pub_joints, m)

    def publish_scan(self, t: float, ranges: array[float], index: int | None = None) -> None:
        """Publish lidar ``index`` (physics order); None: the first robot's main lidar."""
        if index is None:
            if self.pub_scan is None:
                return
            pub, m = self.pub_scan, self.msg_scan
        else:
            pub, m = self.scan_pubs[index]
        _stamp(m.header.stamp, t)
        m.ranges = ranges
        self._send(pub, m)

    def all_publishers(self) -> list[Any]:
        pubs = [self.pub_clock]
        for io in self.robots.values():
            pubs += [io.pub_odom, io.pub_truth, io.pub_joints]
        return pubs + [p for p, _m in self.scan_pubs] + list(self._tf_pubs.values())

    def subscriber_counts(self) -> tuple[int, ...]:
        """Matched subscriptions per publisher: a change while paused triggers a re-publish for late joiners."""
        with contextlib.suppress(Exception):
            return tuple(p.get_subscription_count() for p in self.all_publishers())
        return ()

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
