"""SDF (1.4-1.11) worlds and models -> :mod:`model` specs; also the ``load_world`` entry point.

Supported: ``<physics>`` step size and real-time factor, ``<gravity>``, static and dynamic models with
links, collisions (box, cylinder, sphere, capsule, ellipsoid, plane, mesh: STL/OBJ/DAE/glTF), inertials
(rotated poses included), joints (revolute, continuous, prismatic, fixed, ball, universal/revolute2),
poses with ``relative_to`` (links, joints, frames, models), nested models (flattened as ``a::b``;
``<include merge="true">`` without a prefix), ``<include>`` of ``model://`` and Gazebo Fuel URIs (see
:mod:`fuel`), the DiffDrive plugin and lidar sensors; ``.sdf.xacro`` files expand with their defaults. Anything else that changes
the simulation is reported once in ``WorldSpec.warnings``; visuals are ignored silently.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world import fuel
from pytest_simtwin.sim.world.checks import check_no_user_robot, check_version, check_world, lift_robot
from pytest_simtwin.sim.world.context import Context
from pytest_simtwin.sim.world.geometry import parse_geometry, parse_inertial
from pytest_simtwin.sim.world.model import JointSpec, LidarSpec, LinkSpec, ModelSpec, Pose, WorldSpec
from pytest_simtwin.sim.world.plugins import (
    ROS2_CONTROL_HINT,
    check_diff_drive_joints,
    other_drive,
    other_drive_error,
    parse_diff_drive,
    parse_lidar,
    plugin_kind,
)
from pytest_simtwin.sim.world.resources import DEFAULT_ROBOT, DEFAULT_WORLD
from pytest_simtwin.sim.world.ros2_control import parse_ros2_control
from pytest_simtwin.sim.world.sensors import add_sensor, visual_rgba
from pytest_simtwin.sim.world.sensors import nested as nested_sensor
from pytest_simtwin.sim.world.urdf import load_urdf
from pytest_simtwin.sim.world.values import boolean, floats, number, sdf_pose, surface_friction, text
from pytest_simtwin.sim.world.xmltree import Element, parse_file

#: Link children that do not change what we simulate.
_IGNORED_LINK = {"visual", "pose", "inertial", "collision", "sensor", "gravity", "self_collide", "kinematic",
                 "must_be_base_link", "velocity_decay", "enable_wind", "light", "audio_source", "projector"}  # fmt: skip
_IGNORED_MODEL = {"pose", "static", "link", "joint", "plugin", "frame", "model", "include", "self_collide",
                  "allow_auto_disable", "enable_wind"}  # fmt: skip
_IGNORED_WORLD = {"physics", "gravity", "model", "include", "plugin", "scene", "gui", "magnetic_field",
                  "atmosphere", "spherical_coordinates", "wind", "audio", "frame"}  # fmt: skip


def load_world(
    path: Path | None = None, robot: Path | None = None, robot_pose: Pose | None = None, robot_name: str | None = None
) -> WorldSpec:
    """Load a world (None: the built-in arena) and its robot (see docs/design.md). ``robot_name`` names the
    added robot model as ``ros_gz_sim create -name`` does (its scoped frame ids and default gz topics follow)."""
    world_path = Path(path) if path is not None else DEFAULT_WORLD
    root = parse_file(world_path)
    if root.tag == "robot":
        raise ModelError(
            f"{root.where}: expected an SDF world, found a URDF robot; pass robot descriptions with --robot "
            "(the world then defaults to the built-in arena)."
        )
    world_el = root.find("world") if root.tag == "sdf" else None
    if world_el is None:
        found = root.children[0].tag if root.tag == "sdf" and root.children else root.tag
        hint = " (a model file: pass it as the robot)" if found == "model" else ""
        raise ModelError(f"{root.where}: expected <sdf> with a <world>; found <{found}>{hint}.")
    ctx = Context(world=world_el.attrib.get("name", "default"))
    check_version(root, ctx.warnings)
    ctx.resolver.extra = [world_path.resolve().parent, world_path.resolve().parent / "models"]
    if robot is not None:
        ctx.resolver.extra += [Path(robot).resolve().parent, Path(robot).resolve().parent.parent]
    world = WorldSpec(name=ctx.world, source=world_path if path is not None else None, warnings=ctx.warnings)
    _world_settings(world_el, world, ctx)
    _world_models(world_el, world, world_path.parent, ctx)

    robots = [m for m in world.models if m.diff_drive is not None]
    if robot is not None:
        if robots:
            raise ModelError(
                f"{world_path}: the world already contains robot {robots[0].name!r} ({robots[0].diff_drive.origin}"  # type: ignore[union-attr]
                f"), and a robot file {robot} was given; expected one robot. Drop the robot option or remove the "
                "DiffDrive model from the world."
            )
        robots = [load_robot(Path(robot), ctx, robot_pose, robot_name)]
    elif not robots:
        if ctx.ros2_control:  # the user's robot is in the world: the built-in one would be a silent stand-in
            name, where = next(iter(ctx.ros2_control.items()))
            raise ModelError(f"{where}: model {name!r} {ROS2_CONTROL_HINT}")
        if ctx.other_drives:  # a world robot with an Ackermann / mecanum / ... drive: say so, not "no robot"
            raise ModelError(next(iter(ctx.other_drives.values())))
        check_no_user_robot(world, path)
        robots = [load_robot(DEFAULT_ROBOT, ctx, robot_pose)]
    elif robot_pose is not None:
        robots[0].pose = robot_pose
    if robots[0] not in world.models:
        _add_model(world, robots[0], None)
    check_world(world)
    lift_robot(world)
    return world


def load_robot(path: Path, ctx: Context, pose: Pose | None, name: str | None = None) -> ModelSpec:
    """A robot file: SDF model or URDF (either may be a ``.xacro``); must carry exactly one DiffDrive plugin.
    ``name`` replaces the file's model name (a spawn name)."""
    if path.name.lower().endswith(".urdf"):
        model: ModelSpec = load_urdf(path, ctx, name=name)
    else:
        root = parse_file(path)
        if root.tag == "robot":
            model = load_urdf(path, ctx, root, name)
        else:
            model_el = root.find("model") if root.tag == "sdf" else None
            check_version(root, ctx.warnings)
            if model_el is None:
                found = root.children[0].tag if root.children else root.tag
                raise ModelError(f"{root.where}: expected an SDF <model> (or a URDF <robot>); found <{found}>.")
            model = parse_model(model_el, ctx, path.parent, name=name)
    if model.diff_drive is None and model.name in ctx.ros2_control:
        raise ModelError(f"{ctx.ros2_control[model.name]}: robot model {model.name!r} {ROS2_CONTROL_HINT}")
    if model.diff_drive is None and model.name in ctx.other_drives:
        raise ModelError(ctx.other_drives[model.name])
    if model.diff_drive is None:
        raise ModelError(
            f"{path}: robot model {model.name!r} has no DiffDrive plugin; expected <plugin "
            'filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive"> with left_joint, right_joint, '
            "wheel_separation and wheel_radius (inside <gazebo> for URDF)."
        )
    if pose is not None:
        model.pose = pose
    return model


