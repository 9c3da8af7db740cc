"""Which ROS names the simulator serves: DiffDrive/lidar parameters, renamed like ros_gz_bridge would.

The same world file then works with Gazebo + ros_gz_bridge and with ``simtwin-sim --bridge FILE``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin.control import protocol
from pytest_simtwin.errors import ConfigError

if TYPE_CHECKING:
    from pytest_simtwin.sim.world.model import WorldSpec

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
@dataclass
class Topics:
    """The ROS names and frames the simulator serves (reported by get_simulator_features)."""

    cmd_vel: str
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "cmd_vel": self.cmd_vel,
            "cmd_vel_type": self.cmd_vel_type,
            "odom": self.odom,
            "scan": self.scan,
            "joint_states": self.joint_states,
            "clock": self.clock,
            "ground_truth": self.ground_truth,
            "frame_id": self.frame_id,
            "child_frame_id": self.child_frame_id,
            "max_linear_velocity": self.max_linear_velocity,
            "max_angular_velocity": self.max_angular_velocity,
        }


def resolve_topics(
    world: WorldSpec,
    *,
    cmd_vel_type: str | None = None,
    bridge: Sequence[BridgeEntry] = (),
    namespace: str = protocol.NAMESPACE,
    served: Collection[str] = (),
) -> Topics:
    """ROS topic names from the DiffDrive/lidar parameters, renamed through a bridge file like ros_gz_bridge.

    ``served``: gz topics published elsewhere (the sensor publishers), so their bridge entries are not
    reported as unserved."""
    robot = world.robot
    dd = robot.diff_drive
    if dd is None:  # load_world guarantees a robot with a DiffDrive; keep the message clear anyway
        raise ConfigError(f"world {world.name!r}: the robot {robot.name!r} has no DiffDrive plugin")
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

    cmd_topic, cmd_entry = ros_name(dd.topic or f"/model/{robot.name}/cmd_vel", "command", list(CMD_VEL_TYPES.values()))
    if cmd_vel_type is None:
        # The bridge says which type the ROS side uses; the gz-style default is plain Twist.
        cmd_vel_type = "twist_stamped" if cmd_entry and cmd_entry.ros_type_name.endswith("TwistStamped") else "twist"
    elif cmd_entry and CMD_VEL_TYPES[cmd_vel_type] != cmd_entry.ros_type_name:
        notes.append(
            f"--cmd-vel-type {cmd_vel_type} overrides the bridge's ros_type_name {cmd_entry.ros_type_name} "
            f"for {cmd_topic}"
        )
    odom_topic, _ = ros_name(dd.odom_topic or f"/model/{robot.name}/odometry", "odometry", ["nav_msgs/msg/Odometry"])
    scan_topic = None
    lidar_frame = None
    if robot.lidars:
        lidar = robot.lidars[0]
        scan_topic, _ = ros_name(lidar.topic or "/scan", "lidar", ["sensor_msgs/msg/LaserScan"])
        lidar_frame = lidar.frame_id or f"{robot.name}/{lidar.link}/{lidar.name}"
        if len(robot.lidars) > 1:
            notes.append(f"only the first lidar ({lidar.name}) is simulated; {len(robot.lidars) - 1} more ignored")
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
    return Topics(
        cmd_vel=cmd_topic,
        cmd_vel_type=cmd_vel_type,
        odom=odom_topic,
        scan=scan_topic,
        joint_states=joint_states,
        clock=clock,
        ground_truth=f"{namespace.rstrip('/')}/ground_truth",
        frame_id=dd.frame_id or f"{robot.name}/odom",
        child_frame_id=dd.child_frame_id or f"{robot.name}/base_footprint",
        lidar_frame_id=lidar_frame,
        max_linear_velocity=dd.max_linear_velocity,
        max_angular_velocity=dd.max_angular_velocity,
        notes=notes,
    )
