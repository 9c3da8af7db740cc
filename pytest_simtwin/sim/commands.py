"""The simulator's velocity commands: cmd_vel callbacks (with command faults), hand-over to the runner, type checks.

A command callback runs on a ROS executor thread and keeps each robot's latest (vx, wz); the runner
takes it before stepping. A mixin of :class:`pytest_simtwin.sim.node.SimNode`, which subscribes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.robot_io import RobotIO
from pytest_simtwin.sim.topics import CMD_VEL_TYPES

log = logging.getLogger("simtwin.sim")


class Commands:
    """cmd_vel handling of :class:`~pytest_simtwin.sim.node.SimNode`."""

    # set by SimNode.__init__
    node: Any
    faults: FaultSet | None
    robots: dict[str, RobotIO]
    cmd_count: int
    _cmd_lock: threading.Lock
    _wake: Callable[[], None] | None
    _type_errors: set[tuple[str, str, str]]

    def _cmd_callback(self, io: RobotIO) -> Callable[[Any], None]:
        def on_cmd(msg: Any) -> None:
            twist = msg.twist if hasattr(msg, "twist") else msg
            vx, wz = float(twist.linear.x), float(twist.angular.z)
            if not (math.isfinite(vx) and math.isfinite(wz)):
                log.error(
                    "ignored a velocity command on %s with non-finite values (vx=%s, wz=%s)", io.topics.cmd_vel, vx, wz
                )
                return
            faults = self.faults
            cmd = (vx, wz) if faults is None or not faults.faults else faults.command_arrived((vx, wz), io.topics.robot)
            with self._cmd_lock:
                if cmd is not None:  # None: a fault dropped, froze or delayed it (it still counts as received)
                    io.cmd = cmd
                    io.count += 1
                self.cmd_count += 1
            if self._wake is not None:
                self._wake()

        return on_cmd

    def take_commands(self) -> dict[str, tuple[float, float]]:
        """Each robot's latest command if one arrived since the last call (applied before stepping)."""
        out: dict[str, tuple[float, float]] = {}
        with self._cmd_lock:
            for name, io in self.robots.items():
                if io.count != io.seen:
                    io.seen = io.count
                    out[name] = io.cmd
        return out

    def take_command(self) -> tuple[float, float] | None:
        """The first robot's latest command if one arrived since the last call."""
        return next(iter(self.take_commands().values()), None)

    def release_delayed_commands(self, t: float) -> dict[str, tuple[float, float]]:
        """Per robot, the command a ``cmd_delay`` fault held that is due at sim time ``t`` (runner thread)."""
        if self.faults is None:
            return {}
        due = self.faults.release_commands(t)
        with self._cmd_lock:
            for robot, cmd in due.items():
                io = self.robots.get(robot)
                if io is not None:  # applied by the caller now; take_commands need not return it again
                    io.cmd = cmd
                    io.count += 1
                    io.seen = io.count
        return due

    def check_cmd_vel_types(self) -> list[str]:
        """Errors for publishers that send another type on a command topic (DDS drops them silently)."""
        errors = []
        for io in self.robots.values():
            t = io.topics
            expected = [CMD_VEL_TYPES[k] for k in t.cmd_vel_types]
            try:
                infos = self.node.get_publishers_info_by_topic(t.cmd_vel)
            except Exception:  # context shutting down
                return []
            for info in infos:
                if info.topic_type in expected:
                    continue
                who = f"{info.node_namespace.rstrip('/')}/{info.node_name}".replace("//", "/")
                key = (t.cmd_vel, who, info.topic_type)
                if key in self._type_errors:
                    continue
                self._type_errors.add(key)
                other = next((k for k, v in CMD_VEL_TYPES.items() if v == info.topic_type), None)
                fix = (
                    f"start the simulator with --cmd-vel-type any or {other} (pytest: leave --simtwin-cmd-vel-type "
                    f"unset, or {other})"
                    if other
                    else "publish geometry_msgs/msg/Twist or TwistStamped"
                )
                errors.append(
                    f"node {who} publishes {info.topic_type} on {t.cmd_vel}, but the simulator subscribes "
                    f"{' and '.join(expected)} (--cmd-vel-type {'/'.join(t.cmd_vel_types)}); its commands are "
                    f"ignored. To fix, {fix}."
                )
        return errors
