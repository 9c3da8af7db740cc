"""Simulator model description: plain dataclasses produced by the SDF/URDF loaders, consumed by physics.

SI units and radians everywhere. Frames:

* ``ModelSpec.pose``: model frame in the world.
* ``LinkSpec.pose``: link frame in its model frame.
* ``GeomSpec.pose`` / ``LidarSpec.pose``: in the link frame.
* ``JointSpec.pose``: joint frame in the child link frame; ``axis`` is expressed in the child link frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pytest_simtwin.sim.world.sensors import SensorSpec

INF = math.inf


@dataclass(frozen=True)
class Pose:
    """A rigid transform as SDF writes it: translation plus fixed-axis roll, pitch, yaw (R = Rz Ry Rx)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    def rotation(self) -> np.ndarray:
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        return np.array(
            [
                [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                [-sp, cp * sr, cp * cr],
            ]
        )

    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation()
        m[:3, 3] = (self.x, self.y, self.z)
        return m

    @staticmethod
    def from_matrix(m: np.ndarray) -> Pose:
        r = m[:3, :3]
        pitch = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
        if abs(float(r[2, 0])) < 1.0 - 1e-12:
            roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
            yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
        else:  # gimbal lock: fold roll into yaw
            roll = 0.0
            yaw = math.atan2(-float(r[0, 1]), float(r[1, 1]))
        return Pose(float(m[0, 3]), float(m[1, 3]), float(m[2, 3]), roll, pitch, yaw)

    def __mul__(self, other: Pose) -> Pose:
        """Compose: ``a * b`` is frame b (given in a) expressed in a's parent."""
        return Pose.from_matrix(self.matrix() @ other.matrix())

    def inverse(self) -> Pose:
        return Pose.from_matrix(np.linalg.inv(self.matrix()))

    def quaternion(self) -> tuple[float, float, float, float]:
        """(w, x, y, z), MuJoCo's order."""
        cr, sr = math.cos(self.roll / 2), math.sin(self.roll / 2)
        cp, sp = math.cos(self.pitch / 2), math.sin(self.pitch / 2)
        cy, sy = math.cos(self.yaw / 2), math.sin(self.yaw / 2)
        return (
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        )

    @staticmethod
    def from_quaternion(x: float, y: float, z: float, w: float, qx: float, qy: float, qz: float) -> Pose:
        """From a position and a (w, x, y, z) quaternion."""
        roll = math.atan2(2 * (w * qx + qy * qz), 1 - 2 * (qx * qx + qy * qy))
        pitch = math.asin(max(-1.0, min(1.0, 2 * (w * qy - qz * qx))))
        yaw = math.atan2(2 * (w * qz + qx * qy), 1 - 2 * (qy * qy + qz * qz))
        return Pose(x, y, z, roll, pitch, yaw)

    def as_dict(self) -> dict[str, float]:
        return {"x": self.x, "y": self.y, "z": self.z, "roll": self.roll, "pitch": self.pitch, "yaw": self.yaw}


@dataclass
class GeomSpec:
    """One collision geometry. ``size``: box (x, y, z) full lengths; cylinder (radius, length); sphere
    (radius,); plane (x, y) extent with normal +z of the geom frame (0 = infinite); mesh (sx, sy, sz) scale."""

    name: str
    kind: str
    size: tuple[float, ...]
    pose: Pose = field(default_factory=Pose)
    mesh: Path | None = None
    #: Coulomb friction coefficient (SDF ``<mu>``); None = simulator default.
    friction: float | None = None
    #: (file, line) of the defining element, for messages.
    origin: str = ""
    #: the link Gazebo reports it on when that is not the link it is on: a URDF fixed-joint child's
    #: collision belongs to the link sdformat lumps it into (``sim.world.lumping``); "" = its own link.
    link: str = ""


@dataclass
class InertialSpec:
    mass: float
    pose: Pose = field(default_factory=Pose)
    #: ixx, iyy, izz, ixy, ixz, iyz about the inertial frame.
    inertia: tuple[float, float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    origin: str = field(default="", compare=False)

    def link_frame_inertia(self) -> tuple[float, float, float, float, float, float]:
        """The tensor about the centre of mass, rotated into the link frame (R I R^T), same order."""
        ixx, iyy, izz, ixy, ixz, iyz = self.inertia
        tensor = np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]])
        r = self.pose.rotation()
        t = r @ tensor @ r.T
        return (float(t[0, 0]), float(t[1, 1]), float(t[2, 2]), float(t[0, 1]), float(t[0, 2]), float(t[1, 2]))


