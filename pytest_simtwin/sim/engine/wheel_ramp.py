"""Gazebo classic ``gazebo_ros_diff_drive`` (ROS 2) wheel commands: set every ``update_period``, ramped
by ``max_wheel_acceleration``.

The plugin acts only when ``update_period`` has passed since its last update. It then turns the command
into rim speeds (``v -/+ w * separation / 2``, m/s) and, when ``max_wheel_acceleration`` is 0 or either
wheel is within 0.01 m/s of its target, sets the wheel joints to those speeds; otherwise it moves an
instructed speed per wheel towards the target by at most ``max_wheel_acceleration * elapsed`` relative
to the wheel's measured speed, and sets that. The instructed speeds are kept between updates (the
direct branch does not reset them), as in the plugin.
"""

from __future__ import annotations

from typing import Any

#: the plugin's "target speed reached" band (m/s)
REACHED = 0.01


class WheelRamp:
    """Rim-speed commands (m/s) of one gazebo_ros_diff_drive robot, updated as the plugin updates them."""

    def __init__(self, period: float, accel: float, half: float, radius: float) -> None:
        self.period, self.accel, self.half, self.radius = period, accel, half, radius
        self.left_v = self.right_v = 0  # dof addresses of the first wheel joint per side
        self.reset()

    def reset(self) -> None:
        self.last = 0.0
        self.instr = [0.0, 0.0]
        self.command = (0.0, 0.0)

    def rim_speeds(self, v: float, w: float, t: float, qvel: Any) -> tuple[float, float]:
        """The rim speeds the wheel joints are driven at now (``t``: sim time before this step)."""
        elapsed = t - self.last
        if elapsed + 1e-9 < self.period:
            return self.command
        self.last = t
        want = (v - w * self.half, v + w * self.half)
        now = (float(qvel[self.left_v]) * self.radius, float(qvel[self.right_v]) * self.radius)
        if self.accel <= 0 or abs(want[0] - now[0]) < REACHED or abs(want[1] - now[1]) < REACHED:
            self.command = want
        else:
            step = self.accel * elapsed
            for i in (0, 1):
                delta = want[i] - now[i]
                self.instr[i] += min(delta, step) if delta >= 0 else max(delta, -step)
            self.command = (self.instr[0], self.instr[1])
        return self.command
