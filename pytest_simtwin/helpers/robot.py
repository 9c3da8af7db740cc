"""The ``robot`` fixture's helper: drive a simulated robot in sim time and read its state.

Commands to the simulator's own velocity topic are timed with the control services (pause,
publish, confirm through ``cmd_count``, step), so motion lasts exactly the requested sim time and
gives the same result at any real-time factor, as fast as the simulator can step. Commands to any
other topic (a node under test) are re-published at a fixed rate while the simulator plays until
``/clock`` advanced by the duration; with control services the simulator is held paused at both
ends until the node relayed the command, so the node's latency does not become motion. Reading
state and waiting in sim time live in :mod:`pytest_simtwin.helpers.robot_state`.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pytest_simtwin._internal.tracebacks import hide_frames
from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.control.protocol import SimState, UntilRest
from pytest_simtwin.errors import ConfigError, ControlError, WaitTimeout
from pytest_simtwin.helpers.contacts import ContactObserver
from pytest_simtwin.helpers.robot_state import STEP_CHUNK
from pytest_simtwin.helpers.sensors import CameraImage, ImuReading
from pytest_simtwin.ros.messages import (
    Pose2D,
    Velocity,
    make_twist,
    min_range_of,
    sim_stamp,
    trajectory_arrays,
    twist_type,
    yaw_from_quaternion,
)

if TYPE_CHECKING:
    from pytest_simtwin.ros.session import TopicBuffer

SETTLE_LIMIT = 2.0  # sim seconds allowed for the robot to come to rest after a stop command
REST_LINEAR = 0.01  # m/s
REST_ANGULAR = 0.02  # rad/s
REPUBLISH_HZ = 20.0  # rate of the command stream to foreign topics
RELAY_WAIT = 1.0  # wall seconds to wait for a node under test to pass a command on to the simulator

__all__ = ["CameraImage", "ImuReading", "Pose2D", "Robot", "Velocity", "min_range_of", "yaw_from_quaternion"]


class Robot(ContactObserver):
    """Drive the robot and observe odometry, ground truth, lidar, cameras, IMU and the recorded trajectory.

    ``Robot(ros, control, topics, *, record=None, log_tail=None, abort=None, cmd_vel_type=None)``.
    """

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Robot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop a robot left driving (``stop=False``) and write the trajectory into the test's record."""
        if self._cmd_log and (self._cmd_log[-1][1] or self._cmd_log[-1][2]) and self._last_target is not None:
            # With reset="module" the next test would otherwise start with a moving robot.
            topic, type_name = self._last_target
            with contextlib.suppress(Exception):
                self.ros.publisher(topic, twist_type(type_name)).publish(self._command(topic, type_name, 0.0, 0.0))
        if self.record is None:
            return
        traj = self.trajectory
        self.record.trajectory = {k: [float(v) for v in arr] for k, arr in traj.items()}
        if not self.record.sim_duration and len(traj["t"]) > 1:
            self.record.sim_duration = float(traj["t"][-1] - traj["t"][0])

    _pause_latency = 0.05  # wall seconds a pause request takes (learned, see _play_until)
    _feature_set: frozenset[str] | None = None  # the control services' features (see _features)

    # -- commands ------------------------------------------------------------------------------
    def _command(self, topic: str, type_name: str, vx: float, wz: float, sim_time: float | None = None) -> Any:
        """The command message; a TwistStamped is stamped ``sim_time`` (default: the last /clock
        received, if /clock is subscribed: this never subscribes, see _clock)."""
        if type_name != "twist_stamped":
            return make_twist(type_name, vx, wz)
        if sim_time is None and self._clock_buf is not None:
            sim_time = self._clock_time()
        return make_twist(type_name, vx, wz, sim_stamp(sim_time) if sim_time is not None else None, self.frame_id)

    def _publisher(self, topic: str, type_name: str) -> Any:
        pub = self.ros.publisher(topic, twist_type(type_name))

        def describe() -> str:
            types = self.ros.topic_types().get(topic)
            if types and f"geometry_msgs/msg/{twist_type(type_name).__name__}" not in types:
                return (
                    f"{topic} exists with type {', '.join(types)}, not {twist_type(type_name).__name__}: "
                    f"set --simtwin-cmd-vel-type (twist | twist_stamped) to match"
                )
            return f"{topic} has no subscriber; check the simulator (or node under test) subscribes to it"

        self._wait(
            lambda: pub.get_subscription_count() > 0, 5.0, f"a subscriber of {topic} ({type_name})", describe=describe
        )
        return pub

    @hide_frames
    def send_velocity(
        self,
        linear: float,
        angular: float = 0.0,
        duration: float = 1.0,
        *,
        stop: bool = True,
        topic: str | None = None,
        topic_type: str | None = None,
    ) -> None:
        """Command (linear m/s, angular rad/s) for ``duration`` sim seconds, then stop (``stop=True``)."""
        for name, value in (("linear", linear), ("angular", angular), ("duration", duration)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"send_velocity: {name} must be a finite number, found {value!r}")
        if duration < 0:
            raise ConfigError(f"send_velocity: duration must be >= 0 sim seconds, found {duration!r}")
        own = topic is None or topic == self.cmd_vel_topic
        self.commanded_at = time.monotonic()
        self._last_target = (topic or self.cmd_vel_topic, self.cmd_vel_type if own else topic_type or self.cmd_vel_type)
        st = self.control.state() if own and self.control is not None else {}
        if "cmd_count" in st:
            self._drive_stepped(float(linear), float(angular), float(duration), stop, st)
        else:
            self._drive_streamed(
                float(linear),
                float(angular),
                float(duration),
                stop,
                topic or self.cmd_vel_topic,
                topic_type or self.cmd_vel_type,
            )

    @hide_frames
    def stop(self) -> None:
        """Command zero velocity and wait (bounded) until the robot is at rest."""
        self.send_velocity(0.0, 0.0, 0.0, stop=True)

    def _confirm_command(self, vx: float, wz: float, current: SimState | None = None) -> SimState:
        """Publish to the simulator until its ``cmd_count`` shows it received the command.

        ``current``: the simulator's state when the caller has it (saves a round trip).
        """
        assert self.control is not None
        now = current if current is not None else self.control.state()
        pub = self._publisher(self.cmd_vel_topic, self.cmd_vel_type)
        # Stamped with the paused simulator's own time: no /clock subscription needed.
        msg = self._command(self.cmd_vel_topic, self.cmd_vel_type, vx, wz, now.get("sim_time"))
        st = self.control.confirm_command(
            lambda: pub.publish(msg),
            int(now["cmd_count"]),
            what=f"the simulator to receive ({vx:g} m/s, {wz:g} rad/s) on {self.cmd_vel_topic}",
            error=self._error,
            abort=self._abort,
        )
        self._cmd_log.append((float(st["sim_time"]), vx, wz))
        return st

    def _at_rest(self) -> bool:
        assert self.control is not None
        tw = self.control.get_entity_state(self._entity_name()).get("twist") or {}
        speed = math.hypot(float(tw.get("vx", 0.0)), float(tw.get("vy", 0.0)))
        return speed < REST_LINEAR and abs(float(tw.get("wz", 0.0))) < REST_ANGULAR

    def _settle(self, st: SimState) -> SimState:
        """Step the paused simulator until the robot is at rest (at most SETTLE_LIMIT sim seconds)."""
        assert self.control is not None
        if "until_rest" in self._features():
            # One request: the simulator checks the twist between chunks itself.
            rest: UntilRest = {
                "name": self._entity_name(), "linear": REST_LINEAR, "angular": REST_ANGULAR, "chunk": STEP_CHUNK
            }
            return self._step(duration=SETTLE_LIMIT, until_rest=rest)
        settled = 0.0
        while settled < SETTLE_LIMIT and not self._at_rest():
            st = self._step(duration=STEP_CHUNK)
            settled += STEP_CHUNK
        return st

    def _drive_stepped(self, vx: float, wz: float, duration: float, stop: bool, st: SimState) -> None:
        """``st``: the simulator's state just read (each state the next request returns is reused)."""
        assert self.control is not None
        was_playing = st.get("state") == "playing"
        if was_playing:
            st = self.control.pause()
        try:
            st = self._confirm_command(vx, wz, st)
            if duration > 0:
                st = self._step(duration=duration)
            if stop:
                st = self._settle(self._confirm_command(0.0, 0.0, st))
            self._await_odom_at(st)
        except BaseException:
            if stop:
                with contextlib.suppress(Exception):
                    self.ros.publisher(self.cmd_vel_topic, twist_type(self.cmd_vel_type)).publish(
                        self._command(self.cmd_vel_topic, self.cmd_vel_type, 0.0, 0.0)
                    )
            if was_playing:
                with contextlib.suppress(Exception):
                    self.control.play()
            raise
        if was_playing:
            self.control.play()

    def _await_relay(self, before: int) -> SimState:
        """Wait (bounded, wall time) until the simulator received a command after ``before``.

        A node under test may drop or transform commands; silence is not an error here.
        """
        assert self.control is not None
        last: SimState = {}

        def relayed() -> bool:
            last.update(self.control.state())  # type: ignore[union-attr]
            return int(last["cmd_count"]) > before

        with contextlib.suppress(WaitTimeout):
            wait_until(relayed, RELAY_WAIT, what="a relayed command", max_interval=0.01)
        return last

    def _features(self) -> frozenset[str]:
        """What the simulator's control services support (asked once per helper)."""
        if self._feature_set is None:
            try:
                features = self.control.features() if self.control is not None else {}
            except ControlError:
                features = {}
            self._feature_set = frozenset(str(f) for f in features.get("features") or [])
        return self._feature_set

    def _can_pause_at(self) -> bool:
        return "pause_at" in self._features()

    def _play_until(self, end: float, auto: bool = False) -> None:
        """Let the playing simulator reach sim time ``end`` exactly.

        ``auto``: it was told to pause itself there (``pause_at``); wait for that. Otherwise play to
        just before it (/clock), pause, then step the rest in short chunks (commands relayed
        meanwhile apply at each chunk); pausing takes a service round trip, long on a loaded host.
        """
        control = self.control
        assert control is not None
        st = control.state()
        left = end - float(st["sim_time"])
        if auto:
            # Asked, not read from /clock: a robot that steps never subscribes to /clock (see _clock).
            dt = float(st.get("step_size") or 0.001)
            seen = [st]

            def paused_there() -> bool:
                seen[0] = control.state()
                return seen[0].get("state") == "paused" and float(seen[0]["sim_time"]) >= end - dt / 2

            self._wait(
                paused_there,
                self._wall_budget(left),
                f"the simulator to pause itself at {end:.3f} s",
                describe=lambda: f"it is {seen[0].get('state')} at {float(seen[0]['sim_time']):.3f} s",
            )
            return
        # Stop playing ahead of `end` by ~2x the slowest recent pause round trip (sim seconds).
        margin = min(max(2.0 * self._pause_latency * self.real_time_factor(), 0.02), 0.5)
        self._wait(
            lambda: (self._clock_time() or -math.inf) >= end - margin,
            self._wall_budget(left),
            f"/clock to reach {end - margin:.3f} s",
            describe=self._describe_clock,
            max_interval=0.005,
        )
        sent = time.monotonic()
        st = control.pause()
        self._pause_latency = max(0.8 * self._pause_latency, time.monotonic() - sent, 0.02)
        dt = float(st.get("step_size") or 0.001)
        while end - float(st["sim_time"]) > dt / 2:
            st = self._step(duration=min(STEP_CHUNK, end - float(st["sim_time"])))

    def _drive_streamed(self, vx: float, wz: float, duration: float, stop: bool, topic: str, type_name: str) -> None:
        """Stream the command to ``topic`` (e.g. a node under test) while the simulator runs ``duration``.

        With control services the simulator is paused at both ends until the command reached it
        (``cmd_count`` grew): the node's relay latency does not turn into sim time. A lockstep
        simulator is stepped in chunks; without control, /clock alone times the command.
        """
        control = self.control
        st = control.state() if control is not None else {}
        lockstep = bool(st.get("lockstep"))
        gated = control is not None and "cmd_count" in st and not lockstep
        playing = st.get("state") == "playing"
        played = control is not None and not gated and not lockstep and not playing
        pub = self._publisher(topic, type_name)
        halt = threading.Event()
        stamped = type_name == "twist_stamped"
        paused_at = st.get("sim_time")

        def stream() -> None:
            while not halt.is_set():
                # Stamps from /clock while it runs; before its first message, the time it paused at.
                now = self._clock_time() if stamped else None
                with contextlib.suppress(Exception):
                    pub.publish(self._command(topic, type_name, vx, wz, now if now is not None else paused_at))
                halt.wait(1.0 / REPUBLISH_HZ)

        thread = threading.Thread(target=stream, name="simtwin-cmd-stream", daemon=True)
        try:
            if gated and playing:
                control.pause()  # type: ignore[union-attr]
            thread.start()
            auto = gated and duration > 0 and self._can_pause_at()
            if gated:
                relayed = float(self._await_relay(int(st["cmd_count"]))["sim_time"])
                start: float | None = relayed
                # The simulator pauses itself at start + duration: no overshoot by a pause's latency.
                control.play(pause_at=relayed + duration if auto else None)  # type: ignore[union-attr]
            else:
                if played:
                    control.play()  # type: ignore[union-attr]
                with contextlib.suppress(WaitTimeout):  # no /clock at all: wall time below
                    wait_until(lambda: self._clock.latest() is not None, 2.0, what="/clock")
                start = self._clock_time()
            self._cmd_log.append((start if start is not None else math.nan, vx, wz))
            if duration > 0 and gated and start is not None:
                self._play_until(start + duration, auto)
            elif duration > 0:
                with contextlib.suppress(WaitTimeout):
                    self.wait_for_condition(lambda: False, duration, what=f"{duration:g} s of sim time")
            if gated:
                control.pause()  # type: ignore[union-attr]
            halt.set()
            thread.join(timeout=2.0)
            if stop:
                before = int(control.state()["cmd_count"]) if gated else 0  # type: ignore[union-attr]
                pub.publish(self._command(topic, type_name, 0.0, 0.0))
                if gated:
                    st = self._await_relay(before)
                    self._cmd_log.append((float(st["sim_time"]), 0.0, 0.0))
                    self._await_odom_at(self._settle(st))
                else:
                    now = self._clock_time()
                    self._cmd_log.append((now if now is not None else math.nan, 0.0, 0.0))
                    with contextlib.suppress(WaitTimeout):  # bounded: the assertions judge the outcome
                        self.wait_for_condition(self._odom_at_rest, SETTLE_LIMIT, what="the robot to come to rest")
        finally:
            halt.set()
            if thread.is_alive():
                thread.join(timeout=2.0)
            with contextlib.suppress(Exception):  # back to the state we found, also after an error
                if gated and playing:
                    control.play()  # type: ignore[union-attr]
                elif played or gated:
                    control.pause()  # type: ignore[union-attr]

    def _odom_at_rest(self) -> bool:
        msg = self._odom.latest()
        if msg is None:
            return False
        t = msg.twist.twist
        return bool(abs(t.linear.x) < REST_LINEAR and abs(t.angular.z) < REST_ANGULAR)

    @hide_frames
    def set_pose(self, x: float, y: float, yaw: float = 0.0) -> None:
        """Teleport the robot (true pose, zero twist) through the control services.

        Odometry is integrated from the wheels and does not follow a teleport (as in Gazebo): read
        ``ground_truth`` for the new pose; ``distance_travelled`` keeps counting wheel motion only.
        """
        self.control_required("set_pose").set_entity_state(
            self._entity_name(),
            pose={"x": float(x), "y": float(y), "yaw": float(yaw)},
            twist={"vx": 0.0, "vy": 0.0, "vz": 0.0, "wx": 0.0, "wy": 0.0, "wz": 0.0},
        )

    def control_required(self, action: str) -> ControlClient:
        if self.control is None:
            raise ControlError(
                f"{action} needs the simulator's control services (/simtwin/*); this backend has none "
                f"(attach/process backends without simtwin control)"
            )
        return self.control

    # -- lidar ---------------------------------------------------------------------------------
    def _scan_buffer(self) -> TopicBuffer:
        if self._scan is None:
            from sensor_msgs.msg import LaserScan

            topic = self.topics.get("scan")
            if not topic:
                raise ConfigError("the simulated robot has no lidar: the simulator's features list no 'scan' topic")
            self._scan = self.ros.subscribe(str(topic), LaserScan)
        return self._scan

    @hide_frames
    def wait_for_scan(self, timeout: float = 5.0) -> Any:
        """Wait (sim seconds) for a LaserScan newer than now and return it."""
        buf = self._scan_buffer()
        return self._wait_newer(buf, timeout, f"a LaserScan on {buf.topic}")

    @hide_frames
    def min_range(self, sector: tuple[float, float] = (-180.0, 180.0), scan: Any = None) -> float:
        """Closest valid reading (m) in ``sector`` (degrees, 0 = straight ahead, counter-clockwise).

        REP-117: +/-inf and NaN readings and values outside [range_min, range_max] are ignored;
        returns ``inf`` when nothing valid lies in the sector. ``sector=(170, -170)`` wraps behind.
        """
        if scan is None:
            scan = self._scan_buffer().latest() or self.wait_for_scan()
        return min_range_of(scan, sector)

    # -- trajectory ----------------------------------------------------------------------------
    @property
    def trajectory(self) -> dict[str, npt.NDArray[np.float64]]:
        """Odometry (t, x, y, yaw, vx, wz), ground truth at the same stamps, and the commands."""
        gt = [r.msg for r in self._gt.since(self._t0)] if self._gt is not None else []
        return trajectory_arrays([r.msg for r in self._odom.since(self._t0)], gt, self._cmd_log)
