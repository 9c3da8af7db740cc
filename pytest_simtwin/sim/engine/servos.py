"""Position servos of ros2_control position command interfaces, and the trajectories that move them.

gz_ros2_control's law (``gz_system.cpp`` ``write()``): velocity command = gain * (command - position),
given to a MuJoCo velocity actuator each step. The command comes from the joint's controller: its initial
position until a command arrives; a JointTrajectoryController's trajectory interpolated linearly in sim
time (joint_trajectory_controller samples splines; with positions only, between points it is linear too);
a JointGroupPositionController's last ``commands`` array.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from pytest_simtwin.sim.world.mjcf import RobotLayout
from pytest_simtwin.sim.world.model import ModelSpec, PositionControllerSpec

#: one trajectory point: (time from start in s, positions in the controller's joint order or None = hold)
Point = tuple[float, list[float]]


class _Trajectory:
    """Piecewise-linear positions of some joints from ``start`` (sim time), beginning where they are."""

    def __init__(self, joints: list[int], start: float, first: list[float], points: list[Point]) -> None:
        self.joints = joints
        self.times = [start] + [start + t for t, _ in points]
        self.values = [first] + [p for _, p in points]

    def at(self, t: float) -> list[float]:
        k = bisect.bisect_right(self.times, t)
        if k >= len(self.times):
            return self.values[-1]
        if k == 0:
            return self.values[0]
        t0, t1 = self.times[k - 1], self.times[k]
        a = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
        return [x0 + a * (x1 - x0) for x0, x1 in zip(self.values[k - 1], self.values[k], strict=True)]


class Servos:
    """Every position-servoed joint of one robot."""

    def __init__(self, model: ModelSpec) -> None:
        self.specs = model.servos
        self.gain = model.servo_gain
        self.controllers: dict[str, PositionControllerSpec] = {c.name: c for c in model.position_controllers}
        self.index = {s.joint: i for i, s in enumerate(self.specs)}
        self.targets = [s.initial for s in self.specs]
        self.trajectories: list[_Trajectory] = []
        #: (mimic joint, leader, multiplier) indices
        self.mimics = [(i, self.index[s.mimic[0]], s.mimic[1]) for i, s in enumerate(self.specs) if s.mimic]
        self.q: list[int] = []
        self.act: list[int] = []

    def bind(self, m: Any, lay: RobotLayout) -> None:
        self.q = [int(m.joint(joint).qposadr[0]) for joint, _ in lay.servos]
        self.act = [int(m.actuator(act).id) for _, act in lay.servos]

    def reset(self, qpos: Any) -> None:
        """Back to the initial positions (gz_ros2_control resets the joints to ``initial_value``)."""
        self.targets = [s.initial for s in self.specs]
        self.trajectories = []
        for adr, spec in zip(self.q, self.specs, strict=True):
            qpos[adr] = spec.initial

    def command(self, ctrl: Any, qpos: Any, t: float) -> None:
        for traj in self.trajectories:
            for i, x in zip(traj.joints, traj.at(t), strict=True):
                self.targets[i] = x
        if self.trajectories and t >= max(tr.times[-1] for tr in self.trajectories):
            self.trajectories = []  # done: the last point holds (it is in targets)
        for i, leader, multiplier in self.mimics:
            self.targets[i] = self._clamp(i, multiplier * self.targets[leader])
        gain = self.gain
        for adr, act, target in zip(self.q, self.act, self.targets, strict=True):
            ctrl[act] = gain * (target - float(qpos[adr]))

    def _controller(self, name: str) -> PositionControllerSpec:
        spec = self.controllers.get(name)
        if spec is None:
            raise ValueError(f"no position controller {name!r}; controllers: {', '.join(self.controllers) or 'none'}")
        return spec

    def _clamp(self, i: int, x: float) -> float:
        lo, hi = self.specs[i].limits
        return min(max(x, lo), hi)

    def set_group(self, controller: str, values: Sequence[float]) -> None:
        """A JointGroupPositionController ``commands`` array: one position per joint, in its order."""
        spec = self._controller(controller)
        if len(values) != len(spec.joints) or not all(math.isfinite(v) for v in values):
            raise ValueError(
                f"controller {controller!r}: commands {list(values)} must be {len(spec.joints)} finite "
                f"positions for {', '.join(spec.joints)}; ignored"
            )
        joints = [self.index[j] for j in spec.joints]
        self.trajectories = [tr for tr in self.trajectories if not set(tr.joints) & set(joints)]
        for i, v in zip(joints, values, strict=True):
            self.targets[i] = self._clamp(i, float(v))

    def set_trajectory(
        self, controller: str, names: Sequence[str], points: Sequence[tuple[float, Sequence[float]]], start: float
    ) -> None:
        """A JointTrajectory for ``controller`` starting at sim time ``start``; ValueError says what is wrong."""
        spec = self._controller(controller)
        where = f"controller {controller!r}: JointTrajectory"
        unknown = [n for n in names if n not in spec.joints]
        if unknown or len(set(names)) != len(names):
            raise ValueError(
                f"{where} names joint(s) {', '.join(unknown) or 'twice'} (expected some of {', '.join(spec.joints)}); "
                "rejected, the joints hold"
            )
        if not spec.allow_partial and set(names) != set(spec.joints) and points:
            raise ValueError(
                f"{where} names {', '.join(names)} but allow_partial_joints_goal is false: expected all of "
                f"{', '.join(spec.joints)}; rejected"
            )
        joints = [self.index[n] for n in names]
        clean: list[Point] = []
        last = 0.0
        for k, (t, positions) in enumerate(points):
            if len(positions) != len(names) or not all(math.isfinite(x) for x in positions):
                raise ValueError(
                    f"{where} point {k} has {len(positions)} position(s) for {len(names)} joints; rejected"
                )
            if t < last or (k > 0 and t <= last):
                raise ValueError(f"{where} point {k}: time_from_start {t} s does not increase; rejected")
            last = t
            clean.append((t, [self._clamp(i, float(x)) for i, x in zip(joints, positions, strict=True)]))
        self.trajectories = [tr for tr in self.trajectories if not set(tr.joints) & set(joints)]
        if clean:  # an empty trajectory stops the joints where they are commanded now
            self.trajectories.append(_Trajectory(joints, start, [self.targets[i] for i in joints], clean))