def _world_settings(world_el: Element, world: WorldSpec, ctx: Context) -> None:
    physics = [p for p in world_el.findall("physics")]
    chosen = next((p for p in physics if p.attrib.get("default", "false") in ("true", "1")), None)
    chosen = chosen or (physics[0] if physics else None)
    if chosen is not None:
        world.step_size = number(chosen, "max_step_size", 0.001)
        world.real_time_factor = number(chosen, "real_time_factor", 1.0)
        if world.step_size <= 0 or world.step_size > 0.05:
            raise ModelError(
                f"{chosen.where}: max_step_size {world.step_size} s is outside (0, 0.05]; expected e.g. 0.001-0.004."
            )
        legacy_gravity = chosen.find("gravity")  # SDF < 1.5 kept gravity inside <physics>
        if legacy_gravity is not None:
            world.gravity = tuple(floats(legacy_gravity, count=3))  # type: ignore[assignment]
    spherical = world_el.find("spherical_coordinates")
    if spherical is not None:  # sdformat world.sdf defaults: 0 deg, 0 deg, 0 m, heading 0 deg
        world.spherical = tuple(number(spherical, k, 0.0) for k in  # type: ignore[assignment]
                                ("latitude_deg", "longitude_deg", "elevation", "heading_deg"))  # fmt: skip
    magnetic = world_el.find("magnetic_field")
    if magnetic is not None:
        world.magnetic_field = tuple(floats(magnetic, count=3))  # type: ignore[assignment]
    gravity = world_el.find("gravity")
    if gravity is not None:
        world.gravity = tuple(floats(gravity, count=3))  # type: ignore[assignment]
    for child in world_el.children:
        if child.tag.startswith("xacro:"):  # nav2's depot.sdf: its launch file runs it through xacro first
            ctx.warn(f"{child.where}: <{child.tag}> is xacro, not SDF: expand the world with xacro first (ignored)")
        elif child.tag not in _IGNORED_WORLD and child.tag != "light":
            ctx.warn(f"{child.where}: world element <{child.tag}> is not simulated")
    if world_el.find("light") is not None:
        ctx.warn(f"{world_el.where}: lights are ignored (no rendering)")
    for plugin in world_el.findall("plugin"):
        if plugin_kind(plugin) not in ("infrastructure",):
            ctx.warn(f"{plugin.where}: world plugin {plugin.attrib.get('filename', '')!r} is not simulated")


