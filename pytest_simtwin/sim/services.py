"""The simulator's control services: one handler per ``/simtwin`` service of :mod:`pytest_simtwin.control.protocol`.

:class:`ControlServices` is the request side of :class:`~pytest_simtwin.sim.runner.Runner`: the loop
drains the node's request queue between physics steps and calls ``_srv_<service>(payload)``; each
returns the reply payload (typed in the protocol module). The attributes below are the runner's.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pytest_simtwin.control import protocol
from pytest_simtwin.errors import SimTwinError

if TYPE_CHECKING:
    from pytest_simtwin.sim.faults import FaultSet
    from pytest_simtwin.sim.node import Request, SimNode
    from pytest_simtwin.sim.sensor_node import SensorPublishers
    from pytest_simtwin.sim.world.model import WorldSpec

log = logging.getLogger("simtwin.sim")

VERSION = "0.1.0"
#: Longest wait (wall s) of a step for the subscriptions it names in "listened" to be matched (DDS discovery).
LISTENER_WAIT = 3.0
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
    "listened",  # step_simulation with {"listened": [topic]}: first waits for those subscriptions to match
    "faults",  # inject_fault / clear_fault / get_faults (sim/faults.py)
]


class ControlServices:
    """Handlers of the control services; mixed into the runner, which owns the state they read."""

    physics: Any
    node: SimNode
    world: WorldSpec
    rtf: float
    lockstep: bool
    paused: bool
    seed: int
    duration: float | None
    stop_reason: str | None
    _pause_at_step: int | None
    _rtf_samples: collections.deque[tuple[float, float]]
    _anchor: tuple[float, float] | None
    _primary: str
    _robots: list[str]
    _odom_stamps: dict[str, float | None]
    _scan_stamps: list[float | None]
    _scan_every: list[int]
    _odom_snapshots: dict[str, tuple[float, Any, Any, Any]]
    _republish_at: list[float]
    _listeners_at: float
    faults: FaultSet
    sensors: SensorPublishers | None

    # provided by the runner
    def request_stop(self, reason: str) -> None:
        raise NotImplementedError

    def publish_all(self, *, scan: bool = False) -> None:
        raise NotImplementedError

    def _advance(self, steps: int) -> None:
        raise NotImplementedError

    def _rtf(self) -> float:
        raise NotImplementedError

    def _apply_commands(self) -> None:
        raise NotImplementedError

    @property
    def _odom_stamp(self) -> float | None:
        raise NotImplementedError

    @property
    def _scan_stamp(self) -> float | None:
        raise NotImplementedError

    def _drain_requests(self) -> None:
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

    def state(self) -> protocol.SimState:
        return {
            "state": "paused" if self.paused else "playing",
            "sim_time": float(self.physics.time),
            "steps": int(self.physics.steps),
            "step_size": float(self.physics.step_size),
            "rtf_target": self.rtf,
            "rtf_measured": round(self._rtf(), 3),
            "cmd_count": self.node.cmd_count,
            "joint_command_count": self.node.joint_commands.count,
            # Sim time stamps of the last odometry and scan messages: after a step, wait for exactly
            # these (an older message can arrive later than the step's reply).
            "odom_stamp": self.node.sent_stamp(self.node.topics.odom, self._odom_stamp),
            "scan_stamp": self.node.sent_stamp(self.node.topics.scan, self._scan_stamp),
            "world": self.world.name,
            "robot": self._primary,
            "robots": list(self._robots),
            # per robot / per lidar topic, for multi-robot clients (the two above are the first robot's)
            "odom_stamps": dict(self._odom_stamps),
            "scan_stamps": {
                self.node.scan_pubs[i][0].topic_name: st for i, st in enumerate(self._scan_stamps) if st is not None
            },
            "seed": self.seed,
            "lockstep": self.lockstep,
            "dropped": dict(self.node.dropped),  # topic -> messages a slow subscriber made the writer refuse
            "camera_frames": self.sensors.frames() if self.sensors is not None else {},
            # topic -> stamp of the last IMU/camera/contact/... message sent (contacts: only while touching)
            "sensor_stamps": {t: st for t, st in ((t, self.node.sent_stamp(t, st)) for t, st in
                              (self.sensors.stamps.items() if self.sensors is not None else ())) if st is not None},
            "contacts": self.physics.contacts(),  # entities touching the robot now (not the ground)
        }

    def _srv_get_simulator_features(self, _p: dict[str, Any]) -> protocol.Features:
        topics = self.node.topics.as_dict()  # JSON has no infinity: unlimited velocities are null
        sensors = self.sensors.describe() if self.sensors is not None else []
        return {
            "name": "simtwin-sim",
            "version": VERSION,
            "features": FEATURES,
            "topics": cast(protocol.Topics, topics),
            "sensors": sensors,
        }

    def _srv_get_simulation_state(self, _p: dict[str, Any]) -> protocol.SimState:
        return self.state()

    def _srv_set_simulation_state(self, p: dict[str, Any]) -> protocol.SimState:
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

    def _await_listeners(self, topics: Any) -> None:
        """Wait (bounded) until our writer on each of ``topics`` has matched a subscription.

        Lazy sensors (cameras, contacts, IMUs, unheard scans) publish only to matched subscribers; a
        client that subscribed just before stepping is matched here only after DDS discovery, which
        takes longer than a short step on a loaded machine: the step's messages would be lost.
        """
        if topics is None:
            return
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise ValueError(f"listened must be a list of topic names, found {topics!r}")
        pubs = list(self.node.all_publishers()) + (self.sensors.publishers() if self.sensors is not None else [])
        wanted = [p for p in pubs if p is not None and str(p.topic_name) in topics]
        self.node.matches.wait(lambda: all(p.get_subscription_count() > 0 for p in wanted), LISTENER_WAIT)

    def _srv_step_simulation(self, p: dict[str, Any]) -> protocol.SimState:
        if not self.paused:
            raise ValueError("the simulation is playing; pause it first (set_simulation_state paused), then step")
        # A client that subscribed just before this request waits for the step's last messages:
        # re-read who listens now rather than trusting the 50 ms cache.
        self._await_listeners(p.get("listened"))
        self._listeners_at = 0.0
        if self.sensors is not None:
            self.sensors.forget_listeners()
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
        self._apply_commands()
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

        is_robot = name in self._odom_snapshots

        def slow(linear: float, angular: float) -> bool:
            return abs(linear) < limits["linear"] and abs(angular) < limits["angular"]

        def at_rest() -> bool:
            tw = self.physics.entity_state(name).get("twist") or {}
            speed = math.hypot(float(tw.get("vx", 0.0)), float(tw.get("vy", 0.0)))
            # The robot's last odometry message must say so too: wheel odometry averages over its
            # period and lags the true twist, and a client reads "stopped" from that message.
            odom = self._odom_snapshots[name][1] if is_robot else None
            return slow(speed, float(tw.get("wz", 0.0))) and (odom is None or slow(float(odom.vx), float(odom.wz)))

        return at_rest, max(1, round(limits["chunk"] / dt))

    def _srv_reset_simulation(self, p: dict[str, Any]) -> protocol.SimState:
        scope = p.get("scope", "all")
        if scope not in protocol.RESET_SCOPES:
            raise ValueError(f"scope {scope!r} is not one of {', '.join(protocol.RESET_SCOPES)}")
        seed = p.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"seed must be an integer >= 0, found {seed!r}")
        if scope == "all":
            self.faults.reset()  # one test's faults never reach the next (undone before the reset)
        self.physics.reset(scope, seed=seed)
        if self.sensors is not None and scope == "all":
            self.sensors.reset(int(self.physics.seed))
        self.faults.now = float(self.physics.time)  # sim time may have gone back: delays count from here
        self.node.forget_sent()
        if self.sensors is not None:
            self.sensors.stamps.clear()  # sim time may have gone back
        if scope in ("all", "state"):
            self.node.take_commands()  # a command sent before the reset must not move the reset robot
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

    def _srv_get_entity_state(self, p: dict[str, Any]) -> protocol.EntityState:
        return self._entity_reply(self._name(p))

    def _srv_set_entity_state(self, p: dict[str, Any]) -> protocol.EntityState:
        name = self._name(p)
        pose = p.get("pose") or {}
        twist = p.get("twist")
        if not isinstance(pose, dict) or (twist is not None and not isinstance(twist, dict)):
            raise ValueError('pose and twist must be objects such as {"x": 1.0, "yaw": 0.5}')
        self.physics.set_entity_state(name, pose=pose, twist=twist)
        self.publish_all()
        return self._entity_reply(name)

    def _entity_reply(self, name: str) -> protocol.EntityState:
        state = self.physics.entity_state(name)
        return {"name": name, "pose": state["pose"], "twist": state["twist"]}

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
        if self.paused and any(self._scan_every):
            self.publish_all(scan=True)  # a paused test sees the obstacle in the next scan at once
        return {"name": name}

    def _srv_inject_fault(self, p: dict[str, Any]) -> protocol.FaultSpec:
        fault = self.faults.add(p, float(self.physics.time))
        self.faults.apply_physics(float(self.physics.time), self.physics)  # one due now starts now
        return fault.describe()

    def _srv_clear_fault(self, p: dict[str, Any]) -> dict[str, Any]:
        fid = p.get("id")
        cleared = self.faults.clear(None if fid is None else int(fid))
        return {"cleared": cleared, "t": float(self.physics.time)}  # the test's record marks where each ended

    def _srv_get_faults(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"faults": [f.describe() for f in self.faults.faults.values()]}

    def _srv_delete_entity(self, p: dict[str, Any]) -> dict[str, Any]:
        name = self._name(p)
        self.physics.remove(name)
        return {"name": name}
