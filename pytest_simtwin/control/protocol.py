"""The simulator control protocol: ROS 2 service names, payloads and default topics.

The names and semantics mirror the ROS 2 ``simulation_interfaces`` standard (StepSimulation,
ResetSimulation, SpawnEntity, ...). Its message package is not installable from PyPI, so every
service uses one standard type, ``diagnostic_msgs/srv/AddDiagnostics``: the request's
``load_namespace`` string carries a JSON object and the response carries ``success`` and a JSON
``message``. Any ROS 2 tool can call them, e.g.::

    ros2 service call /simtwin/step_simulation diagnostic_msgs/srv/AddDiagnostics \
        "{load_namespace: '{\"steps\": 100}'}"

Payloads (all optional keys have defaults):

=========================  ===================================================  ============================
service                    request JSON                                         response JSON (on success)
=========================  ===================================================  ============================
get_simulator_features     {}                                                   {"name", "version", "features": [..], "topics": TOPICS}
get_simulation_state       {}                                                   STATE (below)
set_simulation_state       {"state": "playing"|"paused"|"quitting"}             STATE
                           playing may add "pause_at": sim seconds (pauses itself exactly there)
step_simulation            {"steps": int} or {"duration": sec}                  STATE (only while paused)
                           may add "until_rest": {"name", "linear"?: m/s,       STATE + "at_rest": bool
                           "angular"?: rad/s, "chunk"?: s}: stops once the
                           entity is slower than both, and for the robot its
                           last odometry message too (checked before each
                           chunk: at rest already, nothing is stepped)
                           may add "listened": [topic, ..]: first waits (<= 3 s
                           wall) until the simulator's publisher of each has
                           matched a subscriber (a client that just subscribed
                           to a lazy sensor gets this step's messages)
reset_simulation           {"scope": "all"|"time"|"state"|"spawned",            STATE
                            "seed"?: int (scope all: re-seed the sensor noise)}
get_entities               {}                                                   {"entities": [name, ..]}
get_entity_state           {"name": str}                                        {"name", "pose": POSE, "twist": TWIST}
set_entity_state           {"name": str, "pose": POSE, "twist"?: TWIST}          {"name", "pose", "twist"}
spawn_entity               {"name", "shape": "box"|"cylinder"|"sphere",          {"name"}
                            "size": [..], "pose": POSE, "static": bool,
                            "mass"?: kg, "allow_renaming"?: bool}
delete_entity              {"name": str}                                        {"name"}
inject_fault               FAULT (below, without "id")                          FAULT with its "id"
clear_fault                {"id"?: int} (none: every fault)                     {"cleared": [id, ..], "t": sim s}
get_faults                 {}                                                   {"faults": [FAULT, ..]}
=========================  ===================================================  ============================

STATE = {"state": "playing"|"paused", "sim_time": s, "steps": int, "step_size": s, "rtf_target": x,
"rtf_measured": x, "cmd_count": int, "joint_command_count": int (position-controller commands received),
"world": str, "robot": str, "seed": int, "lockstep": bool,
"odom_stamp": s, "scan_stamp": s (stamps of the last odometry/scan messages: after a step, wait for these),
"dropped": {topic: int} (messages the DDS writer refused because a subscriber fell behind),
"sensor_stamps": {topic: s} (the last IMU/camera/contact/... message of each sensor topic),
"contacts": [entity names touching the robot now, the ground excluded]}
POSE  = {"x", "y", "z", "roll", "pitch", "yaw"} (metres, radians; omitted keys keep their value)
TWIST = {"vx", "vy", "vz", "wx", "wy", "wz"} in the world frame.
TOPICS = {"cmd_vel", "cmd_vel_type" ("twist"|"twist_stamped"), "odom", "scan" (or null), "joint_states", "clock",
"ground_truth", "frame_id", "child_frame_id", "max_linear_velocity", "max_angular_velocity"}: what the robot uses.
FAULT = {"kind": one of FAULT_KINDS, "target": topic (sensor kinds) or wheel joint (wheel kinds) or "",
"params": {..}, "at"?: sim s (default now), "duration"?: sim s (default until cleared)}; every change is
published as JSON (std_msgs/String) on /simtwin/faults.
A size is [x, y, z] for a box (full lengths), [radius, length] for a cylinder, [radius] for a sphere.

On failure ``success`` is false and ``message`` is {"error": "..."}.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

NAMESPACE = "/simtwin"

SERVICES = (
    "get_simulator_features",
    "get_simulation_state",
    "set_simulation_state",
    "step_simulation",
    "reset_simulation",
    "get_entities",
    "get_entity_state",
    "set_entity_state",
    "spawn_entity",
    "delete_entity",
    "inject_fault",
    "clear_fault",
    "get_faults",
)

#: Default topic names (the DiffDrive / lidar plugin parameters of the robot override them).
CMD_VEL = "/cmd_vel"
ODOM = "/odom"
SCAN = "/scan"
JOINT_STATES = "/joint_states"
CLOCK = "/clock"
#: nav_msgs/Odometry with the true base pose and twist in the world frame ("world" -> child frame).
GROUND_TRUTH = "/simtwin/ground_truth"

STATES = ("playing", "paused", "quitting")
RESET_SCOPES = ("all", "time", "state", "spawned")
SHAPES = ("box", "cylinder", "sphere")


# -- payloads, typed: the simulator builds them, the client returns them ----------------------------
class Pose(TypedDict, total=False):
    """Metres and radians; keys left out of a request keep their value."""

    x: float
    y: float
    z: float
    roll: float
    pitch: float
    yaw: float


class Twist(TypedDict, total=False):
    """Linear (m/s) and angular (rad/s) velocity in the world frame."""

    vx: float
    vy: float
    vz: float
    wx: float
    wy: float
    wz: float


class Topics(TypedDict, total=False):
    """The ROS names the robot uses (``get_simulator_features`` reply's ``topics``)."""

    cmd_vel: str
    cmd_vel_type: Literal["twist", "twist_stamped"]
    odom: str
    scan: str | None
    joint_states: str
    clock: str
    ground_truth: str
    frame_id: str
    child_frame_id: str
    max_linear_velocity: float
    max_angular_velocity: float


class Features(TypedDict, total=False):
    """``get_simulator_features`` reply."""

    name: str
    version: str
    features: list[str]
    topics: Topics
    sensors: list[dict[str, Any]]  # the simulated IMU, cameras, navsat: name, kind, topics, frame, rate


class SimState(TypedDict, total=False):
    """STATE: what ``get/set_simulation_state``, ``step_simulation`` and ``reset_simulation`` reply."""

    state: Literal["playing", "paused", "quitting"]
    sim_time: float
    steps: int
    step_size: float
    rtf_target: float
    rtf_measured: float
    cmd_count: int
    joint_command_count: int  # JointTrajectory / Float64MultiArray commands received (position controllers)
    world: str
    robot: str  # the first (or only) robot
    robots: list[str]
    odom_stamps: dict[str, float | None]  # per robot
    scan_stamps: dict[str, float]  # per lidar topic
    seed: int
    lockstep: bool
    odom_stamp: float | None
    scan_stamp: float | None
    sensor_stamps: dict[str, float]  # per sensor topic (IMU, camera, contact, ...): the last message's stamp
    dropped: dict[str, int]
    camera_frames: dict[str, Any]  # camera name -> frames rendered (sim/sensor_node.py)
    contacts: list[str]  # entities touching the robot now, the ground excluded
    at_rest: bool  # step_simulation with until_rest


class UntilRest(TypedDict, total=False):
    """``step_simulation``'s ``until_rest``: stop once the entity is slower than both limits."""

    name: str
    linear: float
    angular: float
    chunk: float


class EntityState(TypedDict, total=False):
    """``get_entity_state`` / ``set_entity_state`` reply."""

    name: str
    pose: Pose
    twist: Twist


#: What ``inject_fault`` accepts (sim/faults.py applies them; helpers/faults.py builds them).
FAULT_KINDS = (
    "blackout", "latency", "rate", "stuck", "noise", "bias", "drift", "lidar_sector",
    "cmd_drop", "cmd_delay", "cmd_freeze",
    "wheel_friction", "motor_torque", "wheel_stopped", "payload", "push", "friction_patch",
)  # fmt: skip
#: Topic (std_msgs/String, JSON) on which the simulator announces every fault change.
FAULTS_TOPIC = "/simtwin/faults"


class FaultSpec(TypedDict, total=False):
    """FAULT: one fault, as injected and as reported."""

    id: int
    kind: str
    target: str
    params: dict[str, Any]
    at: float | None
    duration: float | None


def service_name(name: str, namespace: str = NAMESPACE) -> str:
    if name not in SERVICES:
        raise ValueError(f"unknown simtwin service {name!r}; expected one of {', '.join(SERVICES)}")
    return f"{namespace.rstrip('/')}/{name}"


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True)


def decode(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value
