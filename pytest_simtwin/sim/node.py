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
from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.topics import CMD_VEL_TYPES, Topics

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


class SimNode:
    """rclpy node of the simulator: publishers, cmd_vel subscription, services, background spin."""

    def __init__(self, *, namespace: str = protocol.NAMESPACE, domain_id: int | None = None) -> None:
        """Create the context and node: DDS discovery starts now, while the caller loads the world."""
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        self.namespace = namespace.rstrip("/") or "/"
        self.requests: queue.Queue[Request] = queue.Queue()
        self._cmd_lock = threading.Lock()
        self.cmd_count = 0
        self.dropped: dict[str, int] = {}  # topic -> messages the DDS writer refused
        self._cmd: tuple[float, float] = (0.0, 0.0)
        self._cmd_seen = 0  # _cmd_version when the runner last took the command
        self._cmd_version = 0  # bumped whenever the command to apply changes
        self.faults: FaultSet | None = None  # set by the runner: sensor and command faults
        self.pub_faults: Any = None
        self._sent: dict[str, float] = {}  # topic -> stamp of the last message sent while faults were active
        self._type_errors: set[tuple[str, str]] = set()
        self._wake: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._executor: Any = None
        self.context = rclpy.Context()
        # No rosout publisher and no log files under ~/.ros: we log to stderr; the runner owns signals.
        rclpy.init(
            args=["--ros-args", "--disable-rosout-logs", "--disable-external-lib-logs"],
            context=self.context,
            domain_id=domain_id,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        try:
            # No parameter services (6 services, ~70 ms of start-up CPU and discovery traffic): the
            # simulator has no run-time parameters; its settings are the command line.
            self.node = rclpy.create_node(
                "simtwin_sim", context=self.context, start_parameter_services=False, enable_rosout=False
            )
        except BaseException:
            with contextlib.suppress(Exception):
                rclpy.shutdown(context=self.context)
            raise

    def start(self, topics: Topics, *, joint_names: Sequence[str] = (), lidar: Any = None) -> None:
        """Create publishers, the command subscription and the services, then spin in a background thread."""
        from rclpy.executors import SingleThreadedExecutor

        self.topics = topics
        self._make_entities(joint_names, lidar)
        # One thread: a service callback only queues its request and waits for the runner, so nothing
        # needs a second one. rclpy's MultiThreadedExecutor (2 threads, a callback group each for
        # commands and services) served the next request 0.15-0.75 s late after about one test in five
        # (no UDP drops, not cured by waking the executor every 50 ms); with this one: none in 42 runs
        # of the tutorial's three tests, ~0.4 s faster per run.
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="simtwin-sim-ros", daemon=True)
        self._thread.start()

    # -- construction -----------------------------------------------------------------------------
    def _make_entities(self, joint_names: Sequence[str], lidar: Any) -> None:
        from diagnostic_msgs.srv import AddDiagnostics
        from geometry_msgs.msg import Twist, TwistStamped
        from nav_msgs.msg import Odometry
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import JointState, LaserScan

        t = self.topics
        node = self.node
        # Reliable KEEP_LAST 10 like ros_gz_bridge: matches reliable and best-effort subscribers.
        # Reliable with a deep history: a step request publishes a burst (60 odometry messages for
        # 2 s of sim time) faster than a loaded reader acknowledges; with depth 10 the writer drops
        # unacknowledged samples of the burst (recordings and trajectories then miss them).
        depth = 100
        self.pub_odom = node.create_publisher(Odometry, t.odom, depth)
        self.pub_truth = node.create_publisher(Odometry, t.ground_truth, depth)
        self.pub_joints = node.create_publisher(JointState, t.joint_states, depth)
        self.pub_clock = node.create_publisher(Clock, t.clock, depth)
        self.pub_scan = node.create_publisher(LaserScan, t.scan, depth) if t.scan else None

        self.msg_odom = Odometry()
        self.msg_odom.header.frame_id = t.frame_id
        self.msg_odom.child_frame_id = t.child_frame_id
        self.msg_odom.pose.covariance = _diag(_POSE_COV)
        self.msg_odom.twist.covariance = _diag(_TWIST_COV)
        self.msg_truth = Odometry()
        self.msg_truth.header.frame_id = "world"
        self.msg_truth.child_frame_id = t.child_frame_id
        self.msg_joints = JointState()
        self.msg_joints.name = list(joint_names)
        self.msg_clock = Clock()
        self.msg_scan = LaserScan()
        if lidar is not None:
            s = self.msg_scan
            s.header.frame_id = t.lidar_frame_id or ""
            s.angle_min = float(lidar.min_angle)
            s.angle_max = float(lidar.max_angle)
            s.angle_increment = float((lidar.max_angle - lidar.min_angle) / max(int(lidar.samples) - 1, 1))
            s.time_increment = 0.0
            s.scan_time = float(1.0 / lidar.update_rate) if lidar.update_rate else 0.0
            s.range_min = float(lidar.range_min)
            s.range_max = float(lidar.range_max)

        msg_cls = TwistStamped if t.cmd_vel_type == "twist_stamped" else Twist
        node.create_subscription(msg_cls, t.cmd_vel, self._on_cmd, 10)
        for name in protocol.SERVICES:
            node.create_service(
                AddDiagnostics,
                protocol.service_name(name, self.namespace),
                self._service_callback(name),
            )

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self._executor.spin()
        except ExternalShutdownException:
            pass
        except Exception:  # the executor must never take the process down silently
            log.exception("ROS executor thread failed")

    # -- cmd_vel ----------------------------------------------------------------------------------
    def _on_cmd(self, msg: Any) -> None:
        twist = msg.twist if hasattr(msg, "twist") else msg
        vx, wz = float(twist.linear.x), float(twist.angular.z)
        if not (math.isfinite(vx) and math.isfinite(wz)):
            log.error(
                "ignored a velocity command on %s with non-finite values (vx=%s, wz=%s)", self.topics.cmd_vel, vx, wz
            )
            return
        faults = self.faults
        cmd = (vx, wz) if faults is None or not faults.faults else faults.command_arrived((vx, wz))
        with self._cmd_lock:
            if cmd is not None:  # None: a fault dropped, froze or delayed it (it still counts as received)
                self._cmd = cmd
                self._cmd_version += 1
            self.cmd_count += 1
        if self._wake is not None:
            self._wake()

    def take_command(self) -> tuple[float, float] | None:
        """The latest command if one arrived since the last call (the runner applies it before stepping)."""
        with self._cmd_lock:
            if self._cmd_version == self._cmd_seen:
                return None
            self._cmd_seen = self._cmd_version
            return self._cmd

    def release_delayed_command(self, t: float) -> tuple[float, float] | None:
        """A command a ``cmd_delay`` fault held that is due at sim time ``t`` (runner thread)."""
        if self.faults is None:
            return None
        cmd = self.faults.release_command(t)
        if cmd is not None:
            with self._cmd_lock:
                self._cmd = cmd
                self._cmd_seen = self._cmd_version = self._cmd_version + 1
        return cmd

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
        """The topics sensor faults may target: every sensor publisher but /clock."""
        pubs = [self.pub_odom, self.pub_truth, self.pub_joints, self.pub_scan]
        return {str(p.topic_name) for p in pubs if p is not None}

    def check_cmd_vel_types(self) -> list[str]:
        """Errors for publishers that send another type on the command topic (DDS drops them silently)."""
        expected = CMD_VEL_TYPES[self.topics.cmd_vel_type]
        other = "twist" if self.topics.cmd_vel_type == "twist_stamped" else "twist_stamped"
        errors = []
        try:
            infos = self.node.get_publishers_info_by_topic(self.topics.cmd_vel)
        except Exception:  # context shutting down
            return []
        for info in infos:
            if info.topic_type == expected:
                continue
            who = f"{info.node_namespace.rstrip('/')}/{info.node_name}".replace("//", "/")
            key = (who, info.topic_type)
            if key in self._type_errors:
                continue
            self._type_errors.add(key)
            fix = (
                f"start the simulator with --cmd-vel-type {other} (pytest: --simtwin-cmd-vel-type {other})"
                if info.topic_type == CMD_VEL_TYPES[other]
                else "publish the expected type"
            )
            errors.append(
                f"node {who} publishes {info.topic_type} on {self.topics.cmd_vel}, but the simulator subscribes "
                f"{expected} (--cmd-vel-type {self.topics.cmd_vel_type}); its commands are ignored. To fix, {fix}."
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

    def publish_clock(self, t: float) -> None:
        _stamp(self.msg_clock.clock, t)
        self._send(self.pub_clock, self.msg_clock)

    def publish_odom(self, t: float, x: float, y: float, yaw: float, vx: float, wz: float) -> None:
        m = self.msg_odom
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x = x
        p.position.y = y
        p.orientation.z = math.sin(yaw * 0.5)
        p.orientation.w = math.cos(yaw * 0.5)
        m.twist.twist.linear.x = vx  # child frame: forward speed
        m.twist.twist.angular.z = wz
        self._send(self.pub_odom, m)

    def publish_truth(self, t: float, truth: Any) -> None:
        m = self.msg_truth
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x, p.position.y, p.position.z = truth.x, truth.y, truth.z
        o = p.orientation
        o.x, o.y, o.z, o.w = truth.qx, truth.qy, truth.qz, truth.qw
        tw = m.twist.twist  # world frame (documented in protocol.GROUND_TRUTH)
        tw.linear.x, tw.linear.y, tw.linear.z = truth.vx, truth.vy, truth.vz
        tw.angular.x, tw.angular.y, tw.angular.z = truth.wx, truth.wy, truth.wz
        self._send(self.pub_truth, m)

    def publish_joints(self, t: float, positions: Sequence[float], velocities: Sequence[float]) -> None:
        m = self.msg_joints
        _stamp(m.header.stamp, t)
        m.position = array("d", positions)
        m.velocity = array("d", velocities)
        self._send(self.pub_joints, m)

    def publish_scan(self, t: float, ranges: array[float]) -> None:
        if self.pub_scan is None:
            return
        m = self.msg_scan
        _stamp(m.header.stamp, t)
        m.ranges = ranges
        self._send(self.pub_scan, m)

    def subscriber_counts(self) -> tuple[int, ...]:
        """Matched subscriptions per publisher: a change while paused triggers a re-publish for late joiners."""
        pubs = [self.pub_odom, self.pub_truth, self.pub_joints, self.pub_clock, self.pub_scan]
        with contextlib.suppress(Exception):
            return tuple(p.get_subscription_count() for p in pubs if p is not None)
        return ()

    # -- shutdown ---------------------------------------------------------------------------------
    def close(self) -> None:
        """rclpy.shutdown first, then join the spin thread (the other order aborts the process)."""
        import rclpy

        self.fail_pending("the simulator is shutting down")
        with contextlib.suppress(Exception):
            rclpy.shutdown(context=self.context)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._executor is not None:
            with contextlib.suppress(Exception):
                self._executor.shutdown(timeout_sec=0.5)
        self.fail_pending("the simulator is shutting down")
        # Delete the DDS entities now: peers then drop our endpoints at once instead of after the
        # participant lease (10 s), and nothing is left for interpreter teardown.
        with contextlib.suppress(Exception):
            self.node.destroy_node()
        with contextlib.suppress(Exception):
            self.context.destroy()