@dataclass
class LidarSpec:
    name: str
    link: str
    pose: Pose
    topic: str
    frame_id: str
    update_rate: float
    samples: int
    min_angle: float
    max_angle: float
    range_min: float
    range_max: float
    range_resolution: float = 0.0
    noise_mean: float = 0.0
    noise_stddev: float = 0.0

    @property
    def angle_increment(self) -> float:
        return (self.max_angle - self.min_angle) / (self.samples - 1) if self.samples > 1 else 0.0


@dataclass
class LinkSpec:
    name: str
    pose: Pose = field(default_factory=Pose)
    #: None: no ``<inertial>`` given (physics derives a small default from the geometry).
    inertial: InertialSpec | None = None
    collisions: list[GeomSpec] = field(default_factory=list)
    sensors: list[LidarSpec] = field(default_factory=list)
    #: file:line of the defining element, for messages.
    origin: str = field(default="", compare=False)
    #: IMU, camera, navsat and contact sensors (see sensors.py).
    devices: list[SensorSpec] = field(default_factory=list)
    #: colour of the link's visuals (RGBA 0-1), painted on its collision shapes for cameras.
    rgba: tuple[float, float, float, float] | None = None
    #: a URDF link sdformat lumps into its parent (fixed joint): without <inertial> it adds no mass
    #: (parser_urdf.cc ReduceInertialToParent moves only an inertial it has); its collisions stay.
    lumped: bool = False

    @property
    def mass(self) -> float:
        return self.inertial.mass if self.inertial is not None else 0.0


@dataclass
class JointSpec:
    name: str
    kind: str  # revolute | continuous | prismatic | fixed | ball | universal
    parent: str  # link name, or "world"
    child: str
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    pose: Pose = field(default_factory=Pose)
    #: (lower, upper) position limits, None = unlimited.
    limits: tuple[float, float] | None = None
    damping: float = 0.0
    friction: float = 0.0
    #: second axis of a universal (or revolute2) joint, in the child link frame.
    axis2: tuple[float, float, float] = (0.0, 1.0, 0.0)
    origin: str = field(default="", compare=False)


@dataclass
class DiffDriveSpec:
    """Parameters of Gazebo's DiffDrive system (defaults as in gz-sim: no limits)."""

    left_joints: list[str]
    right_joints: list[str]
    wheel_separation: float
    wheel_radius: float
    topic: str
    odom_topic: str
    frame_id: str
    child_frame_id: str
    odom_publish_frequency: float = 50.0
    min_linear_velocity: float = -INF
    max_linear_velocity: float = INF
    min_angular_velocity: float = -INF
    max_angular_velocity: float = INF
    min_linear_acceleration: float = -INF
    max_linear_acceleration: float = INF
    min_angular_acceleration: float = -INF
    max_angular_acceleration: float = INF
    min_linear_jerk: float = -INF
    max_linear_jerk: float = INF
    min_angular_jerk: float = -INF
    max_angular_jerk: float = INF
    origin: str = ""
    #: the command type its clients send: gz DiffDrive Twist; ros2_control on Jazzy+ TwistStamped.
    cmd_vel_type: str = "twist"
    #: which controller it is ("gz DiffDrive", "diff_drive_controller", ...), for messages and features.
    kind: str = "gz DiffDrive"
    #: odom -> base transform on /tf (gz DiffDrive: its tf_topic; diff_drive_controller: enable_odom_tf).
    publish_tf: bool = False
    #: where that transform goes (gz: <tf_topic>, default /model/<name>/tf; ROS plugins: /tf)
    tf_topic: str = ""
    #: diff_drive_controller's calibration: the radius the controller assumes per side is radius * multiplier.
    left_radius_multiplier: float = 1.0
    right_radius_multiplier: float = 1.0
    #: diff_drive_controller open_loop: odometry integrates the (limited) commands instead of the wheels.
    open_loop: bool = False
    #: gazebo_ros_diff_drive odometry_source 1 (its default): odometry is the model's world pose and
    #: velocity (ground truth), not integrated from the wheels.
    odom_from_world: bool = False
    #: gazebo_ros_diff_drive: wheel commands every 1/update_rate s (0: every step) ramped by
    #: max_wheel_acceleration (m/s^2 at the wheel rim; 0: none), see sim/engine/wheel_ramp.py
    wheel_update_period: float = 0.0
    max_wheel_acceleration: float = 0.0


