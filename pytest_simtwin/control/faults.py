"""Faults for robustness tests (test side): typed constructors, handles that clear them, the ``faults`` fixture's object.

::

    from pytest_simtwin import faults

    @pytest.mark.simtwin(faults=[faults.lidar_sector(-15, 15, at=1.0)])
    def test_blind_spot(robot): ...

    def test_watchdog(robot, sim):
        handle = sim.inject(faults.sensor_blackout("/scan", at=2.0, duration=1.0))
        ...
        handle.clear()

Every fault runs in simulated time inside the simulator (sensor, command and physical faults; see
``sim/faults.py``) and is announced on ``/simtwin/faults``, so it lands in recordings and in the
test's record. Arguments are checked here (types, ranges) and by the simulator (topics, wheels):
either way a :class:`~pytest_simtwin.errors.ConfigError` before the test body runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_simtwin.control.protocol import FAULT_KINDS, FaultSpec
from pytest_simtwin.errors import ConfigError, ControlError

if TYPE_CHECKING:
    from pytest_simtwin.control.client import ControlClient


@dataclass(frozen=True)
class Fault:
    """A fault to inject: ``kind`` (one of the protocol's FAULT_KINDS), its target and parameters."""

    kind: str
    target: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    at: float | None = None  # sim seconds; None: when injected
    duration: float | None = None  # sim seconds; None: until cleared (or the test ends)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        for name, value in (("at", self.at), ("duration", self.duration)):
            if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
                raise ConfigError(f"fault {self.kind}: {name} must be a number of sim seconds, found {value!r}")
        if self.at is not None and self.at < 0:
            raise ConfigError(f"fault {self.kind}: at must be >= 0 sim seconds, found {self.at!r}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"fault {self.kind}: duration must be > 0 sim seconds, found {self.duration!r}")

    def spec(self) -> FaultSpec:
        return {"kind": self.kind, "target": self.target, "params": dict(self.params), "at": self.at,
                "duration": self.duration}  # fmt: skip


def _positive(kind: str, name: str, value: float, *, zero: bool = True) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0 or (not zero and number == 0):
        bound = ">= 0" if zero else "> 0"
        raise ConfigError(f"fault {kind}: {name} must be {bound}, found {value!r}")
    return number


# -- sensors ---------------------------------------------------------------------------------------
def sensor_blackout(topic: str = "/scan", *, at: float | None = None, duration: float | None = None) -> Fault:
    """The sensor stops publishing."""
    return Fault("blackout", topic, {}, at, duration)


def sensor_latency(topic: str, delay: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """Messages arrive ``delay`` sim seconds late (with their original stamps)."""
    return Fault("latency", topic, {"delay": _positive("latency", "delay", delay)}, at, duration)


def sensor_rate(topic: str, hz: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """The sensor publishes at most ``hz`` times per sim second."""
    return Fault("rate", topic, {"hz": _positive("rate", "hz", hz, zero=False)}, at, duration)


def sensor_stuck(topic: str, *, at: float | None = None, duration: float | None = None) -> Fault:
    """The sensor repeats its last reading before the fault (fresh stamps, stale values)."""
    return Fault("stuck", topic, {}, at, duration)


def sensor_noise(topic: str, stddev: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """Extra gaussian noise (seeded) on what the sensor measures."""
    return Fault("noise", topic, {"stddev": _positive("noise", "stddev", stddev)}, at, duration)


def odom_bias(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, *, topic: str = "/odom",
              at: float | None = None, duration: float | None = None) -> Fault:  # fmt: skip
    """Odometry offset by a constant (metres, radians)."""
    return Fault("bias", topic, {"x": float(x), "y": float(y), "yaw": float(yaw)}, at, duration)


def odom_drift(x: float = 0.0, y: float = 0.0, yaw: float = 0.0, *, topic: str = "/odom",
               at: float | None = None, duration: float | None = None) -> Fault:  # fmt: skip
    """Odometry drifting away at a rate (metres and radians per sim second since the fault started)."""
    return Fault("drift", topic, {"x": float(x), "y": float(y), "yaw": float(yaw)}, at, duration)


def lidar_sector(min_deg: float, max_deg: float, *, value: Literal["inf", "nan", "zero"] = "inf",
                 topic: str = "/scan", at: float | None = None, duration: float | None = None) -> Fault:  # fmt: skip
    """The lidar reads ``value`` between two bearings (degrees, 0 = ahead, counter-clockwise): a blind sector."""
    if not float(max_deg) > float(min_deg):
        raise ConfigError(f"fault lidar_sector: max_deg ({max_deg}) must exceed min_deg ({min_deg})")
    if value not in ("inf", "nan", "zero"):
        raise ConfigError(f"fault lidar_sector: value must be 'inf', 'nan' or 'zero', found {value!r}")
    return Fault("lidar_sector", topic, {"min_deg": float(min_deg), "max_deg": float(max_deg), "value": value},
                 at, duration)  # fmt: skip


# -- velocity commands -------------------------------------------------------------------------------
def cmd_drop(probability: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """Each velocity command is lost with ``probability`` (seeded by the simulator's seed)."""
    p = _positive("cmd_drop", "probability", probability)
    if p > 1:
        raise ConfigError(f"fault cmd_drop: probability must be within 0..1, found {probability!r}")
    return Fault("cmd_drop", "", {"probability": p}, at, duration)


def cmd_delay(delay: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """Velocity commands take effect ``delay`` sim seconds after they arrive."""
    return Fault("cmd_delay", "", {"delay": _positive("cmd_delay", "delay", delay)}, at, duration)


def cmd_freeze(*, at: float | None = None, duration: float | None = None) -> Fault:
    """New velocity commands are ignored: the robot keeps doing what it was last told."""
    return Fault("cmd_freeze", "", {}, at, duration)


# -- physics -------------------------------------------------------------------------------------------
def wheel_slip(wheel: str, friction: float = 0.05, *, at: float | None = None, duration: float | None = None) -> Fault:
    """A wheel's friction lowered (a wet or dusty floor): wheel odometry then diverges from ground truth."""
    return Fault("wheel_friction", wheel, {"friction": _positive("wheel_slip", "friction", friction)}, at, duration)


def motor_torque(wheel: str, max_torque: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """A weak motor: the wheel's actuator limited to ``max_torque`` N m."""
    return Fault("motor_torque", wheel, {"max_torque": _positive("motor_torque", "max_torque", max_torque)},
                 at, duration)  # fmt: skip


def wheel_stopped(wheel: str, *, at: float | None = None, duration: float | None = None) -> Fault:
    """A seized wheel (it hardly turns whatever the command)."""
    return Fault("wheel_stopped", wheel, {}, at, duration)


def friction_patch(x: float, y: float, radius: float, friction: float = 0.05, *, at: float | None = None,
                   duration: float | None = None) -> Fault:  # fmt: skip
    """A slippery (or grippy) patch of ground: a disc of ``radius`` m at (``x``, ``y``), world frame, with
    friction coefficient ``friction``; a wheel standing on it slips as on a wet floor."""
    params = {"x": float(x), "y": float(y), "radius": _positive("friction_patch", "radius", radius, zero=False),
              "friction": _positive("friction_patch", "friction", friction)}  # fmt: skip
    if not (math.isfinite(params["x"]) and math.isfinite(params["y"])):
        raise ConfigError(f"fault friction_patch: x and y must be finite metres, found ({x!r}, {y!r})")
    return Fault("friction_patch", "", params, at, duration)


def payload(mass: float, *, at: float | None = None, duration: float | None = None) -> Fault:
    """Extra mass (kg) on the robot's base."""
    return Fault("payload", "", {"mass": _positive("payload", "mass", mass)}, at, duration)


def push(fx: float = 0.0, fy: float = 0.0, fz: float = 0.0, *, at: float | None = None,
         duration: float | None = 0.1) -> Fault:  # fmt: skip
    """A force (N, world frame) on the robot's base for ``duration`` sim seconds (None: steady)."""
    return Fault("push", "", {"fx": float(fx), "fy": float(fy), "fz": float(fz)}, at, duration)


# -- injecting ---------------------------------------------------------------------------------------
class FaultHandle:
    """An injected fault: ``id``, what the simulator accepted (``spec``), and :meth:`clear`."""

    def __init__(self, control: ControlClient, spec: FaultSpec, log: list[dict[str, Any]] | None = None) -> None:
        self._control = control
        self._log = log
        self.spec = spec
        self.id = int(spec["id"])

    def clear(self) -> None:
        """Remove the fault now (physical faults are undone at once); clearing twice is harmless."""
        try:
            ids, t = self._control.clear_fault_at(self.id)
        except ControlError as exc:
            if "no fault with id" not in str(exc):
                raise
            return
        mark_cleared(self._log, ids, t)

    def __repr__(self) -> str:
        return f"FaultHandle({self.id}, {self.spec.get('kind')!r} on {self.spec.get('target')!r})"


def inject(control: ControlClient, fault: Fault, log: list[dict[str, Any]] | None = None) -> FaultHandle:
    """Inject ``fault``; the simulator's refusal (unknown topic or wheel, ...) is a ConfigError."""
    if not isinstance(fault, Fault):
        raise ConfigError(
            f"expected a fault made by pytest_simtwin.faults (e.g. faults.sensor_blackout('/scan')), found {fault!r}"
        )
    try:
        accepted = control.inject_fault(fault.spec())
    except ControlError as exc:
        raise ConfigError(f"fault {fault.kind} not injected: {exc}") from None
    if log is not None:  # the test's record: listed in reports
        log.append(dict(accepted))
    return FaultHandle(control, accepted, log)


def clear_all(control: ControlClient, log: list[dict[str, Any]] | None = None) -> None:
    """Clear every fault the simulator holds, noting in ``log`` (the test's record) when each ended."""
    ids, t = control.clear_fault_at(None)
    mark_cleared(log, ids, t)


def mark_cleared(log: list[dict[str, Any]] | None, ids: list[int], t: float | None) -> None:
    """The record's entries of faults cleared at sim time ``t`` get ``cleared_at`` (plots end them there)."""
    if log is None or t is None:
        return
    for entry in log:
        if entry.get("id") in ids and "cleared_at" not in entry and str(entry.get("kind", "")) in FAULT_KINDS:
            entry["cleared_at"] = t


def lidar_blackout(sector_deg: tuple[float, float] = (-180.0, 180.0), *, topic: str = "/scan",
                   at: float | None = None, duration: float | None = None) -> Fault:  # fmt: skip
    """No returns (inf) in a sector of bearings, degrees; the whole scan by default."""
    return lidar_sector(sector_deg[0], sector_deg[1], topic=topic, at=at, duration=duration)


class FaultInjector:
    """The ``faults`` fixture: the constructors above as attributes, ``inject(fault)`` -> handle.

    Every fault is cleared after the test (the simulator's reset clears them too).
    """

    sensor_blackout = staticmethod(sensor_blackout)
    sensor_latency = staticmethod(sensor_latency)
    sensor_rate = staticmethod(sensor_rate)
    sensor_stuck = staticmethod(sensor_stuck)
    sensor_noise = staticmethod(sensor_noise)
    odom_bias = staticmethod(odom_bias)
    odom_drift = staticmethod(odom_drift)
    lidar_sector = staticmethod(lidar_sector)
    lidar_blackout = staticmethod(lidar_blackout)
    cmd_drop = staticmethod(cmd_drop)
    cmd_delay = staticmethod(cmd_delay)
    cmd_freeze = staticmethod(cmd_freeze)
    wheel_slip = staticmethod(wheel_slip)
    motor_torque = staticmethod(motor_torque)
    wheel_stopped = staticmethod(wheel_stopped)
    payload = staticmethod(payload)
    friction_patch = staticmethod(friction_patch)
    push = staticmethod(push)

    def __init__(self, control: ControlClient, log: list[dict[str, Any]] | None = None) -> None:
        self._control = control
        self._log = log
        self.handles: list[FaultHandle] = []

    def inject(self, fault: Fault) -> FaultHandle:
        handle = inject(self._control, fault, self._log)
        self.handles.append(handle)
        return handle

    def active(self) -> list[FaultSpec]:
        """The faults the simulator holds now."""
        return self._control.faults()

    def clear_all(self) -> None:
        clear_all(self._control, self._log)
        self.handles.clear()
