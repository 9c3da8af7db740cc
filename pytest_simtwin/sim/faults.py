"""Faults on demand inside the simulator: sensor, command-path and physical faults, in sim time, seeded.

A fault arrives through the ``inject_fault`` control service as a :class:`~pytest_simtwin.control.protocol.FaultSpec`
(kind, target, params, ``at``/``duration`` in sim seconds). :class:`FaultSet` holds them and is asked at
three places: the node before it publishes a message (:meth:`FaultSet.outgoing`), the node when a
velocity command arrives and the runner when it takes one (:meth:`command_arrived`, :meth:`release_command`),
and the runner between physics steps (:meth:`apply_physics`). Random choices (dropped commands, added
noise) come from one generator seeded with the simulator's seed and the fault's id, so two runs with
the same seed, faults and commands are identical.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_simtwin.control.protocol import FAULT_KINDS, FaultSpec
from pytest_simtwin.sim.world.mjcf import friction_priority

SENSOR_KINDS = ("blackout", "latency", "rate", "stuck", "noise", "bias", "drift", "lidar_sector")
COMMAND_KINDS = ("cmd_drop", "cmd_delay", "cmd_freeze")
PHYSICAL_KINDS = ("wheel_friction", "motor_torque", "wheel_stopped", "payload", "push", "friction_patch")
assert set(SENSOR_KINDS + COMMAND_KINDS + PHYSICAL_KINDS) == set(FAULT_KINDS)


@dataclass
class Fault:
    """One injected fault; ``start``/``end`` in sim seconds (``end`` inf: until cleared)."""

    id: int
    kind: str
    target: str
    params: dict[str, Any]
    start: float
    end: float
    rng: random.Random
    state: dict[str, Any] = field(default_factory=dict)  # what the fault needs to remember (held messages, ...)

    def active(self, t: float) -> bool:
        return self.start <= t < self.end

    def describe(self) -> FaultSpec:
        spec: FaultSpec = {"id": self.id, "kind": self.kind, "target": self.target, "params": dict(self.params)}
        spec["at"] = self.start
        spec["duration"] = None if math.isinf(self.end) else self.end - self.start
        return spec


def _number(params: dict[str, Any], key: str, *, low: float | None = None, default: float | None = None) -> float:
    value = params.get(key, default)
    if value is None:
        raise ValueError(f"parameter {key!r} is required")
    number = float(value)
    if not math.isfinite(number) and key not in ("value",):
        raise ValueError(f"parameter {key!r} must be finite, found {value!r}")
    if low is not None and number < low:
        raise ValueError(f"parameter {key!r} must be >= {low:g}, found {value!r}")
    return number


class FaultSet:
    """The faults of one simulator. Sensor topics and wheel names are checked against the world when added."""

    def __init__(self, seed: int, *, topics: Callable[[], set[str]], wheels: Callable[[], list[str]]) -> None:
        self.seed = seed
        self._topics = topics
        self._wheels = wheels
        self.faults: dict[int, Fault] = {}
        self._next_id = 1
        self._cmd_queue: list[tuple[float, str, tuple[float, float]]] = []  # (release sim time, robot, command)
        self._physics_applied: dict[int, Callable[[], None]] = {}  # fault id -> undo
        self._held: list[tuple[float, Any, Any]] = []  # (release sim time, publisher, message)
        self._model: Any = None  # the MuJoCo model the physical faults were applied to
        self.now = 0.0  # the last sim time the runner told us (clock publications)
        self.changed: Callable[[str, Fault], None] | None = None  # node: publish on /simtwin/faults

    # -- lifecycle -----------------------------------------------------------------------------
    def add(self, spec: dict[str, Any], now: float) -> Fault:
        """Validate and add a fault; ``ValueError`` names what is wrong (the service replies with it)."""
        self.now = now  # not followed while no fault was active
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        params = dict(spec.get("params") or {})
        target = str(spec.get("target") or "")
        at = spec.get("at")
        start = now if at is None else float(at)
        duration = spec.get("duration")
        if duration is not None and (not math.isfinite(float(duration)) or float(duration) <= 0):
            raise ValueError(f"duration must be a positive number of sim seconds, found {duration!r}")
        end = math.inf if duration is None else start + float(duration)
        self._validate(kind, target, params)
        fid = self._next_id
        self._next_id += 1
        fault = Fault(fid, kind, target, params, start, end, random.Random(f"{self.seed}:{fid}"))
        self.faults[fid] = fault
        if self.changed is not None:
            self.changed("injected", fault)
        return fault

    def clear(self, fid: int | None = None) -> list[int]:
        """Remove one fault (or all); physical faults are undone at once. Returns the removed ids."""
        ids = list(self.faults) if fid is None else [fid]
        if fid is not None and fid not in self.faults:
            raise ValueError(f"no fault with id {fid}; active: {sorted(self.faults) or 'none'}")
        for i in ids:
            undo = self._physics_applied.pop(i, None)
            if undo is not None:
                undo()
            fault = self.faults.pop(i)
            if self.changed is not None:
                self.changed("cleared", fault)
        if not any(f.kind == "cmd_delay" for f in self.faults.values()):
            self._cmd_queue.clear()
        return ids

    def reset(self) -> None:
        """A world reset: every fault undone and forgotten, ids from 1 again (same seed, same random draws)."""
        self.clear()
        self._held.clear()
        self._next_id = 1

    def _validate(self, kind: str, target: str, params: dict[str, Any]) -> None:
        if kind in SENSOR_KINDS:
            topics = self._topics()
            if target not in topics:
                raise ValueError(f"{kind}: no simulated sensor topic {target!r}; topics: {', '.join(sorted(topics))}")
            if kind == "latency":
                _number(params, "delay", low=0.0)
            elif kind == "rate":
                if _number(params, "hz", low=0.0) <= 0:
                    raise ValueError("rate: parameter 'hz' must be > 0")
            elif kind == "noise":
                _number(params, "stddev", low=0.0)
            elif kind in ("bias", "drift"):
                for key in ("x", "y", "yaw"):
                    _number(params, key, default=0.0)
            elif kind == "lidar_sector":
                lo, hi = _number(params, "min_deg"), _number(params, "max_deg")
                if hi <= lo:
                    raise ValueError(f"lidar_sector: max_deg ({hi:g}) must exceed min_deg ({lo:g})")
                if str(params.get("value", "inf")) not in ("inf", "nan", "zero"):
                    raise ValueError("lidar_sector: value must be 'inf', 'nan' or 'zero' (REP-117 readings)")
        elif kind == "cmd_drop":
            p = _number(params, "probability", low=0.0)
            if p > 1:
                raise ValueError(f"cmd_drop: probability must be within 0..1, found {p:g}")
        elif kind == "cmd_delay":
            _number(params, "delay", low=0.0)
        elif kind in ("wheel_friction", "motor_torque", "wheel_stopped"):
            wheels = self._wheels()
            if target not in wheels:
                raise ValueError(f"{kind}: no wheel joint {target!r}; the robot's wheels: {', '.join(wheels)}")
            if kind == "wheel_friction":
                _number(params, "friction", low=0.0)
            if kind == "motor_torque":
                _number(params, "max_torque", low=0.0)
        elif kind == "payload":
            _number(params, "mass", low=0.0)
        elif kind == "push":
            for key in ("fx", "fy", "fz"):
                _number(params, key, default=0.0)
        elif kind == "friction_patch":
            _number(params, "x")
            _number(params, "y")
            if _number(params, "radius", low=0.0) <= 0:
                raise ValueError("friction_patch: parameter 'radius' must be > 0")
            _number(params, "friction", low=0.0)

    def active(self, t: float, kinds: tuple[str, ...], target: str | None = None) -> Iterator[Fault]:
        for fault in self.faults.values():
            if fault.kind in kinds and (target is None or fault.target == target) and fault.active(t):
                yield fault

    # -- sensors (node, runner thread) -----------------------------------------------------------
    def touches(self, topic: str) -> bool:
        """Whether a fault targets ``topic`` or holds messages of it (what left differs from what was computed)."""
        return any(f.target == topic for f in self.faults.values()) or any(
            str(getattr(pub, "topic_name", "")) == topic for _, pub, _ in self._held
        )

    @property
    def held(self) -> bool:
        """Whether messages wait to be published late (a latency fault, possibly cleared since)."""
        return bool(self._held)

    def release_held(self, t: float) -> list[tuple[Any, Any]]:
        """(publisher, message) pairs a latency fault held that are due at sim time ``t``."""
        self.now = t  # messages leave in time order (republished ones go out before time moves on)
        if not self._held:
            return []
        due = [(pub, m) for (release, pub, m) in self._held if release <= t]
        self._held = [h for h in self._held if h[0] > t]
        return due

    def outgoing(self, pub: Any, topic: str, t: float, msg: Any) -> list[Any]:
        """What to publish on ``topic`` instead of ``msg`` (stamped ``t``): nothing, it, or a changed copy."""
        out: list[Any] = [msg]
        for fault in self.active(t, SENSOR_KINDS, topic):
            if fault.kind == "latency":  # published late with its own stamp, as a slow link does
                self._held += [(t + float(fault.params["delay"]), pub, copy.deepcopy(m)) for m in out]
                return []
            out = [m for m in (self._sensor(fault, t, m) for m in out) if m is not None]
        return out

    def _sensor(self, fault: Fault, t: float, msg: Any) -> Any | None:
        kind, p = fault.kind, fault.params
        if kind == "blackout":
            return None
        if kind == "rate":
            last = fault.state.get("last")
            if last is not None and t - last < 1.0 / float(p["hz"]) - 1e-9:
                return None
            fault.state["last"] = t
            return msg
        if kind == "stuck":
            frozen = fault.state.get("frozen")
            if frozen is None:
                fault.state["frozen"] = frozen = copy.deepcopy(msg)
            stuck = copy.deepcopy(frozen)
            if hasattr(stuck, "header") and hasattr(msg, "header"):
                stuck.header.stamp = copy.deepcopy(msg.header.stamp)  # fresh stamp, stale content
            return stuck
        changed = copy.deepcopy(msg)
        if kind == "noise":
            _perturb(changed, lambda v: v + fault.rng.gauss(0.0, float(p["stddev"])))
        elif kind in ("bias", "drift"):
            scale = 1.0 if kind == "bias" else (t - fault.start)  # drift: per sim second
            _offset_pose(changed, float(p.get("x", 0)) * scale, float(p.get("y", 0)) * scale,
                         float(p.get("yaw", 0)) * scale)  # fmt: skip
        elif kind == "lidar_sector" and hasattr(changed, "ranges"):
            value = {"inf": math.inf, "nan": math.nan, "zero": 0.0}[str(p.get("value", "inf"))]
            lo, hi = math.radians(float(p["min_deg"])), math.radians(float(p["max_deg"]))
            ranges = list(changed.ranges)
            for i in range(len(ranges)):
                angle = changed.angle_min + i * changed.angle_increment
                if lo <= math.remainder(angle, 2 * math.pi) <= hi:
                    ranges[i] = value
            changed.ranges = ranges
        return changed

    # -- velocity commands --------------------------------------------------------------------------
    def command_arrived(self, cmd: tuple[float, float], robot: str = "") -> tuple[float, float] | None:
        """A command reached the simulator (executor thread): the one to apply now, or None (dropped/held)."""
        t = self.now
        for fault in self.active(t, ("cmd_drop",)):
            if fault.rng.random() < float(fault.params["probability"]):
                return None
        if any(True for _ in self.active(t, ("cmd_freeze",))):
            return None
        delays = [float(f.params["delay"]) for f in self.active(t, ("cmd_delay",))]
        if delays:
            self._cmd_queue.append((t + max(delays), robot, cmd))
            return None
        return cmd

    def release_commands(self, t: float) -> dict[str, tuple[float, float]]:
        """Per robot, the latest held (delayed) command due at sim time ``t`` (runner thread)."""
        due = {robot: c for (release, robot, c) in self._cmd_queue if release <= t}
        if due:
            self._cmd_queue = [q for q in self._cmd_queue if q[0] > t]
        return due

    # -- physics ---------------------------------------------------------------------------------
    def apply_physics(self, t: float, physics: Any) -> None:
        """Start and end faults at sim time ``t`` (called between steps; cheap with none).

        Physical faults change the model while active; every fault is announced "started" and
        "ended" at the sim time it does (a sensor fault with a future ``at`` as much as a push).
        """
        if not self.faults:
            return
        if self._model is not physics.model:  # recompiled (spawn, delete): apply again to the new model
            self._model, self._physics_applied = physics.model, {}
        for fault in list(self.faults.values()):
            on = fault.active(t)
            if fault.kind == "friction_patch" and on:
                _patch(fault, physics)  # follows the wheels: on or off the patch at every call
            if fault.kind not in PHYSICAL_KINDS:
                phase = fault.state.get("phase")
                if on and phase is None:
                    self._announce("started", fault, t)
                elif t >= fault.end and phase != "ended":
                    if phase is None:  # shorter than the step between two calls: it still happened
                        self._announce("started", fault, t)
                    self._announce("ended", fault, t)
                continue
            if on and fault.id not in self._physics_applied:
                self._physics_applied[fault.id] = _apply(fault, physics)
                if fault.state.get("phase") != "started":  # not again after a recompile (spawn, delete)
                    self._announce("started", fault, t)
            elif not on and fault.id in self._physics_applied:
                self._physics_applied.pop(fault.id)()
                self._announce("ended", fault, t)

    def _announce(self, event: str, fault: Fault, t: float) -> None:
        fault.state["phase"] = event
        self.now = max(self.now, t)  # the event's stamp: when it happened, not when a clock went out
        if self.changed is not None:
            self.changed(event, fault)


def _perturb(msg: Any, fn: Callable[[float], float]) -> None:
    """Noise on what a sensor measures: ranges, pose and twist, angular velocity, linear acceleration."""
    if hasattr(msg, "ranges"):
        msg.ranges = [fn(r) if math.isfinite(r) else r for r in msg.ranges]
    if hasattr(msg, "pose") and hasattr(msg.pose, "pose"):
        pos = msg.pose.pose.position
        pos.x, pos.y = fn(pos.x), fn(pos.y)
        tw = msg.twist.twist
        tw.linear.x, tw.angular.z = fn(tw.linear.x), fn(tw.angular.z)
    for name in ("angular_velocity", "linear_acceleration"):
        vec = getattr(msg, name, None)
        if vec is not None:
            vec.x, vec.y, vec.z = fn(vec.x), fn(vec.y), fn(vec.z)


def _offset_pose(msg: Any, dx: float, dy: float, dyaw: float) -> None:
    if not (hasattr(msg, "pose") and hasattr(msg.pose, "pose")):
        return
    pose = msg.pose.pose
    pose.position.x += dx
    pose.position.y += dy
    q = pose.orientation
    yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z)) + dyaw
    q.x, q.y, q.z, q.w = 0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)


def _wheel_geoms(physics: Any, wheel: str) -> list[int]:
    """The collision geoms of a wheel joint's body (by its reported or MJCF name)."""
    model = physics.model
    mjcf_names = {reported: mjcf for lay in physics.layout.robots.values() for mjcf, reported in lay.joints}
    body = int(model.joint(mjcf_names.get(wheel, wheel)).bodyid[0])
    return [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == body]