def _world_models(world_el: Element, world: WorldSpec, base: Path, ctx: Context) -> None:
    relative: dict[str, tuple[Pose, str | None, Element]] = {}
    for child in world_el.children:
        if child.tag == "model":
            model = parse_model(child, ctx, base)
            _, rel = sdf_pose(child.find("pose"))
        elif child.tag == "include":
            included = _include(child, ctx, base)
            if included is None:  # a light (Fuel "Sun"): nothing to simulate
                continue
            model, rel = included
        else:
            continue
        _add_model(world, model, child)
        relative[model.name] = (model.pose, rel, child)
    for frame in world_el.findall("frame"):
        pose, rel = sdf_pose(frame.find("pose"))
        relative[frame.attrib.get("name", "")] = (pose, rel or frame.attrib.get("attached_to"), frame)
    resolved = _resolve_frames(relative, "world")
    for model in world.models:
        if model.name in resolved:
            model.pose = resolved[model.name]


def _add_model(world: WorldSpec, model: ModelSpec, element: Element | None) -> None:
    if any(m.name == model.name for m in world.models):
        where = element.where if element is not None else str(model.source)
        raise ModelError(f"{where}: a second model named {model.name!r}; expected unique model names (use <name>).")
    world.models.append(model)


def _include(element: Element, ctx: Context, base: Path) -> tuple[ModelSpec, str | None] | None:
    """An included model and its pose's relative_to; None for an include that simulates nothing (a light)."""
    uri = text(element, "uri")
    if not uri:
        raise ModelError(f"{element.where}: <include> needs a <uri> (e.g. model://NAME).")
    classic = uri.strip()[len("model://") :].strip("/") if uri.strip().startswith("model://") else ""
    if fuel.is_fuel(uri) or (classic in fuel.CLASSIC_BUILTIN and ctx.resolver.find_model(uri) is None):
        found = fuel.resolve(uri, element) if fuel.is_fuel(uri) else fuel.CLASSIC_BUILTIN[classic]
        if found is None:
            return None
        folder = found
    else:
        folder = ctx.resolver.resolve(uri, base, element)
    path = ctx.resolver.model_file(folder, element)
    root = parse_file(path)
    model_el = root.find("model") if root.tag == "sdf" else None
    if model_el is None:
        if root.tag == "robot":
            model = load_urdf(path, ctx, root)
        else:
            raise ModelError(f"{element.where}: included {path} has no <model>; expected an SDF model file.")
    else:
        model = parse_model(model_el, ctx, path.parent, name=text(element, "name") or None)
    if text(element, "name"):
        model.name = text(element, "name")
    pose_el = element.find("pose")
    rel = None
    if pose_el is not None:
        model.pose, rel = sdf_pose(pose_el)
    if element.find("static") is not None:
        model.static = boolean(element, "static", model.static)
    for plugin in element.findall("plugin"):  # SDF 1.9: plugins added through the include
        _model_plugin(plugin, model, ctx)
    for params in element.findall("experimental:params"):  # sdformat parameter passing
        for edit in params.children:
            if edit.tag != "visual":  # visuals are not simulated: editing them changes nothing here
                ctx.warn(f"{edit.where}: <experimental:params> edit of <{edit.tag}> is not applied")
    if element.find("placement_frame") is not None:
        ctx.warn(f"{element.where}: <placement_frame> is not supported; the model frame is placed at <pose>")
    if model.diff_drive is not None:
        check_diff_drive_joints(model.diff_drive, model)
    return model, rel


