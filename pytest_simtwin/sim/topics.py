"""Which ROS names the simulator serves: DiffDrive/lidar parameters, renamed like ros_gz_bridge would.

The same world file then works with Gazebo + ros_gz_bridge and with ``simtwin-sim --bridge FILE``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ConfigError

if TYPE_CHECKING:
    from pytest_simtwin.sim.world.model import LidarSpec, Pose, WorldSpec

CMD_VEL_TYPES = {"twist": "geometry_msgs/msg/Twist", "twist_stamped": "geometry_msgs/msg/TwistStamped"}


def _abs(name: str) -> str:
    """gz treats topic names without a leading slash as absolute; so do we (namespaces don't apply)."""
    name = name.strip()
    return name if name.startswith("/") else "/" + name


# -- ros_gz_bridge YAML -----------------------------------------------------------------------------
@dataclass(frozen=True)
class BridgeEntry:
    """One ros_gz_bridge YAML entry (read here for --bridge, written by pytest_simtwin.backends.gazebo)."""

    ros_topic_name: str
    gz_topic_name: str
    ros_type_name: str
    gz_type_name: str
    direction: str  # BIDIRECTIONAL | GZ_TO_ROS | ROS_TO_GZ
    lazy: bool = False


_DIRECTIONS = ("BIDIRECTIONAL", "GZ_TO_ROS", "ROS_TO_GZ")


def load_bridge(path: Path) -> list[BridgeEntry]:
    """Read a ros_gz_bridge YAML file (a list of topic entries); ConfigError names the file and entry."""
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"bridge file {path}: cannot read it ({exc.strerror}); expected a ros_gz_bridge YAML"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"bridge file {path}: not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(data, list):
        raise ConfigError(
            f"bridge file {path}: expected a YAML list of entries with ros_topic_name, gz_topic_name, "
            f"ros_type_name, gz_type_name, direction; found {type(data).__name__}"
        )
    entries = []
    for i, raw in enumerate(data, 1):
        if not isinstance(raw, dict):
            raise ConfigError(f"bridge file {path}, entry {i}: expected a mapping, found {raw!r:.80}")
        if "topic_name" in raw:  # the shorthand form: same name on both sides
            raw = {"ros_topic_name": raw["topic_name"], "gz_topic_name": raw["topic_name"], **raw}
        missing = [k for k in ("ros_topic_name", "gz_topic_name", "ros_type_name") if not raw.get(k)]
        if missing:
            raise ConfigError(
                f"bridge file {path}, entry {i}: missing {', '.join(missing)} (found keys {', '.join(map(str, raw))})"
            )
        direction = str(raw.get("direction", "BIDIRECTIONAL")).upper()
        if direction not in _DIRECTIONS:
            raise ConfigError(
                f"bridge file {path}, entry {i}: direction {direction!r}, expected one of {', '.join(_DIRECTIONS)}"
            )
        entries.append(
            BridgeEntry(
                _abs(str(raw["ros_topic_name"])),
                _abs(str(raw["gz_topic_name"])),
                str(raw["ros_type_name"]),
                str(raw.get("gz_type_name", "")),
                direction,
            )
        )
    return entries


# -- topic names ------------------------------------------------------------------------------------
#: --cmd-vel-type values: one type, or both at once ("any": Humble nodes send Twist, Jazzy nodes TwistStamped).
CMD_VEL_CHOICES = ("any", "twist", "twist_stamped")


@dataclass
class ScanTopic:
    """One simulated lidar: its physics index (``Physics.lidars``), ROS topic and frame."""

    index: int
    name: str
    topic: str
    frame_id: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "topic": self.topic, "frame_id": self.frame_id}


