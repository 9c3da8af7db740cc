"""Commands of ros2_control position controllers: JointTrajectory and Float64MultiArray subscriptions.

A callback (ROS executor thread) turns the message into plain values and queues it; the runner applies
the queue before stepping (:meth:`pytest_simtwin.sim.engine.physics.Physics.joint_command`) and logs a
rejected command with the reason, so a bad trajectory never stops the simulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pytest_simtwin.sim.topics import Topics

log = logging.getLogger("simtwin.sim")

#: (robot, controller, command) with command {"values": [...]} or {"names", "points", "start"}.
JointCommand = tuple[str, str, dict[str, Any]]


def _seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


class JointCommandQueue:
    """Thread-safe hand-over of position-controller commands to the runner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[JointCommand] = []
        self.count = 0

    def push(self, item: JointCommand) -> None:
        with self._lock:
            self._items.append(item)
            self.count += 1

    def take(self) -> list[JointCommand]:
        with self._lock:
            items, self._items = self._items, []
        return items


def subscribe(sub_node: Any, topics: Topics, queue: JointCommandQueue, wake: Callable[[], None] | None) -> None:
    """Subscribe every position controller of one robot's ``topics``."""
    for name, kind, topic in topics.position_controllers:
        if kind == "trajectory":
            from trajectory_msgs.msg import JointTrajectory

            sub_node.create_subscription(JointTrajectory, topic, _on_trajectory(topics.robot, name, queue, wake), 10)
        else:
            from std_msgs.msg import Float64MultiArray

            sub_node.create_subscription(Float64MultiArray, topic, _on_array(topics.robot, name, queue, wake), 10)


def _on_trajectory(
    robot: str, controller: str, queue: JointCommandQueue, wake: Callable[[], None] | None
) -> Callable[[Any], None]:
    def callback(msg: Any) -> None:
        start = _seconds(msg.header.stamp)  # joint_trajectory_controller: a zero stamp starts now
        points = [(_seconds(p.time_from_start), [float(x) for x in p.positions]) for p in msg.points]
        command = {"names": [str(n) for n in msg.joint_names], "points": points, "start": start or None}
        queue.push((robot, controller, command))
        if wake is not None:
            wake()

    return callback


def _on_array(
    robot: str, controller: str, queue: JointCommandQueue, wake: Callable[[], None] | None
) -> Callable[[Any], None]:
    def callback(msg: Any) -> None:
        queue.push((robot, controller, {"values": [float(x) for x in msg.data]}))
        if wake is not None:
            wake()

    return callback


def apply(physics: Any, queue: JointCommandQueue) -> None:
    """Hand the queued commands to the physics; a rejected one is logged with its reason."""
    for robot, controller, command in queue.take():
        try:
            physics.joint_command(robot, controller, command)
        except ValueError as exc:
            log.error("rejected a command of robot %r: %s", robot, exc)
