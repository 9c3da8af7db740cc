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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_simtwin.control import protocol
from pytest_simtwin.errors import SimTwinError
from pytest_simtwin.ros.domains import process_alive

if TYPE_CHECKING:
    from pytest_simtwin.sim.node import Request, SimNode
    from pytest_simtwin.sim.world.model import WorldSpec

log = logging.getLogger("simtwin.sim")

CLOCK_MAX_HZ = 100.0  # a Python /clock subscriber drops a 1 kHz clock; 100 Hz is plenty for ROS timers
VERSION = "0.1.0"
FEATURES = [
    "step_simulation",
    "reset_simulation",
    "set_simulation_state",
    "get_entities",
    "get_entity_state",
    "set_entity_state",
    "spawn_entity",
    "delete_entity",
    "lockstep",
    "real_time_factor",
    "pause_at",  # set_simulation_state playing with {"pause_at": t}: pauses itself at sim time t
    "until_rest",  # step_simulation with {"until_rest": {...}}: stops stepping once an entity is at rest
]


def _every(rate_hz: float, dt: float) -> int:
    """Publication period in steps for a rate in Hz (0 or less: every step)."""
    if rate_hz <= 0:
        return 1
    return max(1, round(1.0 / (rate_hz * dt)))


class Runner:
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
    ) -> None:
        self.physics = physics
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
        dd = world.robot.diff_drive
        self._odom_every = _every(dd.odom_publish_frequency if dd else 50.0, dt)
        lidars = world.robot.lidars
        self._scan_every = _every(lidars[0].update_rate, dt) if lidars and node.pub_scan is not None else 0
        self._clock_every = max(1, math.ceil(1.0 / (CLOCK_MAX_HZ * dt) - 1e-9))
        self._last_scan: array[float] | None = None
        self._listeners: tuple[bool, ...] = (True,) * 5
        self._listeners_at = 0.0
        self._next_type_check = 0.0
        self._scan_stamp: float | None = None
        self._odom_stamp: float | None = None
        self._odom_snapshot: tuple[float, Any, Any, Any] = (0.0, None, None, None)
        names, _pos, _vel = physics.joint_states()
        node.msg_joints.name = list(names)
        odom = physics.odometry()  # the physics knows its odometry's uncertainty
        if hasattr(odom, "pose_covariance"):
            node.msg_odom.pose.covariance = [float(v) for v in odom.pose_covariance]
            node.msg_odom.twist.covariance = [float(v) for v in odom.twist_covariance]
        # real-time factor measurement over a sliding window of (wall, sim) samples while playing
        self._rtf_samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=64)
        self._anchor: tuple[float, float] | None = None  # (wall, sim) where real-time pacing started
        self._sub_counts: tuple[int, ...] = ()
        self._republish_at: list[float] = []
        self._pause_at_step: int | None = None  # play until this physics step, then pause (pause_at)

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
            f"odom every {self._odom_every} steps, scan every {self._scan_every or '-'}, clock every {self._clock_every}",
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
                self._drain_requests()
                if self.stop_reason is not None:
                    break
            if self.paused:
                self._wake.wait(0.1)  # requests and commands wake it at once
                continue
            cmd = self.node.take_command()
            if cmd is not None:
                self.physics.set_command(*cmd)
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
        k = self._odom_every - s % self._odom_every
        if k < n:
            n = k
        if self._scan_every:
            k = self._scan_every - s % self._scan_every
            if k < n:
                n = k
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

    def _refresh_listeners(self) -> tuple[bool, ...]:
        """Which publishers have subscribers (clock, odom, joints, truth, scan), re-read every 50 ms of
        wall time: querying per message cost ~3 µs each, 5 % of the loop when free-running."""
        now = time.monotonic()
        if now >= self._listeners_at:
            self._listeners_at = now + 0.05
            n = self.node
            pubs = (n.pub_clock, n.pub_odom, n.pub_joints, n.pub_truth, n.pub_scan)
            self._listeners = tuple(p is not None and p.get_subscription_count() > 0 for p in pubs)
        return self._listeners

    def _publish_due(self) -> None:
        s = int(self.physics.steps)
        t = float(self.physics.time)
        node = self.node
        listen = self._refresh_listeners()
        if s % self._clock_every == 0 and listen[0]:
            node.publish_clock(t)
        if s % self._odom_every == 0:
            self._publish_odom(t)
        if self._scan_every and s % self._scan_every == 0:
            # Always computed, published only when someone listens: the noise sequence must not
            # depend on who subscribed.
            self._last_scan = self.physics.lidar_scan(0)
            self._scan_stamp = t
            if listen[4]:
                node.publish_scan(t, self._last_scan)

    def _publish_odom(self, t: float, always: bool = False) -> None:
        # Serialising a message costs 10-25 µs even with nobody listening: skip unheard topics.
        node = self.node
        # Odometry is kept even when unheard (~40 µs at the odometry rate): a late joiner gets
        # exactly this sample (republish_last), and clients wait for this stamp after a step
        # ("odom_stamp"). Joints and ground truth (~300 µs) are computed only when heard.
        listen = (True,) * 5 if always else self._refresh_listeners()
        o = self.physics.odometry()
        joints = self.physics.joint_states() if listen[2] else None
        truth = self.physics.ground_truth() if listen[3] else None
        self._odom_stamp, self._odom_snapshot = t, (t, o, joints, truth)
        if listen[1]:
            node.publish_odom(t, o.x, o.y, o.yaw, o.vx, o.wz)
        if joints is not None:
            node.publish_joints(t, joints[1], joints[2])
        if truth is not None:
            node.publish_truth(t, truth)

    def republish_last(self) -> None:
        """Re-send the last odometry/joints/truth/scan (same stamps and content) for late joiners.

        Publishing the state *now* instead would add a message whose timing depends on when a
        subscriber matched, and make what a stepping client reads non-deterministic.
        """
        node = self.node
        if self._odom_stamp is None:
            self.publish_all()
            return
        node.publish_clock(float(self.physics.time))
        t, odom, joints, truth = self._odom_snapshot
        node.publish_odom(t, odom.x, odom.y, odom.yaw, odom.vx, odom.wz)
        # Joints and truth of that instant exist only if someone listened then; else the current
        # state is the best a new listener can get (nobody steps on these stamps).
        if joints is None:
            joints, t_joints = self.physics.joint_states(), float(self.physics.time)
        else:
            t_joints = t
        node.publish_joints(t_joints, joints[1], joints[2])
        if truth is None:
            truth, t_truth = self.physics.ground_truth(), float(self.physics.time)
        else:
            t_truth = t
        node.publish_truth(t_truth, truth)
        if node.pub_scan is not None and self._last_scan is not None and self._scan_stamp is not None:
            node.publish_scan(self._scan_stamp, self._last_scan)

    def publish_all(self, *, scan: bool = False) -> None:
        """Publish the current state now (start, reset, teleport, late joiners while paused)."""
        t = float(self.physics.time)
        self.node.publish_clock(t)
        self._publish_odom(t, always=True)
        if self.node.pub_scan is not None:
            if scan or self._last_scan is None:
                self._last_scan = self.physics.lidar_scan(0)
            self._scan_stamp = t
            self.node.publish_scan(t, self._last_scan)

    def _housekeeping(self, now: float) -> None:
        if self.parent_pid is not None and not process_alive(self.parent_pid):
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

    # -- control requests -----------------------------------------------------------------------
    def _drain_requests(self) -> None:
        import queue

        while self.stop_reason is None:
            try:
                req = self.node.requests.get_nowait()
            except queue.Empty:
                return
            self._handle(req)

    def _handle(self, req: Request) -> None:
        log.debug("control request %s %s", req.name, req.payload)
        handler = getattr(self, f"_srv_{req.name}", None)
        try:
            if handler is None:
                raise ValueError(f"unknown service {req.name!r}")
            req.finish(True, handler(req.payload))
        except (ValueError, KeyError, TypeError, SimTwinError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            req.finish(False, {"error": f"{req.name}: {text}"})
        except Exception as exc:  # a bug: keep the simulator alive, report it and log the traceback
            log.exception("control request %s %s failed", req.name, req.payload)
            req.finish(False, {"error": f"{req.name}: internal error {type(exc).__name__}: {exc}"})

    def state(self) -> dict[str, Any]:
        return {
            "state": "paused" if self.paused else "playing",
            "sim_time": float(self.physics.time),
            "steps": int(self.physics.steps),
            "step_size": float(self.physics.step_size),
            "rtf_target": self.rtf,
            "rtf_measured": round(self._rtf(), 3),
            "cmd_count": self.node.cmd_count,
            # Sim time stamps of the last odometry and scan messages: after a step, wait for exactly
            # these (an older message can arrive later than the step's reply).
            "odom_stamp": self._odom_stamp,
            "scan_stamp": self._scan_stamp,
            "world": self.world.name,
            "robot": self.world.robot.name,
            "seed": self.seed,
            "lockstep": self.lockstep,
            "dropped": dict(self.node.dropped),  # topic -> messages a slow subscriber made the writer refuse
            "contacts": self.physics.contacts(),  # entities touching the robot now (not the ground)
        }

    def _srv_get_simulator_features(self, _p: dict[str, Any]) -> dict[str, Any]:
        topics = self.node.topics.as_dict()
        for key in ("max_linear_velocity", "max_angular_velocity"):
            if topics[key] is not None and not math.isfinite(topics[key]):
                topics[key] = None  # JSON has no infinity; null = unlimited
        return {"name": "simtwin-sim", "version": VERSION, "features": FEATURES, "topics": topics}

    def _srv_get_simulation_state(self, _p: dict[str, Any]) -> dict[str, Any]:
        return self.state()

    def _srv_set_simulation_state(self, p: dict[str, Any]) -> dict[str, Any]:
        want = p.get("state")
        if want not in protocol.STATES:
            raise ValueError(f"state {want!r} is not one of {', '.join(protocol.STATES)}")
        if want == "playing":
            if self.lockstep:
                raise ValueError(
                    "the simulator runs with --lockstep: time advances only on step_simulation requests; "
                    "start it without --lockstep to play freely"
                )
            if self.paused:
                self.paused = False
                self._anchor = None
                self._rtf_samples.clear()
            self._pause_at_step = None
            if p.get("pause_at") is not None:
                t = float(p["pause_at"])
                if not math.isfinite(t) or t < float(self.physics.time):
                    raise ValueError(f"pause_at {t!r}: expected a sim time not before now ({self.physics.time:.3f} s)")
                self._pause_at_step = round(t / float(self.physics.step_size))
        elif want == "paused":
            self._pause_now()
        else:
            # Stop a moment later: the reply must leave before the context shuts down.
            timer = threading.Timer(0.25, self.request_stop, args=("quit requested through set_simulation_state",))
            timer.daemon = True
            timer.start()
        return {**self.state(), "state": "quitting" if want == "quitting" else self.state()["state"]}

    def _pause_now(self) -> None:
        self.paused = True
        self._pause_at_step = None
        self._republish_at = []

    def _srv_step_simulation(self, p: dict[str, Any]) -> dict[str, Any]:
        if not self.paused:
            raise ValueError("the simulation is playing; pause it first (set_simulation_state paused), then step")
        # A client that subscribed just before this request waits for the step's last messages:
        # re-read who listens now rather than trusting the 50 ms cache.
        self._listeners_at = 0.0
        dt = float(self.physics.step_size)
        if "steps" in p and p["steps"] is not None:
            steps = p["steps"]
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise ValueError(f"steps must be a positive integer, found {steps!r}")
        elif "duration" in p and p["duration"] is not None:
            duration = p["duration"]
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
                raise ValueError(f"duration must be a positive number of seconds, found {duration!r}")
            steps = max(1, round(float(duration) / dt))
        else:
            raise ValueError('give {"steps": N} or {"duration": seconds}')
        rest = self._rest_condition(p.get("until_rest"), dt)
        # Commands that arrived while paused apply from the first step; none change mid-request, so
        # the result depends only on the request sequence (lockstep determinism).
        cmd = self.node.take_command()
        if cmd is not None:
            self.physics.set_command(*cmd)
        if rest is None:
            self._advance(int(steps))
        else:
            # Checked before each chunk, as a client stepping chunk by chunk would (one request
            # instead of two round trips per chunk while a stopped robot decelerates).
            at_rest, chunk, done = rest[0](), rest[1], 0
            while not at_rest and done < steps and self.stop_reason is None:
                n = min(chunk, int(steps) - done)
                self._advance(n)
                done += n
                at_rest = rest[0]()
        if self.duration is not None and self.physics.time >= self.duration - 1e-9:
            self.request_stop(f"--duration {self.duration:g} s of sim time reached")
        return self.state() if rest is None else {**self.state(), "at_rest": at_rest}

    def _rest_condition(self, spec: Any, dt: float) -> tuple[Callable[[], bool], int] | None:
        """``{"name", "linear", "angular", "chunk"}``: (at rest now?, steps per check) or None."""
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ValueError(f'until_rest must be an object such as {{"name": "robot"}}, found {spec!r}')
        name = self._name(spec)
        limits = {}
        for key, default in (("linear", 0.01), ("angular", 0.02), ("chunk", 0.05)):
            value = spec.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"until_rest.{key} must be a positive number, found {value!r}")
            limits[key] = float(value)

        is_robot = name == self.world.robot.name

        def slow(linear: float, angular: float) -> bool:
            return abs(linear) < limits["linear"] and abs(angular) < limits["angular"]

        def at_rest() -> bool:
            tw = self.physics.entity_state(name).get("twist") or {}
            speed = math.hypot(float(tw.get("vx", 0.0)), float(tw.get("vy", 0.0)))
            # The robot's last odometry message must say so too: wheel odometry averages over its
            # period and lags the true twist, and a client reads "stopped" from that message.
            odom = self._odom_snapshot[1] if is_robot else None
            return slow(speed, float(tw.get("wz", 0.0))) and (odom is None or slow(float(odom.vx), float(odom.wz)))

        return at_rest, max(1, round(limits["chunk"] / dt))

    def _srv_reset_simulation(self, p: dict[str, Any]) -> dict[str, Any]:
        scope = p.get("scope", "all")
        if scope not in protocol.RESET_SCOPES:
            raise ValueError(f"scope {scope!r} is not one of {', '.join(protocol.RESET_SCOPES)}")
        seed = p.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed must be an integer >= 0, found {seed!r}")
        self.physics.reset(scope, seed=seed)
        if scope in ("all", "state"):
            self.node.take_command()  # a command sent before the reset must not move the reset robot
        self._anchor = None
        self._rtf_samples.clear()
        self.publish_all(scan=True)
        return self.state()

    def _srv_get_entities(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"entities": list(self.physics.entities())}

    def _name(self, p: dict[str, Any]) -> str:
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f'give the entity as {{"name": "..."}}; found {name!r}')
        if name not in self.physics.entities():
            raise ValueError(f"no entity named {name!r}; entities: {', '.join(self.physics.entities())}")
        return name

    def _srv_get_entity_state(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name(p)
        return {"name": name, **dict(self.physics.entity_state(name))}

    def _srv_set_entity_state(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name(p)
        pose = p.get("pose") or {}
        twist = p.get("twist")
        if not isinstance(pose, dict) or (twist is not None and not isinstance(twist, dict)):
            raise ValueError('pose and twist must be objects such as {"x": 1.0, "yaw": 0.5}')
        self.physics.set_entity_state(name, pose=pose, twist=twist)
        self.publish_all()
        return {"name": name, **dict(self.physics.entity_state(name))}

    def _srv_spawn_entity(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f'give a name, e.g. {{"name": "box1", "shape": "box", ...}}; found {name!r}')
        shape = p.get("shape", "box")
        if shape not in protocol.SHAPES:
            raise ValueError(f"shape {shape!r} is not one of {', '.join(protocol.SHAPES)}")
        existing = set(self.physics.entities())
        if name in existing:
            if not p.get("allow_renaming"):
                raise ValueError(f"an entity named {name!r} exists; delete it, pick another name or allow_renaming")
            base, i = name, 1
            while f"{base}_{i}" in existing:
                i += 1
            name = f"{base}_{i}"
        size = p.get("size")
        if not isinstance(size, (list, tuple)) or not all(isinstance(v, (int, float)) for v in size):
            raise ValueError(
                f"size must be a list of numbers (box [x, y, z], cylinder [r, l], sphere [r]); found {size!r}"
            )
        self.physics.spawn(
            name,
            shape,
            tuple(float(v) for v in size),
            dict(p.get("pose") or {}),
            static=bool(p.get("static", True)),
            mass=p.get("mass"),
        )
        if self.paused and self.node.pub_scan is not None:
            self.publish_all(scan=True)  # a paused test sees the obstacle in the next scan at once
        return {"name": name}

    def _srv_delete_entity(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name(p)
        self.physics.remove(name)
        return {"name": name}
