"""One robot's DiffDrive controller, as Gazebo's DiffDrive system: command, speed limits, wheel servos, odometry.

The (vx, wz) command passes a SpeedLimiter (jerk, acceleration, velocity; applied every step) and
becomes wheel speed targets; odometry integrates the wheel joint angles like gz::math::DiffDriveOdometry.
:class:`pytest_simtwin.sim.engine.physics.Physics` binds one :class:`Drive` per robot and steps it.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from pytest_simtwin.sim.engine import twin_model
from pytest_simtwin.sim.engine.wheel_ramp import WheelRamp
from pytest_simtwin.sim.world.mjcf import RobotLayout
from pytest_simtwin.sim.world.model import DiffDriveSpec, ModelSpec

VELOCITY_WINDOW = 10  # samples of the rolling mean, as gz::math::DiffDriveOdometry


class SpeedLimiter:
    """gz::math::SpeedLimiter: jerk, then acceleration, then velocity limits on one axis."""

    def __init__(self, vmin: float, vmax: float, amin: float, amax: float, jmin: float, jmax: float) -> None:
        self.vmin, self.vmax, self.amin, self.amax, self.jmin, self.jmax = vmin, vmax, amin, amax, jmin, jmax
        self.has_jerk = math.isfinite(jmin) or math.isfinite(jmax)

    def limit(self, v: float, v0: float, v1: float, dt: float) -> float:
        if self.has_jerk:
            dv0 = v0 - v1
            da = min(max(v - v0 - dv0, self.jmin * dt * dt), self.jmax * dt * dt)
            v = v0 + dv0 + da
        v = v0 + min(max(v - v0, self.amin * dt), self.amax * dt)
        return min(max(v, self.vmin), self.vmax)


class WheelOdometry:
    """gz::math::DiffDriveOdometry: exact arc integration of wheel travel, rolling-mean velocities."""

    def __init__(
        self, separation: float, radius: float, left_radius: float | None = None, right_radius: float | None = None
    ) -> None:
        self.separation, self.radius = separation, radius
        # diff_drive_controller's radius multipliers: the radius each side is assumed to have
        self.left_radius = radius if left_radius is None else left_radius
        self.right_radius = radius if right_radius is None else right_radius
        self.reset(0.0, 0.0)

    def reset(self, left: float, right: float) -> None:
        self.x = self.y = self.yaw = 0.0
        self.left, self.right = left * self.left_radius, right * self.right_radius
        self._lin: deque[float] = deque(maxlen=VELOCITY_WINDOW)
        self._ang: deque[float] = deque(maxlen=VELOCITY_WINDOW)

    def update(self, left: float, right: float, dt: float) -> None:
        lpos, rpos = left * self.left_radius, right * self.right_radius
        dl, dr = lpos - self.left, rpos - self.right
        self.left, self.right = lpos, rpos
        self.integrate((dl + dr) * 0.5, (dr - dl) / self.separation, dt)

    def integrate(self, linear: float, angular: float, dt: float) -> None:
        """Advance by ``linear`` metres and ``angular`` radians travelled in ``dt`` (open loop: commanded)."""
        if abs(angular) < 1e-6:  # Runge-Kutta 2 for straight segments
            heading = self.yaw + angular * 0.5
            self.x += linear * math.cos(heading)
            self.y += linear * math.sin(heading)
            self.yaw += angular
        else:
            old = self.yaw
            r = linear / angular
            self.yaw += angular
            self.x += r * (math.sin(self.yaw) - math.sin(old))
            self.y += -r * (math.cos(self.yaw) - math.cos(old))
        self._lin.append(linear / dt)
        self._ang.append(angular / dt)

    def velocities(self) -> tuple[float, float]:
        if not self._lin:
            return 0.0, 0.0
        return sum(self._lin) / len(self._lin), sum(self._ang) / len(self._ang)


class Drive:
    """One robot's DiffDrive controller: command, speed limiters, wheel servos and wheel odometry."""

    def __init__(self, spec: DiffDriveSpec, twin: twin_model.CommandPath | None = None) -> None:
        self.dd = spec
        self.twin = twin  # the calibrated twin's delay, lag and gains (twin_model.py), if any
        self.lin = SpeedLimiter(spec.min_linear_velocity, spec.max_linear_velocity,
                                spec.min_linear_acceleration, spec.max_linear_acceleration,
                                spec.min_linear_jerk, spec.max_linear_jerk)  # fmt: skip
        self.ang = SpeedLimiter(spec.min_angular_velocity, spec.max_angular_velocity,
                                spec.min_angular_acceleration, spec.max_angular_acceleration,
                                spec.min_angular_jerk, spec.max_angular_jerk)  # fmt: skip
        left_r = spec.wheel_radius * spec.left_radius_multiplier
        right_r = spec.wheel_radius * spec.right_radius_multiplier
        self.odom = WheelOdometry(spec.wheel_separation, spec.wheel_radius, left_r, right_r)
        self.half, self.radius = spec.wheel_separation / 2, spec.wheel_radius
        self.left_r, self.right_r = left_r, right_r
        self.open_loop = spec.open_loop
        self.odom_from_world = spec.odom_from_world
        self.v = self.w = 0.0  # the limited command of the last step (open-loop odometry)
        self.target = (0.0, 0.0)
        self.v0 = self.v1 = (0.0, 0.0)
        self.left_q = self.right_q = 0
        self.left_act: list[int] = []
        self.right_act: list[int] = []
        self.root = self.root_q = self.root_v = 0
        self.joints: list[tuple[str, int, int]] = []
        # gazebo_ros_diff_drive: wheel commands at its update rate, ramped by max_wheel_acceleration
        self.ramp = WheelRamp(spec.wheel_update_period, spec.max_wheel_acceleration, self.half, self.radius) \
            if spec.wheel_update_period > 0 else None  # fmt: skip

    def bind(self, m: Any, lay: RobotLayout) -> None:
        self.left_q = m.joint(lay.left_joints[0]).qposadr[0]
        self.right_q = m.joint(lay.right_joints[0]).qposadr[0]
        self.left_act = [m.actuator(a).id for a in lay.left_actuators]
        self.right_act = [m.actuator(a).id for a in lay.right_actuators]
        self.root = m.body(lay.body).id
        free = m.body_jntadr[self.root]
        self.root_q, self.root_v = m.jnt_qposadr[free], m.jnt_dofadr[free]
        self.joints = [(name, m.joint(j).qposadr[0], m.joint(j).dofadr[0]) for j, name in lay.joints]
        if self.ramp is not None:
            self.ramp.left_v = m.joint(lay.left_joints[0]).dofadr[0]
            self.ramp.right_v = m.joint(lay.right_joints[0]).dofadr[0]

    def reset(self, qpos: Any) -> None:
        if self.twin is not None:
            self.twin.reset()
        self.target = (0.0, 0.0)
        self.v0 = self.v1 = (0.0, 0.0)
        self.v = self.w = 0.0
        self.odom.reset(float(qpos[self.left_q]), float(qpos[self.right_q]))
        if self.ramp is not None:
            self.ramp.reset()

    def command(self, ctrl: Any, dt: float, t: float = 0.0, qvel: Any = None) -> None:
        """Limit the target for this step (through the twin's command path, if any) and set the wheel servos."""
        tv, tw = self.target if self.twin is None else self.twin.target(self.target, t)
        (v0, w0), (v1, w1) = self.v0, self.v1
        if not (tv == v0 == v1 and tw == w0 == w1):  # settled: skip the limiter
            v = self.lin.limit(tv, v0, v1, dt)
            w = self.ang.limit(tw, w0, w1, dt)
            self.v1, self.v0 = self.v0, (v, w)
        else:
            v, w = v0, w0
        if self.twin is not None:
            v, w = self.twin.response(v, w, dt)
        self.v, self.w = v, w
        if self.ramp is not None and qvel is not None:
            rim_left, rim_right = self.ramp.rim_speeds(v, w, t, qvel)
            left, right = rim_left / self.left_r, rim_right / self.right_r
        else:
            left, right = (v - w * self.half) / self.left_r, (v + w * self.half) / self.right_r
        for a in self.left_act:
            ctrl[a] = left
        for a in self.right_act:
            ctrl[a] = right


def twin_path(model: ModelSpec) -> twin_model.CommandPath | None:
    """The calibrated twin of a robot (its robot file or $SIMTWIN_TWIN_OVERRIDES), None for the nominal one."""
    dd = model.diff_drive
    assert dd is not None
    twin = twin_model.load(model.source, dd.wheel_radius, dd.wheel_separation)
    return twin_model.CommandPath(twin, dd.wheel_radius, dd.wheel_separation) if twin else None
