"""Reading a simulated robot's state in sim time: odometry, ground truth, /clock, and waits.

:class:`RobotObserver` is the base of :class:`pytest_simtwin.helpers.robot.Robot` (which adds commands,
lidar and the trajectory). Every wait is in sim seconds: a paused simulator is stepped, a running
one is watched through /clock with a wall-clock budget derived from the measured real-time factor.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_simtwin._internal.tracebacks import hide_frames
from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.control import protocol
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.errors import ConfigError, ControlError, WaitTimeout
from pytest_simtwin.ros.messages import Pose2D, Velocity, pose_of, stamp_seconds, twist_type

if TYPE_CHECKING:
    from pytest_simtwin.results.records import TestRecord
    from pytest_simtwin.ros.session import Received, RosSession, TopicBuffer

STEP_CHUNK = 0.05  # sim seconds per step while waiting for a condition in a paused simulator


def _latest_stamped(buf: TopicBuffer, lo: float, hi: float) -> Callable[[], bool]:
    """A probe: the latest message on ``buf`` is stamped within [lo, hi] sim seconds."""

    def probe() -> bool:
        msg = buf.latest()
        return msg is not None and lo <= stamp_seconds(msg.header.stamp) <= hi

    return probe


class RobotObserver:
    """Odometry, ground truth, clock and sim-time waits of one simulated robot (see ``Robot``)."""

    def __init__(
        self,
        ros: RosSession,
        control: ControlClient | None,
        topics: Mapping[str, Any],
        *,
        record: TestRecord | None = None,
        log_tail: Callable[[], list[str]] | None = None,
        abort: Callable[[], str | None] | None = None,
        cmd_vel_type: str | None = None,
    ) -> None:
        from nav_msgs.msg import Odometry

        self.ros = ros
        self.control = control
        self.topics = dict(topics)
        self.record = record
        self._log_tail = log_tail
        self._abort = abort
        self.cmd_vel_topic = str(self.topics.get("cmd_vel") or protocol.CMD_VEL)
        self.cmd_vel_type = cmd_vel_type or str(self.topics.get("cmd_vel_type") or "twist")
        twist_type(self.cmd_vel_type)  # validate early
        self.frame_id = str(self.topics.get("child_frame_id") or "base_link")
        odom_topic = str(self.topics.get("odom") or protocol.ODOM)
        # Subscribed after this test's reset: nothing it receives is from before it (see _current_odom).
        self._odom_fresh = not ros.is_subscribed(odom_topic, Odometry)
        self._odom = ros.subscribe(odom_topic, Odometry)
        self._clock_topic = str(self.topics.get("clock") or protocol.CLOCK)
        self._clock_buf: TopicBuffer | None = None
        if control is None:
            # Without control services /clock times everything: subscribe now and have a first
            # message (bounded: a simulator without /clock falls back to wall time).
            clock = self._clock
            if ros.count_publishers(self._clock_topic) > 0:
                with contextlib.suppress(WaitTimeout):
                    wait_until(lambda: clock.latest() is not None, 2.0, what=self._clock_topic)
        gt = self.topics.get("ground_truth")
        self._gt = ros.subscribe(str(gt), Odometry) if gt else None
        self._scan: TopicBuffer | None = None
        self._entity: str | None = None
        self._t0 = time.monotonic()
        self._cmd_log: list[tuple[float, float, float]] = []
        self._last_target: tuple[str, str] | None = None
        self.commanded_at: float | None = None  # monotonic time the last velocity command was sent
        self.reset_odometry_origin()
        # The trajectory starts at the message that describes the robot now (see _current_odom).
        self._t0 = self._origin.t if self._origin is not None else self._t0

    # -- errors and time -----------------------------------------------------------------------
    def _error(self, message: str) -> WaitTimeout:
        tail = (self._log_tail() if self._log_tail is not None else None) or None  # no simulator: no block
        return WaitTimeout(f"{message} [ROS_DOMAIN_ID {self.ros.domain_id}]", log_tail=tail)

    def _wait(
        self,
        probe: Callable[[], Any],
        timeout: float,
        what: str,
        describe: Callable[[], str] | None = None,
        max_interval: float = 0.05,
    ) -> Any:
        return wait_until(
            probe,
            timeout,
            what=what,
            describe=describe,
            error=self._error,
            abort=self._abort,
            max_interval=max_interval,
        )

    @property
    def _clock(self) -> TopicBuffer:
        """/clock, subscribed when first needed. With control services (stepping) the robot never
        needs it, and each subscriber makes the simulator serialise, and this process deserialise,
        ~80 clock messages per sim second: stepping ran at half speed with it."""
        if self._clock_buf is None:
            from rosgraph_msgs.msg import Clock

            self._clock_buf = self.ros.subscribe(self._clock_topic, Clock)
        return self._clock_buf

    def sim_time(self) -> float | None:
        """The simulator's time: from the control services when available, else the last /clock."""
        if self.control is not None:
            return float(self.control.state()["sim_time"])
        msg = self._clock.latest()
        return stamp_seconds(msg.clock) if msg is not None else None

    def _clock_time(self) -> float | None:
        msg = self._clock.latest()
        return stamp_seconds(msg.clock) if msg is not None else None

    def real_time_factor(self) -> float:
        """Measured sim/wall speed (control state, else from recent /clock messages); 1.0 if unknown."""
        if self.control is not None:
            st = self.control.state()
            # The slower of measured and target: a CPU-starved simulator runs below its target,
            # and a measurement taken while it was briefly faster must not shrink wait budgets.
            rates = [float(st.get("rtf_measured") or 0.0), float(st.get("rtf_target") or 0.0)]
            positive = [r for r in rates if r > 0]
            if positive:
                return min(positive)
        items = self._clock.since(time.monotonic() - 2.0)
        if len(items) >= 2 and items[-1].t - items[0].t > 0.2:
            d_sim = stamp_seconds(items[-1].msg.clock) - stamp_seconds(items[0].msg.clock)
            if d_sim > 0:
                return d_sim / (items[-1].t - items[0].t)
        return 1.0

    def _wall_budget(self, sim_seconds: float) -> float:
        return sim_seconds / max(self.real_time_factor(), 0.05) * 1.5 + 5.0

    def _step(self, **request: Any) -> protocol.SimState:
        """Step the paused simulator; the first step after we subscribed to topics waits for their match.

        Lazy publishers (cameras, contacts, IMUs, unheard scans and ground truth) send only to the
        subscribers the simulator has matched, and on a loaded machine DDS discovery takes longer than
        a short step: without the wait, what the step publishes never reaches a new subscription.
        """
        assert self.control is not None
        return self.control.step(listened=self.ros.take_fresh(), **request)

    def _paused(self) -> bool:
        return self.control is not None and self.control.state().get("state") == "paused"

    def _entity_name(self) -> str:
        if self.control is None:
            raise ControlError("this simulator has no control services: the robot's entity cannot be addressed")
        if self._entity is None:
            # this robot's model name (a multi-robot world reports it with its topics), else the first robot
            self._entity = str(self.topics.get("robot") or self.control.state().get("robot") or "")
            if not self._entity:
                raise ControlError("the simulator's state names no robot entity ('robot' is empty)")
        return self._entity

    # -- odometry ------------------------------------------------------------------------------
    def latest_odom(self) -> Any | None:
        return self._odom.latest()

    @hide_frames
    def wait_for_odom(self, timeout: float = 5.0) -> Any:
        """Wait (sim seconds, stepping a paused simulator) for an odometry message newer than now."""
        return self._wait_newer(self._odom, timeout, f"odometry on {self._odom.topic}")

    def _odom_or_wait(self) -> Any:
        msg = self._odom.latest()
        return msg if msg is not None else self.wait_for_odom()

    def _await_odom_at(self, st: Mapping[str, Any]) -> None:
        """After a step (``st`` is the simulator's state reply), wait for the odometry it published."""
        sim_t = float(st["sim_time"])
        exact = st.get("odom_stamp")
        if exact is not None:
            # The simulator names the stamp of its last odometry message: wait for exactly that one
            # (an older message of the same step may arrive later than the reply). Deterministic.
            target = float(exact)
            self._wait(
                _latest_stamped(self._odom, target - 1e-9, sim_t + 1e-9),
                5.0,
                f"the odometry message stamped {target:.3f} s on {self._odom.topic} (published during the step)",
                describe=lambda: self._describe_topic(self._odom),
            )
            return
        # A simulator that does not report stamps: the last message of the step is stamped in
        # (sim_t - period, sim_t]. The smallest positive gap survives drops and resets.
        stamps = [stamp_seconds(m.header.stamp) for m in self._odom.messages()[-10:]]
        gaps = [b - a for a, b in itertools.pairwise(stamps) if b - a > 1e-6]
        period = min(min(gaps), 0.5) if gaps else 0.1
        for _attempt in range(3):
            # Bounded on both sides: after a reset rewound the clock, older messages carry later stamps.
            fresh = _latest_stamped(self._odom, sim_t - period - 1e-6, sim_t + 1e-6)
            with contextlib.suppress(WaitTimeout):
                self._wait(fresh, 2.0, "odometry")
                return
            if not self._paused():
                break
            # Samples can be lost on a loaded host and a paused simulator publishes no more: step
            # one odometry period (the robot is at rest here) to get a new one.
            assert self.control is not None
            sim_t = float(self._step(duration=period)["sim_time"])
        latest = self._odom.latest()
        raise self._error(
            f"no odometry stamped at sim time >= {sim_t - period:.3f} s arrived on {self._odom.topic} after "
            f"stepping to {sim_t:.3f} s (latest stamp: "
            f"{stamp_seconds(latest.header.stamp) if latest is not None else 'none'})"
        )

    @property
    @hide_frames
    def pose(self) -> Pose2D:
        """(x, y, yaw) from odometry; yaw from the full quaternion."""
        return pose_of(self._odom_or_wait())

    @property
    @hide_frames
    def yaw(self) -> float:
        return self.pose.yaw

    @property
    @hide_frames
    def velocity(self) -> Velocity:
        t = self._odom_or_wait().twist.twist
        return Velocity(float(t.linear.x), float(t.angular.z))

    @property
    @hide_frames
    def ground_truth(self) -> Pose2D:
        """The true pose: from the control services, else the ground-truth topic."""
        if self.control is not None:
            p = self.control.get_entity_state(self._entity_name())["pose"]
            return Pose2D(float(p["x"]), float(p["y"]), float(p["yaw"]))
        if self._gt is None:
            raise ConfigError("the simulator publishes no ground truth topic and has no control services")
        msg = self._gt.latest() or self.ros.wait_for_message(self._gt.topic, self._gt.msg_type, 5.0)
        return pose_of(msg)

    def reset_odometry_origin(self) -> None:
        """Measure ``distance_travelled`` and ``displacement`` from here on."""
        self._origin_t = time.monotonic()
        self._origin = self._current_odom()

    def _find_odom(
        self, match: Callable[[Any], bool], windows: tuple[float, ...] = (1.0, 60.0, math.inf)
    ) -> Received | None:
        """The newest received odometry message that ``match``es (searching recent ones first)."""
        now = time.monotonic()
        for window in windows:
            for r in reversed(self._odom.since(now - window)):
                if match(r.msg):
                    return r
        return None

    def _current_odom(self) -> Received | None:
        """The odometry message that describes the robot now.

        With control services: the one stamped with the simulator's last odometry stamp; right after
        a reset, messages published before it can still be in flight, and the latest one received
        would then be the robot's old position. Without: the latest received.
        """
        target = None
        if self.control is not None:
            with contextlib.suppress(Exception):
                target = self.control.state().get("odom_stamp")
        fresh, self._odom_fresh = self._odom_fresh, False
        if target is not None:
            stamp = float(target)

            def exact(msg: Any) -> bool:
                if fresh:  # matched after that message was sent: the next one describes now as well
                    return stamp_seconds(msg.header.stamp) >= stamp - 1e-9
                return abs(stamp_seconds(msg.header.stamp) - stamp) < 1e-9

            found = self._find_odom(exact)
            if found is not None:
                return found
            with contextlib.suppress(WaitTimeout):  # still in flight: it arrives within moments
                arrived: Received = wait_until(lambda: self._find_odom(exact, (2.0,)), 2.0, what="the current odometry")
                return arrived
        return self._find_odom(lambda _msg: True)

    def poses_since(self, t: float, *, ground_truth: bool = False) -> list[Pose2D]:
        """Every odometry (or ground-truth topic) pose received since monotonic time ``t``.

        Waits that poll only the latest pose can miss a robot passing through; this cannot.
        """
        buf = self._gt if ground_truth else self._odom
        if buf is None:
            return [self.ground_truth]
        return [pose_of(r.msg) for r in buf.since(t)]

    def _path(self) -> list[Pose2D]:
        origin = self._origin
        if origin is None:  # no odometry yet at the origin: start with the first one after it
            return [pose_of(r.msg) for r in self._odom.since(self._origin_t)]
        items = self._odom.since(origin.t)
        start = next((i + 1 for i, r in enumerate(items) if r is origin), 0)  # in arrival order after it
        return [pose_of(origin.msg)] + [pose_of(r.msg) for r in items[start:]]

    @property
    def distance_travelled(self) -> float:
        """Path length (odometry) since the test started or ``reset_odometry_origin()``."""
        p = self._path()
        return float(sum(math.hypot(b.x - a.x, b.y - a.y) for a, b in itertools.pairwise(p)))

    @property
    def displacement(self) -> float:
        """Straight-line distance (odometry) from the origin pose to the current pose."""
        p = self._path()
        return math.hypot(p[-1].x - p[0].x, p[-1].y - p[0].y) if p else 0.0

    # -- waiting in sim time -------------------------------------------------------------------
    @hide_frames
    def wait_for_condition(
        self, probe: Callable[[], bool], timeout: float, *, what: str, describe: Callable[[], str] | None = None
    ) -> None:
        """Wait up to ``timeout`` sim seconds for ``probe()``; a paused simulator is stepped.

        ``describe()`` says what was seen instead; it goes into the timeout error.
        """
        if probe():
            return

        def seen() -> str:
            return f"{describe()}; {self._describe_clock()}" if describe is not None else self._describe_clock()

        if self._paused():
            assert self.control is not None
            elapsed = 0.0
            while elapsed < timeout - 1e-9:
                chunk = min(STEP_CHUNK, timeout - elapsed)
                st = self._step(duration=chunk)
                elapsed += chunk
                self._await_odom_at(st)
                if probe():
                    return
            raise self._error(
                f"{what} did not happen within {timeout:g} s sim time (stepped the paused simulator); {seen()}"
            )
        # The start comes from the simulator itself when it answers: the last /clock received can
        # lag the true sim time, and counting from it ended waits early (0.18 s of a 0.3 s wait).
        start = self.sim_time() if self.control is not None else self._clock_time()
        wall0 = time.monotonic()

        def check() -> str | None:
            if probe():
                return "ok"
            # Asked when it answers (a service round trip per poll) rather than subscribing to
            # /clock for the rest of the session (see _clock).
            now = self.sim_time() if self.control is not None else self._clock_time()
            if now is not None and start is not None:
                return "late" if now - start >= timeout else None
            return "late" if time.monotonic() - wall0 >= timeout else None  # no /clock: wall time

        budget = self._wall_budget(timeout)
        # Poll often: every poll interval of wall time is rtf x that much sim-time overshoot.
        if self._wait(check, budget, what, describe=seen, max_interval=0.01) == "late":
            raise self._error(f"{what} did not happen within {timeout:g} s sim time; {seen()}")

    def _describe_topic(self, buf: TopicBuffer) -> str:
        latest = buf.latest()
        stamp = getattr(getattr(latest, "header", None), "stamp", None)
        last = f", the latest stamped {stamp_seconds(stamp):.3f} s" if stamp is not None else ""
        return (
            f"{buf.count} message(s) on {buf.topic} since the session started{last}; "
            f"publishers on {buf.topic}: {self.ros.count_publishers(buf.topic)}"
        )

    def _wait_newer(self, buf: TopicBuffer, timeout: float, what: str) -> Any:
        """Wait (sim seconds, stepping a paused simulator) for a message on ``buf`` received after now; the latest."""
        before = buf.count
        self.wait_for_condition(lambda: buf.count > before, timeout, what=what, describe=lambda: self._describe_topic(buf))
        return buf.latest()

    def _describe_clock(self) -> str:
        if self.control is not None and self._clock_buf is None:
            with contextlib.suppress(ControlError):
                return f"sim time {float(self.control.state()['sim_time']):.3f} s"
        now = self._clock_time()
        return f"/clock at {now:.3f} s" if now is not None else f"no message on {self._clock.topic}"

    @hide_frames
    def wait(self, seconds: float) -> None:
        """Let ``seconds`` of sim time pass (steps a paused simulator, else waits for /clock)."""
        if seconds <= 0:
            return
        if self._paused():
            assert self.control is not None
            st = self._step(duration=seconds)
            self._await_odom_at(st)
            return
        with contextlib.suppress(WaitTimeout):
            self.wait_for_condition(lambda: False, seconds, what=f"{seconds:g} s of sim time")