@dataclass
class Topics:
    """The ROS names and frames the simulator serves for one robot (reported by get_simulator_features).

    The first robot's Topics also lists the other robots (``others``) and carries the world-wide notes.
    """

    cmd_vel: str
    #: the type a client should publish ("twist" or "twist_stamped"); ``cmd_vel_types`` are all accepted.
    cmd_vel_type: str
    odom: str
    scan: str | None
    joint_states: str
    clock: str
    ground_truth: str
    frame_id: str
    child_frame_id: str
    lidar_frame_id: str | None
    max_linear_velocity: float | None
    max_angular_velocity: float | None
    notes: list[str] = field(default_factory=list)
    robot: str = ""
    cmd_vel_types: tuple[str, ...] = ("twist",)
    #: every lidar of the robot (``scan`` is the main one: a 2-D lidar before 1-ray range sensors).
    scans: list[ScanTopic] = field(default_factory=list)
    others: list[Topics] = field(default_factory=list)
    #: the odom -> base transform's topic (tf2_msgs/TFMessage), None: not published
    tf: str | None = None
    #: the description's fixed joints (robot_state_publisher's /tf_static), frames prefixed with this
    tf_static: str | None = None
    frame_prefix: str = ""
    #: ros2_control position controllers: (controller, "trajectory" | "group", command topic).
    position_controllers: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def robots(self) -> list[Topics]:
        return [self, *self.others]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready names (infinite limits as None); the first robot's adds ``robots``: name -> names."""
        out = self._names()
        if self.others:
            out["robots"] = {t.robot: t._names() for t in self.robots}
        return out

    def _names(self) -> dict[str, Any]:
        limits = (self.max_linear_velocity, self.max_angular_velocity)
        lin, ang = (v if v is not None and math.isfinite(v) else None for v in limits)
        return {
            "robot": self.robot,
            "cmd_vel": self.cmd_vel,
            "cmd_vel_type": self.cmd_vel_type,
            "cmd_vel_types": list(self.cmd_vel_types),
            "odom": self.odom,
            "scan": self.scan,
            "scans": [s.as_dict() for s in self.scans],
            "joint_states": self.joint_states,
            "clock": self.clock,
            "ground_truth": self.ground_truth,
            "frame_id": self.frame_id,
            "child_frame_id": self.child_frame_id,
            "lidar_frame_id": self.lidar_frame_id,
            "tf": self.tf,
            "tf_static": self.tf_static,
            "max_linear_velocity": lin,
            "max_angular_velocity": ang,
        }


def main_scan(scans: Sequence[ScanTopic], lidars: Sequence[LidarSpec]) -> ScanTopic | None:
    """The robot's 'scan': the lidar on /scan, else the one with the most rays (1-ray ToF/cliff sensors
    declared before the 2-D lidar must not take its place)."""
    if not scans:
        return None
    named = [s for s in scans if s.topic == "/scan"]
    if named:
        return named[0]
    return max(scans, key=lambda s: lidars[scans.index(s)].samples)