def _resolve_frames(frames: dict[str, tuple[Pose, str | None, Element]], root: str) -> dict[str, Pose]:
    """Poses of named frames in ``root`` (``relative_to`` chains; missing = root); cycles are errors."""
    out: dict[str, Pose] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Pose:
        if name in ("", root, "__model__", "world"):
            return Pose()
        if name in out:
            return out[name]
        if name not in frames:
            where = frames[chain[-1]][2].where if chain else "?"
            raise ModelError(
                f"{where}: relative_to={name!r} names no frame here; expected one of: {', '.join(sorted(frames))}."
            )
        if name in chain:
            raise ModelError(f"{frames[name][2].where}: relative_to cycle {' -> '.join((*chain, name))}.")
        pose, rel, _ = frames[name]
        result = resolve(rel, (*chain, name)) * pose if rel else pose
        out[name] = result
        return result

    for name in frames:
        resolve(name, ())
    return out


def parse_model(element: Element, ctx: Context, base: Path, name: str | None = None) -> ModelSpec:
    """An SDF ``<model>`` element (nested models flattened into ``outer::inner`` names)."""
    model = ModelSpec(
        name=name or element.attrib.get("name", ""),
        static=boolean(element, "static", False),
        canonical_link=element.attrib.get("canonical_link", ""),
        source=element.file,
    )
    if not model.name:
        raise ModelError(f"{element.where}: <model> needs a name attribute.")
    model.pose, _ = sdf_pose(element.find("pose"))
    frames: dict[str, tuple[Pose, str | None, Element]] = {}
    joint_elements: list[Element] = []
    for child in element.children:
        if child.tag == "link":
            link = _link(child, model, ctx, base)
            model.links.append(link)
            pose, rel = sdf_pose(child.find("pose"))
            frames[link.name] = (pose, rel, child)
        elif child.tag == "joint":
            joint_elements.append(child)
        elif child.tag == "frame":
            pose, rel = sdf_pose(child.find("pose"))
            frames[child.attrib.get("name", "")] = (pose, rel or child.attrib.get("attached_to"), child)
        elif child.tag in ("model", "include"):
            included = (parse_model(child, ctx, base), None) if child.tag == "model" else _include(child, ctx, base)
            if included is None:
                continue
            nested = included[0]
            first = len(model.links)
            # sdformat: <include merge="true"> adds the links, joints and plugins without a name prefix
            _flatten(model, nested, merge=child.tag == "include" and child.attrib.get("merge") in ("true", "1"))
            frames[nested.name] = (nested.pose, None, child)
            for link in model.links[first:]:  # flattened poses are already in this model's frame
                frames[link.name] = (link.pose, None, child)
        elif child.tag not in _IGNORED_MODEL:
            ctx.warn(f"{child.where}: model element <{child.tag}> of {model.name!r} is not simulated")
    if not model.canonical_link and model.links:
        model.canonical_link = model.links[0].name
    for joint_el in joint_elements:
        child_name = text(joint_el, "child")
        pose, rel = sdf_pose(joint_el.find("pose"))
        frames[joint_el.attrib.get("name", "")] = (pose, rel or child_name or None, joint_el)
    resolved = _resolve_frames(frames, "__model__")
    for link in model.links:
        if link.name in resolved:
            link.pose = resolved[link.name]
    for joint_el in joint_elements:
        model.joints.append(_joint(joint_el, model, resolved, ctx))
    for plugin in element.findall("plugin"):
        _model_plugin(plugin, model, ctx)
    for link in model.links:
        model.lidars.extend(link.sensors)
        model.devices.extend(link.devices)
    if model.diff_drive is not None:
        check_diff_drive_joints(model.diff_drive, model)
    return model


