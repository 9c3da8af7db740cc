"""The simulator's publishing path (runner thread): clock, odometry, tf, ground truth, joints and scans.

Every message goes through :meth:`Publishing._send`, which applies the active sensor faults (dropped,
late, changed) and remembers the stamp really sent, and :meth:`Publishing._publish`, which survives a
refused DDS write. A mixin of :class:`pytest_simtwin.sim.node.SimNode`, which creates the entities.
"""

from __future__ import annotations

import contextlib
import logging
import math
from array import array
from collections.abc import Sequence
from typing import Any

from pytest_simtwin.sim import transforms as transforms_mod
from pytest_simtwin.sim.faults import FaultSet
from pytest_simtwin.sim.robot_io import RobotIO

log = logging.getLogger("simtwin.sim")


def _stamp_seconds(msg: Any) -> float:
    """The sim time a message is stamped with (/clock: its clock)."""
    stamp = msg.header.stamp if hasattr(msg, "header") else getattr(msg, "clock", None)
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9 if stamp is not None else 0.0


def _stamp(msg_stamp: Any, t: float) -> None:
    sec = math.floor(t)
    msg_stamp.sec = int(sec)
    msg_stamp.nanosec = min(round((t - sec) * 1e9), 999_999_999)



class Publishing:
    """Fault-aware sending and the per-topic ``publish_*`` methods of :class:`~pytest_simtwin.sim.node.SimNode`."""

    # set by SimNode (__init__, start)
    faults: FaultSet | None
    dropped: dict[str, int]
    _sent: dict[str, float]
    robots: dict[str, RobotIO]
    scan_pubs: list[tuple[Any, Any]]
    _tf_pubs: dict[str, Any]
    pub_clock: Any
    msg_clock: Any
    pub_scan: Any
    msg_scan: Any

    def _send(self, pub: Any, msg: Any) -> None:
        """Publish ``msg`` as the active sensor faults say (dropped, late, changed), or as it is."""
        faults = self.faults
        if faults is None or (not faults.faults and not faults.held):
            self._publish(pub, msg)
            return
        for late_pub, late in faults.release_held(_stamp_seconds(msg)):
            self._publish(late_pub, late)
            self._sent[str(late_pub.topic_name)] = _stamp_seconds(late)
        topic = str(getattr(pub, "topic_name", ""))
        for out in faults.outgoing(pub, topic, _stamp_seconds(msg), msg):
            self._publish(pub, out)
            self._sent[topic] = _stamp_seconds(out)

    def sent_stamp(self, topic: str | None, computed: float | None) -> float | None:
        """The stamp of the last message really sent on ``topic`` once a fault touched it, else ``computed``.

        Clients wait for the state's odom/scan stamp after a step: under a latency or blackout fault that
        is the last message that left, not the last one the simulator computed.
        """
        if topic is None or self.faults is None or not self.faults.touches(topic):
            return computed
        return self._sent.get(topic)

    def forget_sent(self) -> None:
        """After a reset (sim time went back): no stamp sent so far counts."""
        self._sent.clear()

    def _publish(self, pub: Any, msg: Any) -> None:
        """Publish, surviving a refused write.

        A reliable Fast DDS writer whose history is full of samples a slow reader has not yet
        acknowledged gives up after its blocking time and rmw raises "cannot publish data" (seen
        free-running at rtf 0 on loaded cores). That sample is lost for that reader either way; the
        simulator must keep running, so it counts the drop (state "dropped") and logs it.
        """
        try:
            pub.publish(msg)
        except Exception as exc:  # rclpy's RCLError is not importable by a stable public name
            topic = str(getattr(pub, "topic_name", "?"))
            n = self.dropped.get(topic, 0) + 1
            self.dropped[topic] = n
            if n == 1 or n % 1000 == 0:
                log.warning("%d message(s) on %s not sent (a slow or stalled subscriber?): %s", n, topic, exc)

    def _io(self, robot: str | None) -> RobotIO:
        return next(iter(self.robots.values())) if robot is None else self.robots[robot]

    def publish_clock(self, t: float) -> None:
        _stamp(self.msg_clock.clock, t)
        self._send(self.pub_clock, self.msg_clock)

    def publish_odom(
        self, t: float, x: float, y: float, yaw: float, vx: float, wz: float, robot: str | None = None
    ) -> None:
        io = self._io(robot)
        m = io.msg_odom
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x = x
        p.position.y = y
        p.orientation.z = math.sin(yaw * 0.5)
        p.orientation.w = math.cos(yaw * 0.5)
        m.twist.twist.linear.x = vx  # child frame: forward speed
        m.twist.twist.angular.z = wz
        self._send(io.pub_odom, m)

    def publish_tf(self, t: float, x: float, y: float, yaw: float, robot: str | None = None) -> None:
        """The odom -> base transform of the odometry of that instant (as the DiffDrive publishes it)."""
        io = self._io(robot)
        if io.pub_tf is None:
            return
        sec = math.floor(t)
        transforms_mod.fill_odom(io.msg_tf, int(sec), min(round((t - sec) * 1e9), 999_999_999), x, y, yaw)
        self._send(io.pub_tf, io.msg_tf)

    def publish_truth(self, t: float, truth: Any, robot: str | None = None) -> None:
        io = self._io(robot)
        m = io.msg_truth
        _stamp(m.header.stamp, t)
        p = m.pose.pose
        p.position.x, p.position.y, p.position.z = truth.x, truth.y, truth.z
        o = p.orientation
        o.x, o.y, o.z, o.w = truth.qx, truth.qy, truth.qz, truth.qw
        tw = m.twist.twist  # world frame (documented in protocol.GROUND_TRUTH)
        tw.linear.x, tw.linear.y, tw.linear.z = truth.vx, truth.vy, truth.vz
        tw.angular.x, tw.angular.y, tw.angular.z = truth.wx, truth.wy, truth.wz
        self._send(io.pub_truth, m)

    def publish_joints(
        self, t: float, positions: Sequence[float], velocities: Sequence[float], robot: str | None = None,
        names: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        io = self._io(robot)
        m = io.msg_joints
        if names is not None and len(m.name) != len(names):
            m.name = list(names)
        _stamp(m.header.stamp, t)
        m.position = array("d", positions)
        m.velocity = array("d", velocities)
        self._send(io.pub_joints, m)

    def publish_scan(self, t: float, ranges: array[float], index: int | None = None) -> None:
        """Publish lidar ``index`` (physics order); None: the first robot's main lidar."""
        if index is None:
            if self.pub_scan is None:
                return
            pub, m = self.pub_scan, self.msg_scan
        else:
            pub, m = self.scan_pubs[index]
        _stamp(m.header.stamp, t)
        m.ranges = ranges
        self._send(pub, m)

    def all_publishers(self) -> list[Any]:
        pubs = [self.pub_clock]
        for io in self.robots.values():
            pubs += [io.pub_odom, io.pub_truth, io.pub_joints]
        return pubs + [p for p, _m in self.scan_pubs] + list(self._tf_pubs.values())

    def subscriber_counts(self) -> tuple[int, ...]:
        """Matched subscriptions per publisher: a change while paused triggers a re-publish for late joiners."""
        with contextlib.suppress(Exception):
            return tuple(p.get_subscription_count() for p in self.all_publishers())
        return ()