def _set_friction(model: Any, geoms: list[int], mu: float) -> Callable[[], None]:
    """Lower (or raise) the friction of ``geoms``; the smaller mu of a contact pair governs (as in gz-physics)."""
    kept = [(g, float(model.geom_friction[g][0]), int(model.geom_priority[g])) for g in geoms]
    for g in geoms:
        model.geom_friction[g][0] = mu
        model.geom_priority[g] = friction_priority(mu)

    def undo() -> None:
        for g, old_mu, priority in kept:
            model.geom_friction[g][0] = old_mu
            model.geom_priority[g] = priority

    return undo


def _patch(fault: Fault, physics: Any) -> None:
    """A friction patch on the ground: a wheel whose contact point lies inside it gets the patch's friction.

    One plane cannot carry two frictions in MuJoCo; the wheel-ground contact takes the smaller mu of
    the pair, so giving the wheel the patch's mu while it stands on the patch is the same contact.
    """
    p = fault.params
    on: dict[str, Callable[[], None]] = fault.state.setdefault("on", {})
    if fault.state.get("model") is not physics.model:  # recompiled: the undo functions belong to the old one
        fault.state["model"], on = physics.model, {}
        fault.state["on"] = on
    cx, cy, radius = float(p["x"]), float(p["y"]), float(p["radius"])
    for lay in physics.layout.robots.values():
        for mjcf, _reported in lay.joints:
            joint = physics.model.joint(mjcf)
            body = int(joint.bodyid[0])
            wx, wy = float(physics.data.xpos[body][0]), float(physics.data.xpos[body][1])
            inside = math.hypot(wx - cx, wy - cy) <= radius
            if inside and mjcf not in on:
                geoms = [g for g in range(physics.model.ngeom) if int(physics.model.geom_bodyid[g]) == body]
                on[mjcf] = _set_friction(physics.model, geoms, float(p["friction"]))
            elif not inside and mjcf in on:
                on.pop(mjcf)()