def resolve_topics(
    world: WorldSpec,
    *,
    cmd_vel_type: str | None = None,
    bridge: Sequence[BridgeEntry] = (),
    namespace: str = protocol.NAMESPACE,
    served: Collection[str] = (),
) -> Topics:
    """ROS topic names of every robot from the DiffDrive/lidar parameters, renamed through a bridge file
    like ros_gz_bridge. The first robot's names are the returned Topics; the others are in ``others``.

    ``served``: gz topics published elsewhere (the sensor publishers), so their bridge entries are not
    reported as unserved."""
    if cmd_vel_type not in (None, *CMD_VEL_CHOICES):
        raise ConfigError(f"--cmd-vel-type {cmd_vel_type!r}: expected one of {', '.join(CMD_VEL_CHOICES)}")
    by_gz = {e.gz_topic_name: e for e in bridge}
    used: set[str] = {_abs(t) for t in served}
    notes: list[str] = []

    def ros_name(gz: str, want: str, types: Sequence[str]) -> tuple[str, BridgeEntry | None]:
        entry = by_gz.get(_abs(gz))
        if entry is None:
            return _abs(gz), None
        used.add(entry.gz_topic_name)
        if entry.ros_type_name not in types:
            raise ConfigError(
                f"bridge entry for {entry.gz_topic_name}: ros_type_name {entry.ros_type_name}, expected "
                f"{' or '.join(types)} for the robot's {want} topic"
            )
        return entry.ros_topic_name, entry

    robots = world.robots
    if not robots:  # load_world guarantees a robot with a DiffDrive; keep the message clear anyway
        raise ConfigError(f"world {world.name!r}: no model has a DiffDrive plugin")
    lidar_index = 0
    out: list[Topics] = []
    for number, robot in enumerate(robots):
        dd = robot.diff_drive
        assert dd is not None
        cmd_topic, cmd_entry = ros_name(
            dd.topic or f"/model/{robot.name}/cmd_vel", "command", list(CMD_VEL_TYPES.values())
        )
        # The type a client should send: the bridge's, else the controller's (ros2_control on Jazzy+:
        # TwistStamped), else gz's Twist. Accepted: both unless --cmd-vel-type names one.
        if cmd_entry is not None:
            preferred = "twist_stamped" if cmd_entry.ros_type_name.endswith("TwistStamped") else "twist"
        else:
            preferred = dd.cmd_vel_type
        if cmd_vel_type in (None, "any"):
            accepted: tuple[str, ...] = (preferred, *(t for t in CMD_VEL_TYPES if t != preferred))
        else:
            preferred, accepted = cmd_vel_type, (cmd_vel_type,)
            if cmd_entry and CMD_VEL_TYPES[cmd_vel_type] != cmd_entry.ros_type_name:
                notes.append(
                    f"--cmd-vel-type {cmd_vel_type} overrides the bridge's ros_type_name {cmd_entry.ros_type_name} "
                    f"for {cmd_topic}"
                )
        odom_topic, _ = ros_name(
            dd.odom_topic or f"/model/{robot.name}/odometry", "odometry", ["nav_msgs/msg/Odometry"]
        )
        scans = []
        for lidar in robot.lidars:
            topic, _ = ros_name(lidar.topic or "/scan", "lidar", ["sensor_msgs/msg/LaserScan"])
            frame = lidar.frame_id or f"{robot.name}/{lidar.link}/{lidar.name}"
            scans.append(ScanTopic(lidar_index, lidar.name, topic, frame))
            lidar_index += 1
        main = main_scan(scans, robot.lidars)
        first = number == 0
        tf = None
        if dd.publish_tf and dd.tf_topic:
            tf, _ = ros_name(dd.tf_topic, "transform", ["tf2_msgs/msg/TFMessage"])
        child = dd.child_frame_id or f"{robot.name}/base_footprint"
        # gz names a model's frames <model>/<link>; a ROS description's links are its frame names
        prefix = f"{robot.name}/" if child.startswith(f"{robot.name}/") else ""
        out.append(
            Topics(
                cmd_vel=cmd_topic,
                cmd_vel_type=preferred,
                cmd_vel_types=accepted,
                odom=odom_topic,
                scan=main.topic if main else None,
                scans=scans,
                joint_states=protocol.JOINT_STATES if first else f"/world/{world.name}/model/{robot.name}/joint_state",
                clock=protocol.CLOCK,
                ground_truth=f"{namespace.rstrip('/')}/ground_truth"
                if first
                else f"{namespace.rstrip('/')}/{robot.name}/ground_truth",
                frame_id=dd.frame_id or f"{robot.name}/odom",
                child_frame_id=dd.child_frame_id or f"{robot.name}/base_footprint",
                lidar_frame_id=main.frame_id if main else None,
                max_linear_velocity=dd.max_linear_velocity,
                max_angular_velocity=dd.max_angular_velocity,
                robot=robot.name,
                tf=tf,
                tf_static="/tf_static",
                frame_prefix=prefix,
                position_controllers=[(c.name, c.kind, c.topic) for c in robot.position_controllers],
            )
        )
    seen: dict[str, str] = {}
    for t in out:
        for name in [t.cmd_vel, t.odom, *(s.topic for s in t.scans)]:
            if name in seen and seen[name] != t.robot:
                raise ConfigError(
                    f"world {world.name!r}: robots {seen[name]!r} and {t.robot!r} both use topic {name}; expected "
                    "each robot on its own topics (set the DiffDrive <topic>/<odom_topic> or the sensor <topic>)"
                )
            seen[name] = t.robot
    joint_states = protocol.JOINT_STATES
    clock = protocol.CLOCK
    for entry in bridge:  # the other standard bridges: joint states and the clock
        if entry.gz_topic_name in used:
            continue
        if entry.ros_type_name == "sensor_msgs/msg/JointState":
            joint_states = entry.ros_topic_name
        elif entry.ros_type_name == "rosgraph_msgs/msg/Clock":
            clock = entry.ros_topic_name
        else:
            notes.append(
                f"bridge entry {entry.gz_topic_name} -> {entry.ros_topic_name} ({entry.ros_type_name}) is not "
                "served by the embedded simulator"
            )
    for t in out:
        t.clock = clock
    out[0].joint_states = joint_states
    out[0].notes = notes
    out[0].others = out[1:]
    return out[0]


def static_transforms(world: WorldSpec, topics: Topics) -> list[tuple[str, str, Pose]]:
    """(parent frame, child frame, child in parent) of every robot's fixed joints, as
    robot_state_publisher puts them on /tf_static (its moving joints come from /joint_states)."""
    out = []
    by_name = {t.robot: t for t in topics.robots}
    for robot in world.robots:
        t = by_name.get(robot.name)
        if t is None or not t.tf_static:
            continue
        links = {link.name: link for link in robot.links}
        for joint in robot.joints:
            if joint.kind != "fixed" or joint.parent not in links or joint.child not in links:
                continue
            pose = links[joint.parent].pose.inverse() * links[joint.child].pose
            out.append((t.frame_prefix + joint.parent, t.frame_prefix + joint.child, pose))
    return out
