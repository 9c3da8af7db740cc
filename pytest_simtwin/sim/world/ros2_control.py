"""ros2_control robots: the ``gz_ros2_control`` / ``gazebo_ros2_control`` plugin and its controller YAML.

Read as ros2_controllers' ``diff_drive_controller`` reads its parameters (names and defaults from its
``diff_drive_controller_parameter.yaml`` and ``diff_drive_controller.cpp``): the controller node is
named like the controller, in the controller manager's namespace (the plugin's ``<ros><namespace>``),
and subscribes ``~/cmd_vel`` (TwistStamped; ``~/cmd_vel_unstamped`` Twist with Humble's
``use_stamped_vel: false``), publishes ``~/odom`` and the odom -> base transform on ``/tf``. The
plugin's ``<ros><remapping>`` (e.g. ``/diff_drive_controller/cmd_vel:=/cmd_vel``) renames them.
Simulated as the DiffDrive of :mod:`pytest_simtwin.sim.engine.drive`: same kinematics, limits and
odometry; ``cmd_vel_timeout`` is not simulated (a stepping test sends one command per step request).
Position controllers of the same files (arms, grippers) are read by :mod:`.joint_controllers`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.model import INF, DiffDriveSpec, ModelSpec
from pytest_simtwin.sim.world.resources import Resolver
from pytest_simtwin.sim.world.xmltree import Element

DIFF_DRIVE = "diff_drive_controller/DiffDriveController"
#: Controllers that drive a base but are not simulated yet: a clear error instead of a robot that never moves.
UNSUPPORTED_DRIVES = (
    "mecanum_drive_controller/MecanumDriveController",
    "ackermann_steering_controller/AckermannSteeringController",
    "bicycle_steering_controller/BicycleSteeringController",
    "tricycle_steering_controller/TricycleSteeringController",
    "tricycle_controller/TricycleController",
    "omni_wheel_drive_controller/OmniWheelDriveController",
    "swerve_drive_controller/SwerveDriveController",
)
#: Controllers whose topics the simulator serves anyway (JointState on /joint_states) or that change no motion.
KNOWN_OTHERS = (
    "joint_state_broadcaster/JointStateBroadcaster",
    # position-commanded joints: held and commanded by world/joint_controllers.py
    "joint_trajectory_controller/JointTrajectoryController",
    "position_controllers/JointGroupPositionController",
    "forward_command_controller/ForwardCommandController",
    "position_controllers/GripperActionController",
    "parallel_gripper_action_controller/GripperActionController",
)


def parameter_files(plugin: Element, resolver: Resolver, base: Path | None) -> list[tuple[Path, Element]]:
    """The plugin's ``<parameters>`` files: absolute, relative to the robot file, ``package://`` or
    ``$(find pkg)/...`` (left as text when the description was not run through xacro)."""
    out = []
    for el in plugin.findall("parameters"):
        raw = el.text.strip()
        if not raw:
            continue
        if raw.startswith("$(find "):
            package, _, rest = raw[len("$(find ") :].partition(")")
            raw = f"package://{package.strip()}{rest}"
        out.append((resolver.resolve(raw, base, el), el))
    if not out:
        raise ModelError(
            f"{plugin.where}: the ros2_control plugin names no controller file; expected "
            "<parameters>$(find my_robot)/config/controllers.yaml</parameters> with a diff_drive_controller."
        )
    return out


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def load_parameters(files: list[tuple[Path, Element]]) -> dict[str, dict[str, Any]]:
    """node name -> ros__parameters (later files override earlier ones; ``/**`` applies to every node)."""
    import yaml

    nodes: dict[str, dict[str, Any]] = {}
    for path, el in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ModelError(
                f"{el.where}: controller file {path} cannot be read as YAML ({exc}); fix the file."
            ) from None
        if not isinstance(data, Mapping):
            raise ModelError(
                f"{el.where}: controller file {path}: expected a mapping of node names, found {data!r:.80}"
            )
        for node, params in _node_bodies(data):
            name = node.strip("/").split("/")[-1] or "/**"
            _merge(nodes.setdefault(name, {}), params)
    return nodes


def _node_bodies(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Mapping[str, Any]]]:
    """(node path, ros__parameters) pairs; rcl_yaml_param_parser nests namespace keys until
    ``ros__parameters`` (``/**: {controller_manager: {ros__parameters: ...}}`` is ``/**/controller_manager``)."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key, body in data.items():
        if not isinstance(body, Mapping):
            continue
        path = f"{prefix}/{str(key).strip('/')}" if prefix else str(key)
        params = body.get("ros__parameters")
        if isinstance(params, Mapping):
            found.append((path, params))
        found += _node_bodies({k: v for k, v in body.items() if k != "ros__parameters"}, path)
    return found


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"linear": {"x": {"max_velocity": 1}}}`` -> ``{"linear.x.max_velocity": 1}`` (YAML may nest or dot)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def controllers(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """controller name -> type, from controller_manager's list (or the controller's own ``type``)."""
    out: dict[str, str] = {}
    # nested (``diff_cont: {type: ...}``) or dotted (``diff_cont.type: ...``, Clearpath): one ROS parameter
    for key, value in _flat(nodes.get("controller_manager", {})).items():
        if key.endswith(".type") and isinstance(value, str):
            out[key[: -len(".type")]] = value
    for name, params in nodes.items():
        if name != "controller_manager" and isinstance(params.get("type"), str):
            out.setdefault(name, str(params["type"]))
    return out


def _ros_rules(plugin: Element) -> tuple[str, list[tuple[str, str]]]:
    """The plugin's ``<ros>`` namespace and remapping rules (``from:=to``)."""
    ros = plugin.find("ros")
    if ros is None:
        return "", []
    namespace = (ros.child_text("namespace") or "").strip().rstrip("/")
    if namespace and not namespace.startswith("/"):
        namespace = "/" + namespace
    rules = []
    for child in [*ros.findall("remapping"), *ros.findall("argument")]:
        for token in child.text.split():
            src, sep, dst = token.partition(":=")
            if sep and src and dst:
                rules.append((src.strip(), dst.strip()))
    return namespace, rules


def _resolve(topic: str, namespace: str, node: str, rules: list[tuple[str, str]]) -> str:
    """A controller's topic (``~/x`` private, ``/x`` absolute) after the remapping rules, as rcl resolves it."""
    private = f"{namespace}/{node}"
    full = (
        f"{private}/{topic[2:]}"
        if topic.startswith("~/")
        else (topic if topic.startswith("/") else f"{namespace}/{topic}")
    )
    for src, dst in rules:
        src_full = (
            f"{private}/{src[2:]}" if src.startswith("~/") else (src if src.startswith("/") else f"{namespace}/{src}")
        )
        if src_full == full:
            return (
                dst
                if dst.startswith("/")
                else (f"{private}/{dst[2:]}" if dst.startswith("~/") else f"{namespace}/{dst}")
            )
    return full


def ros_rules(plugin: Element) -> tuple[str, list[tuple[str, str]]]:
    """Public name of :func:`_ros_rules` (world/joint_controllers.py resolves its topics the same way)."""
    return _ros_rules(plugin)


def resolve_topic(topic: str, namespace: str, node: str, rules: list[tuple[str, str]]) -> str:
    """Public name of :func:`_resolve`."""
    return _resolve(topic, namespace, node, rules)


def _number(params: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = params.get(key, default)
    if isinstance(value, str) and value.strip().lower() in (".nan", "nan"):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelError(f"{where}: diff_drive_controller parameter {key} = {value!r}; expected a number.")
    return float(value)


def _limit(params: Mapping[str, Any], axis: str, quantity: str, where: str) -> tuple[float, float]:
    """(min, max) of one limit: Jazzy+ NaN = unlimited, min defaulting to -max; Humble's has_*_limits gates them."""
    prefix = f"{axis}.{quantity}"
    flag = params.get(f"{axis}.has_{quantity}_limits")
    if flag is False:
        return -INF, INF
    hi = _number(params, f"{axis}.max_{quantity}", math.nan, where)
    lo = _number(params, f"{axis}.min_{quantity}", math.nan, where)
    if quantity == "acceleration" and math.isnan(lo):  # Jazzy+: max_deceleration (negative)
        lo = _number(params, f"{axis}.max_deceleration", math.nan, where)
    hi = INF if math.isnan(hi) else hi
    lo = (-hi if math.isfinite(hi) else -INF) if math.isnan(lo) else lo
    if lo > hi:
        raise ModelError(f"{where}: diff_drive_controller {prefix}: min {lo} is above max {hi}; expected min <= max.")
    return lo, hi


def drives_nothing(plugin: Element, resolver: Resolver, base: Path | None) -> list[str]:
    """The controllers of a ros2_control plugin whose files hold no drive controller (an arm's plugin next
    to a gazebo_ros_diff_drive base, the TurtleBot3 + OpenMANIPULATOR-X), "name (type)" each; [] otherwise."""
    found = controllers(load_parameters(parameter_files(plugin, resolver, base)))
    if any(t == DIFF_DRIVE or t in UNSUPPORTED_DRIVES for t in found.values()):
        return []
    return [f"{n} ({t})" for n, t in found.items()] or ["no controllers"]


def parse_ros2_control(
    plugin: Element,
    model: ModelSpec,
    resolver: Resolver,
    base: Path | None,
    warn: list[str],
    blocks: list[Element] | None = None,
) -> DiffDriveSpec:
    """A DiffDriveSpec from a ros2_control plugin, its controller YAML and the ``<ros2_control>`` blocks."""
    files = parameter_files(plugin, resolver, base)
    nodes = load_parameters(files)
    found = controllers(nodes)
    listed = ", ".join(str(p) for p, _ in files)
    drives = [n for n, t in found.items() if t == DIFF_DRIVE]
    unsupported = [(n, t) for n, t in found.items() if t in UNSUPPORTED_DRIVES]
    if not drives:
        if unsupported:
            name, kind = unsupported[0]
            raise ModelError(
                f"{plugin.where}: controller {name!r} of type {kind} (in {listed}) is not yet supported by the "
                f"embedded simulator; expected a {DIFF_DRIVE}. Test this robot with the process/docker backend "
                "running Gazebo, or add a Gazebo DiffDrive plugin for tests."
            )
        raise ModelError(
            f"{plugin.where}: no {DIFF_DRIVE} in the controller files {listed} (found: "
            f"{', '.join(f'{n} ({t})' for n, t in found.items()) or 'no controllers'}); expected one to drive "
            f"model {model.name!r}."
        )
    name = drives[0]
    if len(drives) > 1:
        warn.append(f"{plugin.where}: several diff_drive_controllers ({', '.join(drives)}); {name!r} is simulated")
    for other, kind in found.items():
        if other != name and kind not in KNOWN_OTHERS and kind != DIFF_DRIVE:
            warn.append(f"{plugin.where}: controller {other!r} ({kind}) is not simulated")
    params = _flat({**nodes.get("/**", {}), **nodes.get(name, {})})
    where = f"{plugin.where} ({listed}, {name})"
    left = [str(j) for j in params.get("left_wheel_names") or []]
    right = [str(j) for j in params.get("right_wheel_names") or []]
    if not left or not right:
        raise ModelError(f"{where}: left_wheel_names and right_wheel_names must name at least one joint each.")
    separation = _number(params, "wheel_separation", 0.0, where) * _number(
        params, "wheel_separation_multiplier", 1.0, where
    )
    radius = _number(params, "wheel_radius", 0.0, where)
    if not separation > 0 or not radius > 0:
        raise ModelError(f"{where}: wheel_separation and wheel_radius must be positive; found {separation}, {radius}.")
    _check_blocks(blocks or [], left + right, where, warn)
    namespace, rules = _ros_rules(plugin)
    # Humble's use_stamped_vel: false subscribes Twist on ~/cmd_vel_unstamped; Jazzy+ always TwistStamped.
    stamped = params.get("use_stamped_vel", True) is not False
    cmd = _resolve("~/cmd_vel" if stamped else "~/cmd_vel_unstamped", namespace, name, rules)
    odom = _resolve("~/odom", namespace, name, rules)
    prefix = str(params.get("tf_frame_prefix", "") or "")
    if params.get("tf_frame_prefix_enable", True) is False:
        prefix = ""
    elif prefix:
        prefix = prefix.replace("~", namespace.strip("/")).strip("/")
        prefix = f"{prefix}/" if prefix else ""
    else:
        prefix = f"{namespace.strip('/')}/" if namespace.strip("/") else ""
    rate = params.get("publish_rate", nodes.get("controller_manager", {}).get("update_rate", 50.0))
    spec = DiffDriveSpec(
        left_joints=left,
        right_joints=right,
        wheel_separation=separation,
        wheel_radius=radius,
        topic=cmd,
        odom_topic=odom,
        frame_id=prefix + str(params.get("odom_frame_id", "odom")),
        child_frame_id=prefix + str(params.get("base_frame_id", "base_link")),
        odom_publish_frequency=float(rate) if isinstance(rate, (int, float)) and rate > 0 else 50.0,
        origin=where,
        cmd_vel_type="twist_stamped" if stamped else "twist",
        kind=f"diff_drive_controller {name!r}",
        publish_tf=params.get("enable_odom_tf", True) is not False,
        tf_topic="/tf",  # diff_drive_controller's DEFAULT_TRANSFORM_TOPIC
        left_radius_multiplier=_number(params, "left_wheel_radius_multiplier", 1.0, where),
        right_radius_multiplier=_number(params, "right_wheel_radius_multiplier", 1.0, where),
        open_loop=params.get("open_loop", False) is True,
    )
    for axis, quantity_axis in (("linear.x", "linear"), ("angular.z", "angular")):
        for quantity in ("velocity", "acceleration", "jerk"):
            lo, hi = _limit(params, axis, quantity, where)
            setattr(spec, f"min_{quantity_axis}_{quantity}", lo)
            setattr(spec, f"max_{quantity_axis}_{quantity}", hi)
    warn.append(
        f"{where}: cmd_vel_timeout ({params.get('cmd_vel_timeout', 0.5)} s) is not simulated: the last command "
        "holds until the next"
    )
    return spec


def _check_blocks(blocks: list[Element], wheels: list[str], where: str, warn: list[str]) -> None:
    """The ``<ros2_control>`` blocks must give every wheel a velocity command interface."""
    if not blocks:
        return
    velocity = set()
    for block in blocks:
        for joint in block.findall("joint"):
            if any(ci.attrib.get("name") == "velocity" for ci in joint.findall("command_interface")):
                velocity.add(joint.attrib.get("name", ""))
    missing = [w for w in wheels if w not in velocity]
    if missing:
        raise ModelError(
            f'{where}: wheel joint(s) {", ".join(missing)} have no <command_interface name="velocity"> in the '
            f"<ros2_control> block ({blocks[0].where}); diff_drive_controller commands wheel velocities."
        )
