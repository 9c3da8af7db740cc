"""The simulator loop: pacing (real-time factor), lockstep, control requests, publication timing, exit.

One thread (the caller of :meth:`Runner.run`) owns the physics. Service callbacks and the cmd_vel
subscription run in the node's executor thread and only hand over work (a request queue, the latest
command) and wake the loop. Publication times are counted in physics steps, so what is published
and when is the same at any real-time factor, and identical across runs with the same seed and
the same commands applied through the stepping API.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from array import array
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin.sim import joint_commands
from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.services import ControlServices

if TYPE_CHECKING:
    from pytest_simtwin.sim.node import SimNode
    from pytest_simtwin.sim.sensor_node import SensorPublishers
    from pytest_simtwin.sim.world.model import WorldSpec

log = logging.getLogger("simtwin.sim")

CLOCK_MAX_HZ = 100.0  # a Python /clock subscriber drops a 1 kHz clock; 100 Hz is plenty for ROS timers


def _every(rate_hz: float, dt: float) -> int:
    """Publication period in steps for a rate in Hz (0 or less: every step)."""
    if rate_hz <= 0:
        return 1
    return max(1, round(1.0 / (rate_hz * dt)))


class Runner(ControlServices):
    """Runs one Physics behind one SimNode until stopped, ``--duration`` passed or the parent died."""

    def __init__(
        self,
        physics: Any,
        node: SimNode,
        world: WorldSpec,
        *,
        rtf: float = 1.0,
        paused: bool = False,
        lockstep: bool = False,
        seed: int = 0,
        duration: float | None = None,
        parent_pid: int | None = None,
        sensors: SensorPublishers | None = None,
    ) -> None:
        self.physics = physics
        self.sensors = sensors  # IMU, cameras, navsat (sensor_node.py)
        self.node = node
        self.world = world
        self.rtf = max(float(rtf), 0.0)
        self.lockstep = lockstep
        self.paused = paused or lockstep
        self.seed = seed
        self.duration = duration
        self.parent_pid = parent_pid
        self.stop_reason: str | None = None
        self._wake = threading.Event()
        node.set_waker(self._wake.set)
        # Services exist before the runner does: requests that came in meanwhile woke nobody.
        self._wake.set()
        dt = float(physics.step_size)
        #: robot name -> odometry period in steps (every robot's own odom_publish_frequency)
        self._robots = [m.name for m in world.robots if m.name in node.robots] or list(node.robots)
        self._primary = self._robots[0]
        self._odom_every = {
            m.name: _every(m.diff_drive.odom_publish_frequency if m.diff_drive else 50.0, dt)
            for m in world.robots
            if m.name in node.robots
        } or {self._primary: _every(50.0, dt)}
        # every lidar of every robot, by physics index: period in steps (0: no publisher)
        lidars = [lidar for m in world.robots for lidar in m.lidars]
        self._scan_every = [
            _every(lidars[i].update_rate, dt) if i < len(lidars) else 0 for i in range(len(node.scan_pubs))
        ]
        main = next((s for s in node.topics.scans if s.topic == node.topics.scan), None)
        self._main_scan = main.index if main is not None else None
        self._clock_every = max(1, math.ceil(1.0 / (CLOCK_MAX_HZ * dt) - 1e-9))
        self._last_scans: list[array[float] | None] = [None] * len(self._scan_every)
        self._scan_stamps: list[float | None] = [None] * len(self._scan_every)
        self._heard: dict[int, bool] = {}  # id(publisher) -> has subscribers
        self._listeners_at = 0.0
        self._next_type_check = 0.0
        self._odom_stamps: dict[str, float | None] = dict.fromkeys(self._robots)
        self._odom_snapshots: dict[str, tuple[float, Any, Any, Any]] = {
            r: (0.0, None, None, None) for r in self._robots
        }
        for robot in self._robots:
            io = node.robots[robot]
            names, _pos, _vel = physics.joint_states(robot)
            io.msg_joints.name = list(names)
            odom = physics.odometry(robot)  # the physics knows its odometry's uncertainty
            if hasattr(odom, "pose_covariance"):
                io.msg_odom.pose.covariance = [float(v) for v in odom.pose_covariance]
                io.msg_odom.twist.covariance = [float(v) for v in odom.twist_covariance]
        # real-time factor measurement over a sliding window of (wall, sim) samples while playing
        self._rtf_samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=64)
        self._anchor: tuple[float, float] | None = None  # (wall, sim) where real-time pacing started
        self._sub_counts: tuple[int, ...] = ()
        self._republish_at: list[float] = []
        self._joined_seen = 0  # node.matches.joined when the runner last looked
        self._pause_at_step: int | None = None  # play until this physics step, then pause (pause_at)
        wheels = [j for m in world.robots if m.diff_drive for j in (*m.diff_drive.left_joints, *m.diff_drive.right_joints)]
        self.faults = FaultSet(seed, topics=self._fault_topics, wheels=lambda: list(wheels))
        self.faults.changed = node.announce_fault
        node.faults = self.faults

    @property
    def _odom_stamp(self) -> float | None:
        return self._odom_stamps[self._primary]

    @property
    def _odom_snapshot(self) -> tuple[float, Any, Any, Any]:
        return self._odom_snapshots[self._primary]

    @property
    def _scan_stamp(self) -> float | None:
        return None if self._main_scan is None else self._scan_stamps[self._main_scan]

    def _apply_commands(self) -> None:
        for robot, cmd in self.node.take_commands().items():
            self.physics.set_command(*cmd, robot=robot)
        joint_commands.apply(self.physics, self.node.joint_commands)

    # -- public ---------------------------------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """Stop from another thread (or the loop itself); wakes the loop at once."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._wake.set()

    def signal_stop(self, reason: str) -> None:
        """Stop from a signal handler: only a flag. ``Event.set`` there could deadlock when the
        signal lands while the main thread holds the event's lock inside ``wait``; every wait of
        the loop is at most 0.1 s, so the flag is seen promptly."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def run(self) -> int:
        """Loop until stopped; returns the process exit code (0 for every orderly stop)."""
        self.publish_all(scan=True)
        log.info(
            "running: %s, step %.4g s, %s",
            "lockstep (time advances only on step requests)"
            if self.lockstep
            else ("paused" if self.paused else f"rtf {self.rtf:g}" if self.rtf > 0 else "as fast as possible"),
            self.physics.step_size,
            f"odom every {'/'.join(map(str, self._odom_every.values()))} steps, scan every "
            f"{'/'.join(map(str, self._scan_every)) or '-'}, clock every {self._clock_every}",
        )
        next_check = 0.0
        next_status = time.monotonic() + 10.0
        dt = float(self.physics.step_size)
        # Free-running, one loop turn advances a quantum of sim time (several publication events):
        # the per-turn bookkeeping then costs nothing next to physics. Paced, a turn ends at the next event.
        quantum = max(1, round(0.05 / dt))
        end_steps = None if self.duration is None else round(self.duration / dt)
        while self.stop_reason is None:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.2
                self._housekeeping(now)
                if now >= next_status:
                    next_status = now + 10.0
                    log.info(
                        "sim time %.3f s, rtf %.2f, %d command(s)", self.physics.time, self._rtf(), self.node.cmd_count
                    )
            if self._wake.is_set() or (self.paused and not self.node.requests.empty()):
                self._wake.clear()  # before draining: a request arriving meanwhile sets it again
                if self.node.matches.joined != self._joined_seen:
                    self._subscriber_joined(now)
                self._drain_requests()
                if self.stop_reason is not None:
                    break
            if self.paused:
                self._wake.wait(0.1)  # requests and commands wake it at once
                continue
            self._apply_commands()
            if self.rtf > 0:
                sim = self.physics.time
                if self._anchor is None:
                    self._anchor = (now, sim)
                ahead = self._anchor[0] + (sim - self._anchor[1]) / self.rtf - now
                if ahead > 0.0005:
                    self._wake.wait(min(ahead, 0.1))
                    continue
                if ahead < -0.25:  # fell far behind (CPU starved): restart pacing instead of racing to catch up
                    self._anchor = (now, sim)
                steps = self._steps_to_next_event()
            else:
                steps = quantum
            if end_steps is not None:
                steps = min(steps, max(end_steps - int(self.physics.steps), 0))
            if self._pause_at_step is not None:
                # Pausing here, exactly at the asked step, costs no service round trip: a client
                # pausing "when /clock says t" overshoots by its latency on a loaded machine.
                left = self._pause_at_step - int(self.physics.steps)
                if left <= 0:
                    self._pause_now()
                    continue
                steps = min(steps, left)
            self._advance(steps)
            self._rtf_samples.append((time.monotonic(), self.physics.time))
            if end_steps is not None and self.physics.steps >= end_steps:
                self.request_stop(f"--duration {self.duration:g} s of sim time reached")
        log.info("stopping: %s (sim time %.3f s)", self.stop_reason, self.physics.time)
        self.node.fail_pending(f"the simulator is stopping: {self.stop_reason}")
        return 0

    # -- stepping and publishing ----------------------------------------------------------------
    def _steps_to_next_event(self) -> int:
        s = int(self.physics.steps)
        n = self._clock_every - s % self._clock_every
        for every in self._odom_every.values():
            k = every - s % every
            if k < n:
                n = k
        for every in self._scan_every:
            if every:
                k = every - s % every
                if k < n:
                    n = k
        if self.sensors is not None:
            n = min(n, self.sensors.steps_to_next(s))
        return n

    def _advance(self, steps: int) -> None:
        """Step ``steps`` physics steps, publishing whatever falls due (as fast as possible).

        The command is not re-read inside: a request's result depends only on what was commanded
        before it (lockstep determinism); the free-running loop reads it every turn.
        """
        remaining = steps
        while remaining > 0 and self.stop_reason is None:  # a signal ends even a long step request
            n = self._steps_to_next_event()
            if remaining < n:
                n = remaining
            self.physics.step(n)
            remaining -= n
            self._publish_due()
            if self.faults.faults or self.faults.held:
                self._apply_faults()

    def _fault_topics(self) -> set[str]:
        """Sensor topics a fault may target: the node's (odometry, lidars, ...) and the IMU/camera/navsat ones."""
        return self.node.sensor_topics() | (self.sensors.topics() if self.sensors is not None else set())

    def _apply_faults(self) -> None:
        """Between steps: release delayed commands, start and end physical faults (sim/faults.py)."""
        t = float(self.physics.time)
        for robot, cmd in self.node.release_delayed_commands(t).items():
            self.physics.set_command(*cmd, robot=robot)
        self.faults.apply_physics(t, self.physics)

    def _refresh_listeners(self) -> dict[int, bool]:
        """Which publishers have subscribers (by id), re-read every 50 ms of wall time: querying per
        message cost ~3 µs each, 5 % of the loop when free-running."""
        now = time.monotonic()
        if now >= self._listeners_at:
            self._listeners_at = now + 0.05
            self._heard = {id(p): p.get_subscription_count() > 0 for p in self.node.all_publishers()}
        return self._heard

    def _publish_due(self) -> None:
        s = int(self.physics.steps)
        t = float(self.physics.time)
        node = self.node
        heard = self._refresh_listeners()
        if s % self._clock_every == 0 and heard.get(id(node.pub_clock), True):
            node.publish_clock(t)
        for robot, every in self._odom_every.items():
            if s % every == 0:
                self._publish_odom(t, robot)
        for index, every in enumerate(self._scan_every):
            if every and s % every == 0:
                # Always computed, published only when someone listens: the noise sequence must not
                # depend on who subscribed.
                ranges = self._last_scans[index] = self.physics.lidar_scan(index)
                self._scan_stamps[index] = t
                if heard.get(id(node.scan_pubs[index][0]), True):
                    node.publish_scan(t, ranges, index)
        if self.sensors is not None:
            self.sensors.publish_due(self.physics, s, t)

    def _publish_odom(self, t: float, robot: str | None = None, always: bool = False) -> None:
        # Serialising a message costs 10-25 µs even with nobody listening: skip unheard topics.
        robot = robot or self._primary
        node = self.node
        io = node.robots[robot]
        # Odometry is kept even when unheard (~40 µs at the odometry rate): a late joiner gets
        # exactly this sample (republish_last), and clients wait for this stamp after a step
        # ("odom_stamp"). Joints and ground truth (~300 µs) are computed only when heard.
        heard = {} if always else self._refresh_listeners()
        o = self.physics.odometry(robot)
        joints = self.physics.joint_states(robot) if heard.get(id(io.pub_joints), True) else None
        truth = self.physics.ground_truth(robot) if heard.get(id(io.pub_truth), True) else None
        self._odom_stamps[robot], self._odom_snapshots[robot] = t, (t, o, joints, truth)
        if heard.get(id(io.pub_odom), True):
            node.publish_odom(t, o.x, o.y, o.yaw, o.vx, o.wz, robot=robot)
        if io.pub_tf is not None and heard.get(id(io.pub_tf), True):
            node.publish_tf(t, o.x, o.y, o.yaw, robot=robot)
        if joints is not None:
            node.publish_joints(t, joints[1], joints[2], robot=robot)
        if truth is not None:
            node.publish_truth(t, truth, robot=robot)

    def republish_last(self, only: Collection[int] | None = None) -> None:
        """Re-send the last odometry/joints/truth/scan (same stamps and content) for late joiners.

        Publishing the state *now* instead would add a message whose timing depends on when a
        subscriber matched, and make what a stepping client reads non-deterministic. ``only``: ids of
        the publishers to re-send on (default: all, cameras included).
        """
        node = self.node

        def wanted(pub: Any) -> bool:
            return pub is not None and (only is None or id(pub) in only)

        if self._odom_stamp is None:
            if only is None:
                self.publish_all()
            return
        if wanted(node.pub_clock):
            node.publish_clock(float(self.physics.time))
        for robot in self._robots:
            t, odom, joints, truth = self._odom_snapshots[robot]
            io = node.robots[robot]
            if odom is None:
                continue
            if wanted(io.pub_odom):
                node.publish_odom(t, odom.x, odom.y, odom.yaw, odom.vx, odom.wz, robot=robot)
            if wanted(io.pub_tf):
                node.publish_tf(t, odom.x, odom.y, odom.yaw, robot=robot)
            # Joints and truth of that instant exist only if someone listened then; else the current
            # state is the best a new listener can get (nobody steps on these stamps).
            if wanted(io.pub_joints):
                if joints is None:
                    joints, t_joints = self.physics.joint_states(robot), float(self.physics.time)
                else:
                    t_joints = t
                node.publish_joints(t_joints, joints[1], joints[2], robot=robot)
            if wanted(io.pub_truth):
                if truth is None:
                    truth, t_truth = self.physics.ground_truth(robot), float(self.physics.time)
                else:
                    t_truth = t
                node.publish_truth(t_truth, truth, robot=robot)
        for index, ranges in enumerate(self._last_scans):
            stamp = self._scan_stamps[index]
            if ranges is not None and stamp is not None and wanted(node.scan_pubs[index][0]):
                node.publish_scan(stamp, ranges, index)
        if self.sensors is not None and only is None:
            self.sensors.republish(self.physics)

    def publish_all(self, *, scan: bool = False) -> None:
        """Publish the current state now (start, reset, teleport, late joiners while paused)."""
        t = float(self.physics.time)
        self.node.publish_clock(t)
        for robot in self._robots:
            self._publish_odom(t, robot, always=True)
        for index, every in enumerate(self._scan_every):
            if not every:
                continue
            if scan or self._last_scans[index] is None:
                self._last_scans[index] = self.physics.lidar_scan(index)
            self._scan_stamps[index] = t
            ranges = self._last_scans[index]
            assert ranges is not None
            self.node.publish_scan(t, ranges, index)

    def _subscriber_joined(self, now: float) -> None:
        """A subscription matched one of our publishers: publish to it now, not after the 50 ms re-read.

        Paused, the current state is re-sent at once and again a little later (the reader side may
        match after the writer side; see _housekeeping). Playing, a topic nobody heard gets its last
        sample at once (nobody else receives it twice) instead of at its next period (a scan: up to
        0.2 s); the rest is published as it falls due.
        """
        self._joined_seen = self.node.matches.joined
        before = self._heard
        self._listeners_at = 0.0
        if self.sensors is not None:
            self.sensors.forget_listeners()
        if self.paused:
            self.republish_last()
            self._republish_at = [now + 0.05, now + 0.3, now + 1.0]
            return
        heard = self._refresh_listeners()
        # Unknown before (no re-read yet) counts as heard: that is how it was published.
        newly = {pub for pub, listened in heard.items() if listened and not before.get(pub, True)}
        if newly:
            self.republish_last(only=newly)

    def _housekeeping(self, now: float) -> None:
        if self.parent_pid is not None and not _alive(self.parent_pid):
            self.request_stop(f"parent process {self.parent_pid} exited (--parent-pid)")
        if now >= self._next_type_check:  # a graph query: about 1 ms, so once a second
            self._next_type_check = now + 1.0
            messages = self.node.check_cmd_vel_types()
        else:
            messages = []
        for message in messages:
            log.error("%s", message)
        if self.paused:
            # Nothing is published while paused; a subscriber that joins now would never see a
            # message, so re-send the current state when the set of subscribers changes. Follow-ups
            # cover the reader side matching a little after the writer side.
            counts = self.node.subscriber_counts()
            if self.sensors is not None:
                counts += self.sensors.subscriber_counts()
            if counts != self._sub_counts:
                self._sub_counts = counts
                self._republish_at = [now + 0.05, now + 0.3, now + 1.0]
            if self._republish_at and now >= self._republish_at[0]:
                while self._republish_at and now >= self._republish_at[0]:
                    self._republish_at.pop(0)
                self.republish_last()
        else:
            self._sub_counts = ()

    def _rtf(self) -> float:
        if self.paused or len(self._rtf_samples) < 2:
            return 0.0
        w1, s1 = self._rtf_samples[-1]
        # the oldest sample of the last 2 s of wall time
        w0, s0 = next((w, s) for w, s in self._rtf_samples if w1 - w <= 2.0)
        if w1 - w0 <= 0:
            return 0.0
        return (s1 - s0) / (w1 - w0)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone): the simulator exits with its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
