"""Message conversions for the robot helper: poses from Odometry, velocity commands, LaserScan sectors,
trajectory arrays. Pure functions on rclpy message objects (message modules are imported lazily).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from pytest_simtwin.errors import ConfigError


class Pose2D(NamedTuple):
    x: float
    y: float
    yaw: float


class Velocity(NamedTuple):
    vx: float
    wz: float


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (rotation about z) of a full quaternion, valid also when roll/pitch are not zero."""
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sim_stamp(seconds: float) -> Any:
    """A builtin_interfaces Time for ``seconds`` of sim time (the inverse of :func:`stamp_seconds`)."""
    from builtin_interfaces.msg import Time

    ns = max(round(float(seconds) * 1e9), 0)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def pose_of(odom: Any) -> Pose2D:
    p = odom.pose.pose
    q = p.orientation
    return Pose2D(float(p.position.x), float(p.position.y), yaw_from_quaternion(q.x, q.y, q.z, q.w))


def twist_type(name: str) -> type:
    from geometry_msgs.msg import Twist, TwistStamped

    if name == "twist":
        return Twist  # type: ignore[no-any-return]
    if name == "twist_stamped":
        return TwistStamped  # type: ignore[no-any-return]
    raise ConfigError(f"cmd_vel type must be 'twist' or 'twist_stamped', found {name!r}")


def make_twist(type_name: str, vx: float, wz: float, stamp: Any = None, frame_id: str = "base_link") -> Any:
    """A Twist, or a TwistStamped carrying ``stamp`` (sim time) and ``frame_id``."""
    msg = twist_type(type_name)()
    twist = msg.twist if type_name == "twist_stamped" else msg
    twist.linear.x = float(vx)
    twist.angular.z = float(wz)
    if type_name == "twist_stamped":
        if stamp is not None:
            msg.header.stamp = stamp
        msg.header.frame_id = frame_id
    return msg


def trajectory_arrays(
    odom: Sequence[Any], truth: Sequence[Any], commands: Sequence[tuple[float, float, float]]
) -> dict[str, npt.NDArray[np.float64]]:
    """The TestRecord trajectory: odometry series, ground truth interpolated at the odometry stamps
    (empty without ground truth) and the commands (sim time, vx, wz)."""
    # A paused simulator re-sends its last message to late joiners: drop such exact repeats.
    odom = [m for i, m in enumerate(odom) if i == 0 or m.header.stamp != odom[i - 1].header.stamp]
    t = np.array([stamp_seconds(m.header.stamp) for m in odom], dtype=float)
    poses = [pose_of(m) for m in odom]
    out: dict[str, npt.NDArray[np.float64]] = {
        "t": t,
        "x": np.array([p.x for p in poses], dtype=float),
        "y": np.array([p.y for p in poses], dtype=float),
        "yaw": np.array([p.yaw for p in poses], dtype=float),
        "vx": np.array([m.twist.twist.linear.x for m in odom], dtype=float),
        "wz": np.array([m.twist.twist.angular.z for m in odom], dtype=float),
        "gt_x": np.array([], dtype=float),
        "gt_y": np.array([], dtype=float),
    }
    if truth and len(t):
        gt_t = np.array([stamp_seconds(m.header.stamp) for m in truth], dtype=float)
        order = np.argsort(gt_t, kind="stable")
        out["gt_x"] = np.interp(t, gt_t[order], np.array([m.pose.pose.position.x for m in truth], dtype=float)[order])
        out["gt_y"] = np.interp(t, gt_t[order], np.array([m.pose.pose.position.y for m in truth], dtype=float)[order])
    out["cmd_t"] = np.array([c[0] for c in commands], dtype=float)
    out["cmd_vx"] = np.array([c[1] for c in commands], dtype=float)
    out["cmd_wz"] = np.array([c[2] for c in commands], dtype=float)
    return out


def min_range_of(scan: Any, sector: tuple[float, float] = (-180.0, 180.0)) -> float:
    """``Robot.min_range`` on a given LaserScan (pure; see there)."""
    ranges = np.asarray(scan.ranges, dtype=float)
    if ranges.size == 0:
        return math.inf
    angles = scan.angle_min + scan.angle_increment * np.arange(ranges.size)
    deg = (np.degrees(angles) + 180.0) % 360.0 - 180.0  # normalised to [-180, 180)
    lo, hi = float(sector[0]), float(sector[1])
    if hi - lo >= 360.0:
        inside = np.ones(ranges.size, dtype=bool)
    else:
        lo_n = (lo + 180.0) % 360.0 - 180.0
        hi_n = (hi + 180.0) % 360.0 - 180.0
        inside = (deg >= lo_n) & (deg <= hi_n) if lo_n <= hi_n else (deg >= lo_n) | (deg <= hi_n)
    valid = inside & np.isfinite(ranges) & (ranges >= scan.range_min) & (ranges <= scan.range_max)
    return float(ranges[valid].min()) if valid.any() else math.inf