def _unpatch(fault: Fault, physics: Any) -> None:
    on: dict[str, Callable[[], None]] = fault.state.get("on", {})
    if fault.state.get("model") is physics.model:
        for undo in on.values():
            undo()
    on.clear()


def _apply(fault: Fault, physics: Any) -> Callable[[], None]:
    """Change the MuJoCo model/data for ``fault``; returns the function that undoes it."""
    model, data, p = physics.model, physics.data, fault.params
    if fault.kind == "friction_patch":
        _patch(fault, physics)
        return lambda: _unpatch(fault, physics)
    if fault.kind in ("wheel_friction", "motor_torque", "wheel_stopped"):
        mjcf_names = {reported: mjcf for lay in physics.layout.robots.values() for mjcf, reported in lay.joints}
        joint = physics.model.joint(mjcf_names.get(fault.target, fault.target))
        if fault.kind == "wheel_stopped":
            dof = int(joint.dofadr[0])
            old = float(model.dof_damping[dof])
            model.dof_damping[dof] = 1e6  # locked: a seized motor or a wheel stuck in a gap
            return lambda: model.dof_damping.__setitem__(dof, old)
        if fault.kind == "motor_torque":
            acts = [a for a in range(model.nu) if int(model.actuator_trnid[a][0]) == int(joint.id)]
            saved = [(a, int(model.actuator_forcelimited[a]), tuple(model.actuator_forcerange[a])) for a in acts]
            limit = float(p["max_torque"])
            for a in acts:
                model.actuator_forcelimited[a] = 1
                model.actuator_forcerange[a] = (-limit, limit)

            def undo_torque() -> None:
                for a, limited, rng in saved:
                    model.actuator_forcelimited[a] = limited
                    model.actuator_forcerange[a] = rng

            return undo_torque
        return _set_friction(model, _wheel_geoms(physics, fault.target), float(p["friction"]))
    robots = physics.layout.robots  # a named robot (target), else the first
    body_name = robots[fault.target].body if fault.target in robots else physics.layout.robot_body
    root = int(physics.model.body(body_name).id)
    if fault.kind == "payload":
        old_mass = float(model.body_mass[root])
        model.body_mass[root] = old_mass + float(p["mass"])
        return lambda: model.body_mass.__setitem__(root, old_mass)
    force = (float(p.get("fx", 0.0)), float(p.get("fy", 0.0)), float(p.get("fz", 0.0)))
    data.xfrc_applied[root][:3] = force
    return lambda: data.xfrc_applied[root].__setitem__(slice(0, 3), (0.0, 0.0, 0.0))
