"""Position-commanded joints of a ros2_control robot: JointTrajectoryController, JointGroupPositionController.

As gz_ros2_control drives a ``position`` command interface (``gz_system.cpp`` ``write()``): every update
the joint gets the velocity command ``position_proportional_gain * update_rate * (command - position)``
(gain 0.1 unless the plugin sets ``<position_proportional_gain>``, ``update_rate`` the controller manager's).
Before any command a joint holds its state interface's ``initial_value`` (else 0): the command interface
starts there. Controllers that only hold (a GripperActionController, whose action is not simulated) keep
their joints at that position. Topics resolve like the diff drive's (:mod:`.ros2_control`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_simtwin.sim.world import ros2_control as rc
from pytest_simtwin.sim.world.model import INF, ModelSpec, PositionControllerSpec, ServoSpec
from pytest_simtwin.sim.world.resources import Resolver
from pytest_simtwin.sim.world.xmltree import Element

TRAJECTORY = "joint_trajectory_controller/JointTrajectoryController"
GROUP_POSITION = (
    "position_controllers/JointGroupPositionController",
    "forward_command_controller/ForwardCommandController",
)
#: controllers holding position joints through an action the simulator does not serve: held only.
HOLD_ONLY = (
    "position_controllers/GripperActionController",
    "parallel_gripper_action_controller/GripperActionController",
)
KINDS = (TRAJECTORY, *GROUP_POSITION, *HOLD_ONLY)


def _joints_of(params: Mapping[str, Any]) -> list[str]:
    joints = params.get("joints")
    if isinstance(joints, list):
        return [str(j) for j in joints]
    joint = params.get("joint")  # GripperActionController: one joint
    return [str(joint)] if isinstance(joint, str) and joint else []


def _position_commanded(kind: str, params: Mapping[str, Any]) -> bool:
    if kind == TRAJECTORY:
        interfaces = params.get("command_interfaces") or ["position"]
        return "position" in [str(i) for i in interfaces]
    if kind == GROUP_POSITION[1]:  # forward_command_controller: interface_name picks the interface
        return str(params.get("interface_name", "")) == "position"
    return True


def _block_joints(blocks: list[Element]) -> dict[str, tuple[float, tuple[float, float], str]]:
    """joint -> (initial position, command min/max, mimic leader) for joints with a position command interface."""
    out = {}
    for block in blocks:
        for joint in block.findall("joint"):
            commands = [ci for ci in joint.findall("command_interface") if ci.attrib.get("name") == "position"]
            if not commands:
                continue
            params = {p.attrib.get("name"): p.text.strip() for p in commands[0].findall("param")}
            initial = 0.0
            for si in joint.findall("state_interface"):
                if si.attrib.get("name") == "position":
                    for p in si.findall("param"):
                        if p.attrib.get("name") == "initial_value":
                            initial = _float(p.text, 0.0)
            lo, hi = _float(params.get("min"), -INF), _float(params.get("max"), INF)
            extra = {p.attrib.get("name"): p.text.strip() for p in joint.findall("param")}
            leader = extra.get("mimic", "") or ""
            out[joint.attrib.get("name", "")] = (initial, (lo, hi), f"{leader} {_float(extra.get('multiplier'), 1.0)}")
    return out


def _float(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if not math.isnan(value) else default


def parse_position_controllers(
    plugin: Element,
    model: ModelSpec,
    nodes: Mapping[str, Mapping[str, Any]],
    found: Mapping[str, str],
    blocks: list[Element],
    resolve: Any,
    warn: list[str],
) -> None:
    """Fill ``model.servos`` / ``model.position_controllers`` from the controllers ``found`` (name -> type)."""
    rate = nodes.get("controller_manager", {}).get("update_rate", 100)
    rate = float(rate) if isinstance(rate, (int, float)) and rate > 0 else 100.0
    gain = _float(plugin.child_text("position_proportional_gain"), 0.1)
    model.servo_gain = gain * rate
    interfaces = _block_joints(blocks)
    joints = {j.name: j for j in model.joints}
    held = {s.joint for s in model.servos}
    for name, kind in found.items():
        if kind not in KINDS:
            continue
        params = {**nodes.get("/**", {}), **nodes.get(name, {})}
        claimed = _joints_of(params)
        if not _position_commanded(kind, params) or not claimed:
            warn.append(f"{plugin.where}: controller {name!r} ({kind}) has no position joints; not simulated")
            continue
        for joint in claimed:
            spec = joints.get(joint)
            if spec is None or spec.kind == "fixed" or joint in held:
                warn.append(
                    f"{plugin.where}: controller {name!r} claims joint {joint!r}, not a free joint of {model.name!r}"
                )
                continue
            initial, (lo, hi), _mimic = interfaces.get(joint, (0.0, (-INF, INF), ""))
            if spec.limits is not None:
                lo, hi = max(lo, spec.limits[0]), min(hi, spec.limits[1])
            model.servos.append(ServoSpec(joint, min(max(initial, lo), hi), name, (lo, hi)))
            held.add(joint)
        _mimics(model, interfaces, joints, held, name)
        if kind in HOLD_ONLY:
            warn.append(f"{plugin.where}: controller {name!r} ({kind}) holds its joints; its action is not simulated")
            continue
        trajectory = kind == TRAJECTORY
        topic = resolve("~/joint_trajectory" if trajectory else "~/commands", name)
        model.position_controllers.append(
            PositionControllerSpec(
                name,
                "trajectory" if trajectory else "group",
                [j for j in claimed if j in held],
                topic,
                origin=str(plugin.where),
                allow_partial=params.get("allow_partial_joints_goal", False) is True,
            )
        )
        if trajectory:
            warn.append(
                f"{plugin.where}: controller {name!r}: {topic} is simulated (linear interpolation between points); "
                "its FollowJointTrajectory action and controller_state are not"
            )


def _mimics(
    model: ModelSpec,
    interfaces: Mapping[str, tuple[float, tuple[float, float], str]],
    joints: Mapping[str, Any],
    held: set[str],
    controller: str,
) -> None:
    """ros2_control ``<param name="mimic">`` joints of held leaders follow them (gz_ros2_control's mimic joints)."""
    for joint, (initial, (lo, hi), mimic) in interfaces.items():
        leader, _, multiplier = mimic.partition(" ")
        spec = joints.get(joint)
        if not leader or leader not in held or joint in held or spec is None or spec.kind == "fixed":
            continue
        if spec.limits is not None:
            lo, hi = max(lo, spec.limits[0]), min(hi, spec.limits[1])
        model.servos.append(
            ServoSpec(joint, min(max(initial, lo), hi), controller, (lo, hi), (leader, float(multiplier)))
        )
        held.add(joint)


def parse_from_plugin(
    plugin: Element, model: ModelSpec, resolver: Resolver, base: Path | None, blocks: list[Element], warn: list[str]
) -> None:
    """Read the plugin's controller files and add its position controllers to ``model``."""
    nodes = rc.load_parameters(rc.parameter_files(plugin, resolver, base))
    namespace, rules = rc.ros_rules(plugin)
    parse_position_controllers(
        plugin, model, nodes, rc.controllers(nodes), blocks,
        lambda topic, node: rc.resolve_topic(topic, namespace, node, rules), warn,
    )  # fmt: skip
