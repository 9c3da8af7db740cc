"""Write small robot recordings as ROS 1 bags and rosbag2 (MCAP / sqlite3) with rosbags' own writers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.twin.data import Trajectory


def quaternion_rpy(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of the ZYX rotation yaw * pitch * roll."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return (
        sr * cp * cy - cr * sp * sy,
        cr * sp * cy + sr * cp * sy,
        cr * cp * sy - sr * sp * cy,
        cr * cp * cy + sr * sp * sy,
    )


def write_bag(
    traj: Trajectory,
    path: Path,
    kind: str,
    *,
    odom_topic: str = "/odom",
    cmd_topic: str = "/cmd_vel",
    joint_topic: str = "/joint_states",
    roll_pitch: tuple[float, float] = (0.0, 0.0),
    stamped_cmd: bool = False,
) -> Path:
    """kind: 'ros1' (.bag), 'mcap' or 'sqlite3' (rosbag2 folders). Receive time = stamp + 1 ms."""
    from rosbags.typesys import Stores, get_typestore

    ros1 = kind == "ros1"
    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    T = store.types

    def header(t: float, frame: str) -> Any:
        stamp = T["builtin_interfaces/msg/Time"](sec=int(t), nanosec=round((t - int(t)) * 1e9))
        if ros1:
            return T["std_msgs/msg/Header"](seq=0, stamp=stamp, frame_id=frame)
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def vec(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Any:
        return T["geometry_msgs/msg/Vector3"](x=x, y=y, z=z)

    def odom(i: int) -> Any:
        qx, qy, qz, qw = quaternion_rpy(roll_pitch[0], roll_pitch[1], float(traj.theta[i]))
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=float(traj.x[i]), y=float(traj.y[i]), z=0.0),
            orientation=T["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
        )
        twist = T["geometry_msgs/msg/Twist"](linear=vec(float(traj.vx[i])), angular=vec(z=float(traj.vtheta[i])))
        return T["nav_msgs/msg/Odometry"](
            header=header(float(traj.t[i]), "odom"),
            child_frame_id="base_footprint",
            pose=T["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)),
        )

    def cmd(i: int) -> Any:
        tw = T["geometry_msgs/msg/Twist"](linear=vec(float(traj.cmd_vx[i])), angular=vec(z=float(traj.cmd_vtheta[i])))
        if stamped_cmd:
            return T["geometry_msgs/msg/TwistStamped"](header=header(float(traj.cmd_t[i]), "base_footprint"), twist=tw)
        return tw

    def joint(i: int) -> Any:
        return T["sensor_msgs/msg/JointState"](
            header=header(float(traj.joint_t[i]), ""),
            name=list(traj.joint_names),
            position=np.asarray(traj.joint_position[i], dtype=float),
            velocity=np.asarray(traj.joint_velocity[i], dtype=float),
            effort=np.zeros(0),
        )

    cmd_type = "geometry_msgs/msg/TwistStamped" if stamped_cmd else "geometry_msgs/msg/Twist"
    events: list[tuple[int, str, Any, str]] = []
    events += [
        (round(traj.t[i] * 1e9) + 1_000_000, odom_topic, odom(i), "nav_msgs/msg/Odometry") for i in range(len(traj))
    ]
    events += [(round(traj.cmd_t[i] * 1e9) + 1_000_000, cmd_topic, cmd(i), cmd_type) for i in range(traj.cmd_t.size)]
    events += [
        (round(traj.joint_t[i] * 1e9) + 1_000_000, joint_topic, joint(i), "sensor_msgs/msg/JointState")
        for i in range(traj.joint_t.size)
    ]
    return write_events(path, events, kind=kind, ros1=ros1, store=store)


def write_events(path: Path, events: list[tuple[int, str, Any, str]], *, kind: str, ros1: bool, store: Any) -> Path:
    """Write ``(receive time ns, topic, message, type)`` events in time order as a ROS 1 bag or a rosbag2
    (``kind``: "mcap" or "sqlite3")."""
    events = sorted(events, key=lambda e: e[0])
    if ros1:
        from rosbags.rosbag1 import Writer as Writer1

        with Writer1(path) as w1:
            conns: dict[str, Any] = {}
            for stamp, topic, msg, typ in events:
                if topic not in conns:
                    conns[topic] = w1.add_connection(topic, typ, typestore=store)
                w1.write(conns[topic], stamp, store.serialize_ros1(msg, typ))
        return path
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugin = StoragePlugin.MCAP if kind == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as w2:
        conns = {}
        for stamp, topic, msg, typ in events:
            if topic not in conns:
                conns[topic] = w2.add_connection(topic, typ, typestore=store)
            w2.write(conns[topic], stamp, store.serialize_cdr(msg, typ))
    return path