def _flatten(outer: ModelSpec, nested: ModelSpec, merge: bool = False) -> None:
    prefix = "" if merge else f"{nested.name}::"
    for link in nested.links:
        sensors = [_nested_lidar(s, outer.name, nested.name, prefix) for s in link.sensors]
        devices = [nested_sensor(d, outer.name) for d in link.devices]
        collisions = [replace(g, link=prefix + g.link) if g.link else g for g in link.collisions]
        outer.links.append(replace(link, name=prefix + link.name, pose=nested.pose * link.pose, sensors=sensors,
                                   devices=devices, collisions=collisions))  # fmt: skip
    for joint in nested.joints:
        parent = joint.parent if joint.parent == "world" else prefix + joint.parent
        outer.joints.append(replace(joint, name=prefix + joint.name, parent=parent, child=prefix + joint.child))
    if nested.diff_drive is not None:
        if outer.diff_drive is not None:
            raise ModelError(f"{nested.diff_drive.origin}: a second DiffDrive plugin inside model {outer.name!r}.")
        dd = nested.diff_drive
        outer.diff_drive = replace(
            dd, left_joints=[prefix + j for j in dd.left_joints], right_joints=[prefix + j for j in dd.right_joints]
        )


def _nested_lidar(lidar: LidarSpec, outer: str, inner: str, prefix: str) -> LidarSpec:
    """A nested model's lidar on the flattened link; its default frame id gz-sim's scoped name in ``outer``."""
    frame = lidar.frame_id
    if frame == f"{inner}/{lidar.link}/{lidar.name}":
        frame = f"{outer}/{prefix.replace('::', '/')}{lidar.link}/{lidar.name}"
    return replace(lidar, link=prefix + lidar.link, frame_id=frame)


def _model_plugin(plugin: Element, model: ModelSpec, ctx: Context) -> None:
    kind = plugin_kind(plugin)
    if kind in ("diff_drive", "classic_diff_drive", "ros2_control"):
        if model.diff_drive is not None:
            raise ModelError(
                f"{plugin.where}: model {model.name!r} has a second DiffDrive plugin (first at "
                f"{model.diff_drive.origin}); expected one."
            )
        if kind == "ros2_control":  # an SDF has no <ros2_control> block: the controller YAML says it all
            base = model.source.parent if model.source else None
            model.diff_drive = parse_ros2_control(plugin, model, ctx.resolver, base, ctx.warnings)
        else:
            model.diff_drive = parse_diff_drive(plugin, model, ctx.warnings)
    elif kind != "infrastructure" and plugin.attrib.get("name") != "simtwin::TwinModel":  # sim/engine/twin_model.py
        what = other_drive(plugin)
        if what is not None:
            ctx.other_drives.setdefault(model.name, other_drive_error(plugin.where, plugin, model.name, what))
        ctx.warn(f"{plugin.where}: plugin {plugin.attrib.get('filename', '')!r} of {model.name!r} is not simulated")


