"""One robot's ROS entities: its odometry, ground-truth, joint-state and tf publishers and their messages.

Message objects are created once and refilled by :mod:`pytest_simtwin.sim.publishing`: allocating them
costs more than the physics step. The command subscriptions are :mod:`pytest_simtwin.sim.commands`'.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_simtwin.sim import transforms as transforms_mod
from pytest_simtwin.sim.topics import ScanTopic, Topics

# Odometry covariances (row-major 6x6): planar wheel odometry knows x, y, yaw; z, roll and pitch are
# not observed, which robot_localization and nav2 read from a large variance.
_POSE_COV = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)
_TWIST_COV = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)


def _diag(values: Sequence[float]) -> list[float]:
    out = [0.0] * 36
    for i, v in enumerate(values):
        out[i * 7] = v
    return out


class RobotIO:
    """One robot's publishers, reusable messages and latest velocity command."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self.cmd: tuple[float, float] = (0.0, 0.0)
        self.count = 0  # commands received
        self.seen = 0  # count when the runner last took the command
        self.pub_odom: Any = None
        self.pub_truth: Any = None
        self.pub_joints: Any = None
        self.msg_odom: Any = None
        self.msg_truth: Any = None
        self.msg_joints: Any = None
        self.pub_tf: Any = None  # the odom -> base transform (tf2_msgs/TFMessage), None: not published
        self.msg_tf: Any = None


def make_robot_io(
    create_publisher: Callable[[Any, str, Any], Any], t: Topics, tf_type: Any, tf_pubs: dict[str, Any]
) -> RobotIO:
    """The publishers (``create_publisher(type, topic, qos)``) and reusable messages of the robot ``t``
    names; ``tf_pubs`` shares /tf."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import JointState

    io = RobotIO(t)
    # Reliable KEEP_LAST like ros_gz_bridge: matches reliable and best-effort subscribers.
    # Reliable with a deep history: a step request publishes a burst (60 odometry messages for
    # 2 s of sim time) faster than a loaded reader acknowledges; with depth 10 the writer drops
    # unacknowledged samples of the burst (recordings and trajectories then miss them).
    depth = 100
    io.pub_odom = create_publisher(Odometry, t.odom, depth)
    io.pub_truth = create_publisher(Odometry, t.ground_truth, depth)
    io.pub_joints = create_publisher(JointState, t.joint_states, depth)
    io.msg_odom = Odometry()
    io.msg_odom.header.frame_id = t.frame_id
    io.msg_odom.child_frame_id = t.child_frame_id
    io.msg_odom.pose.covariance = _diag(_POSE_COV)
    io.msg_odom.twist.covariance = _diag(_TWIST_COV)
    io.msg_truth = Odometry()
    io.msg_truth.header.frame_id = "world"
    io.msg_truth.child_frame_id = t.child_frame_id
    io.msg_joints = JointState()
    if t.tf and tf_type is not None:
        if t.tf not in tf_pubs:  # robots share /tf
            tf_pubs[t.tf] = create_publisher(tf_type, t.tf, depth)
        io.pub_tf = tf_pubs[t.tf]
        io.msg_tf = transforms_mod.odom_message(tf_type, t.frame_id, t.child_frame_id)
    return io


def scan_message(scan: ScanTopic, lidar: Any) -> Any:
    """A LaserScan for ``scan`` with the lidar's fixed fields (angles, ranges, rate) filled in."""
    from sensor_msgs.msg import LaserScan

    s = LaserScan()
    s.header.frame_id = scan.frame_id
    if lidar is not None:
        s.angle_min = float(lidar.min_angle)
        s.angle_max = float(lidar.max_angle)
        s.angle_increment = float((lidar.max_angle - lidar.min_angle) / max(int(lidar.samples) - 1, 1))
        s.time_increment = 0.0
        s.scan_time = float(1.0 / lidar.update_rate) if lidar.update_rate else 0.0
        s.range_min = float(lidar.range_min)
        s.range_max = float(lidar.range_max)
    return s
