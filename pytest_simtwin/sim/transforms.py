"""/tf and /tf_static messages (tf2_msgs/TFMessage): the odom -> base transform and the fixed joints.

tf2_msgs is not on PyPI: :mod:`pytest_simtwin.sim.msgbuild` builds it at first use; without it the
simulator runs without /tf and says why once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from pytest_simtwin.sim import msgbuild

log = logging.getLogger("simtwin.sim")


def tf_message_type() -> Any:
    """tf2_msgs' TFMessage class, None when it cannot be had (logged)."""
    try:
        msgbuild.ensure("tf2_msgs")
        from tf2_msgs.msg import TFMessage
    except Exception as exc:  # no compiler, a failed build: the rest of the simulator still works
        log.warning("no /tf and /tf_static: the tf2_msgs message package is unavailable (%s)", exc)
        return None
    return TFMessage


def latched_qos() -> Any:
    """robot_state_publisher's /tf_static QoS: reliable, transient local, depth 1."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)


def static_message(tf_type: Any, transforms: Sequence[tuple[str, str, Any]]) -> Any:
    """One TFMessage with every (parent, child, Pose) transform."""
    from geometry_msgs.msg import TransformStamped

    msg = tf_type()
    for parent, child, pose in transforms:
        tr = TransformStamped()
        tr.header.frame_id, tr.child_frame_id = parent, child
        tr.transform.translation.x, tr.transform.translation.y, tr.transform.translation.z = pose.x, pose.y, pose.z
        w, x, y, z = pose.quaternion()
        q = tr.transform.rotation
        q.x, q.y, q.z, q.w = x, y, z, w
        msg.transforms.append(tr)
    return msg


def odom_message(tf_type: Any, frame_id: str, child_frame_id: str) -> Any:
    """A reusable TFMessage holding one odom -> base transform (filled by :func:`fill_odom`)."""
    from geometry_msgs.msg import TransformStamped

    msg = tf_type()
    tr = TransformStamped()
    tr.header.frame_id, tr.child_frame_id = frame_id, child_frame_id
    tr.transform.rotation.w = 1.0
    msg.transforms = [tr]
    return msg


def fill_odom(msg: Any, sec: int, nanosec: int, x: float, y: float, yaw: float) -> None:
    tr = msg.transforms[0]
    tr.header.stamp.sec, tr.header.stamp.nanosec = sec, nanosec
    tr.transform.translation.x, tr.transform.translation.y = x, y
    tr.transform.rotation.z, tr.transform.rotation.w = math.sin(yaw * 0.5), math.cos(yaw * 0.5)