def _link(element: Element, model: ModelSpec, ctx: Context, base: Path) -> LinkSpec:
    link = LinkSpec(name=element.attrib.get("name", ""), origin=element.where)
    if not link.name:
        raise ModelError(f"{element.where}: <link> needs a name attribute.")
    inertial = element.find("inertial")
    if inertial is not None:
        link.inertial = parse_inertial(inertial)
    for index, collision in enumerate(element.findall("collision")):
        geom = parse_geometry(collision, collision.attrib.get("name", f"collision_{index}"), ctx, base)
        if geom is not None:
            pose, _ = sdf_pose(collision.find("pose"))
            geom.pose = pose * geom.pose  # a plane's normal is a rotation inside the collision frame
            geom.friction = surface_friction(collision, ctx.warnings)
            link.collisions.append(geom)
    link.rgba = visual_rgba(element)
    for sensor in element.findall("sensor"):
        if add_sensor(sensor, link, model.name, ctx.world, ctx.warnings):
            continue
        lidar = parse_lidar(sensor, link.name, model.name, ctx.world, ctx.warnings)
        if lidar is not None:
            link.sensors.append(lidar)
    for child in element.children:
        if child.tag not in _IGNORED_LINK:
            ctx.warn(f"{child.where}: link element <{child.tag}> of {model.name}/{link.name} is not simulated")
    return link


def _joint(element: Element, model: ModelSpec, frames: dict[str, Pose], ctx: Context) -> JointSpec:
    name = element.attrib.get("name", "")
    kind = element.attrib.get("type", "")
    parent, child = text(element, "parent"), text(element, "child")
    links = {link.name for link in model.links}
    for role, link_name in (("parent", parent), ("child", child)):
        if link_name not in links and not (role == "parent" and link_name == "world"):
            raise ModelError(
                f"{element.where}: joint {name!r} {role} {link_name!r} is not a link of model {model.name!r}; "
                f"expected one of: {', '.join(sorted(links))}."
            )
    if kind == "revolute2":  # two hinges, like universal (sdformat: axis then axis2)
        kind = "universal"
    if kind not in ("revolute", "continuous", "prismatic", "fixed", "ball", "universal"):
        ctx.warn(f"{element.where}: joint {name!r} of type {kind!r} is simulated as fixed")
        kind = "fixed"
    child_pose = frames.get(child, Pose())
    joint_in_model = frames.get(name, child_pose)
    pose = child_pose.inverse() * joint_in_model
    limits: tuple[float, float] | None = None
    damping = friction = 0.0
    axis = _axis(element.find("axis"), name, pose, child_pose, frames, (0.0, 0.0, 1.0))
    axis2 = _axis(element.find("axis2"), name, pose, child_pose, frames, (0.0, 1.0, 0.0))
    axis_el = element.find("axis")
    if axis_el is not None:
        limit = axis_el.find("limit")
        if limit is not None and kind not in ("continuous", "ball", "universal"):
            lo, hi = number(limit, "lower", -1e16), number(limit, "upper", 1e16)
            if hi - lo < 1e15:
                limits = (lo, hi)
        dynamics = axis_el.find("dynamics")
        if dynamics is not None:
            damping, friction = number(dynamics, "damping", 0.0), number(dynamics, "friction", 0.0)
    return JointSpec(name, kind, parent, child, axis, pose, limits, damping, friction, axis2, element.where)


def _axis(
    axis_el: Element | None, name: str, pose: Pose, child_pose: Pose, frames: dict[str, Pose],
    default: tuple[float, float, float],
) -> tuple[float, float, float]:  # fmt: skip
    """A joint ``<axis>``/``<axis2>`` direction in the child link frame (``expressed_in`` honoured)."""
    xyz_el = axis_el.find("xyz") if axis_el is not None else None
    if axis_el is None or xyz_el is None:
        return default
    vec = np.array(floats(xyz_el, count=3, what="axis"))
    if np.linalg.norm(vec) == 0:
        raise ModelError(f"{xyz_el.where}: joint {name!r} axis is zero; expected a direction.")
    expressed = xyz_el.attrib.get("expressed_in")
    if expressed == "__model__" or boolean(axis_el, "use_parent_model_frame", False):
        vec = child_pose.rotation().T @ vec
    elif expressed and expressed in frames:
        vec = child_pose.rotation().T @ frames[expressed].rotation() @ vec
    else:
        vec = pose.rotation() @ vec
    vec = vec / np.linalg.norm(vec)
    return (float(vec[0]), float(vec[1]), float(vec[2]))