@dataclass
class ServoSpec:
    """A joint held by a ros2_control position command interface (gz_ros2_control's position loop)."""

    joint: str
    #: where it starts and is held until a command: the state interface's ``initial_value`` (else 0).
    initial: float
    #: the controller that claims it ("arm_controller"), for messages.
    controller: str
    #: (lower, upper) a command is clamped to: the joint limits and the command interface min/max.
    limits: tuple[float, float] = (-INF, INF)
    #: a ros2_control ``mimic`` joint: (leader joint, multiplier); its target follows the leader's.
    mimic: tuple[str, float] | None = None


@dataclass
class PositionControllerSpec:
    """A JointTrajectoryController (``kind`` "trajectory") or JointGroupPositionController ("group")."""

    name: str
    kind: str
    joints: list[str]
    #: ``~/joint_trajectory`` (trajectory_msgs/JointTrajectory) or ``~/commands`` (Float64MultiArray), resolved.
    topic: str
    origin: str = ""
    #: JointTrajectoryController allow_partial_joints_goal: a trajectory may name a subset of the joints.
    allow_partial: bool = False


@dataclass
class ModelSpec:
    name: str
    pose: Pose = field(default_factory=Pose)
    static: bool = False
    links: list[LinkSpec] = field(default_factory=list)
    joints: list[JointSpec] = field(default_factory=list)
    diff_drive: DiffDriveSpec | None = None
    #: joints held by position servos, and the controllers that command them (see world/joint_controllers.py).
    servos: list[ServoSpec] = field(default_factory=list)
    position_controllers: list[PositionControllerSpec] = field(default_factory=list)
    #: gz_ros2_control's position loop: velocity command = gain * (target - position), gain in 1/s
    #: (its position_proportional_gain times the controller manager's update_rate).
    servo_gain: float = 100.0
    lidars: list[LidarSpec] = field(default_factory=list)
    #: every link's IMU/camera/navsat/contact sensors, collected after parsing.
    devices: list[SensorSpec] = field(default_factory=list)
    #: the link that carries the model frame (SDF canonical link); defaults to the first link.
    canonical_link: str = ""
    #: file the model came from (for messages).
    source: Path | None = None

    def link(self, name: str) -> LinkSpec:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    @property
    def root_link(self) -> str:
        return self.canonical_link or (self.links[0].name if self.links else "")


@dataclass
class WorldSpec:
    name: str
    source: Path | None = None
    step_size: float = 0.001
    real_time_factor: float = 1.0
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    models: list[ModelSpec] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: ``<spherical_coordinates>``: latitude, longitude (degrees), elevation (m), heading (degrees).
    spherical: tuple[float, float, float, float] | None = None
    #: ``<magnetic_field>`` in tesla, world frame (sdformat world.sdf's default: roughly Zurich's)
    magnetic_field: tuple[float, float, float] = (5.5645e-6, 22.8758e-6, -42.3884e-6)

    @property
    def robots(self) -> list[ModelSpec]:
        """Every model carrying a DiffDrive (or ros2_control diff-drive) controller, in file order."""
        return [m for m in self.models if m.diff_drive is not None]

    @property
    def robot(self) -> ModelSpec:
        """The primary robot: the first DiffDrive model (the loader guarantees at least one)."""
        robots = self.robots
        if not robots:
            raise ValueError(f"expected a DiffDrive model in world {self.name!r}, found none")
        return robots[0]

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
