"""URDF (and ``.urdf.xacro`` through the ``xacro`` package) -> ModelSpec.

Gazebo extensions come from ``<gazebo>`` tags as Gazebo reads them: a plugin in a reference-less
``<gazebo>`` (the DiffDrive system), ``<sensor>`` in ``<gazebo reference="LINK">``, ``<mu1>`` friction
(element text or ``value=`` attribute, as sdformat's URDF parser reads both), and a ``<collision>``
block's ``<surface>``, which sdformat copies into every collision of the link. Collision names and the
lumping of fixed-joint links are sdformat's (:mod:`~pytest_simtwin.sim.world.lumping`).
URDF link frames coincide with their parent joint's frame, so link poses are the chained joint origins.
"""

from __future__ import annotations

import math
from pathlib import Path

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.context import Context
from pytest_simtwin.sim.world.joint_controllers import parse_from_plugin
from pytest_simtwin.sim.world.lumping import (
    COLLISION,
    KEEP_FIXED,
    LUMP,
    kept_fixed_joints,
    lumped_into,
    name_collisions,
    takes_extension,
)
from pytest_simtwin.sim.world.meshes import MESH_SUFFIXES
from pytest_simtwin.sim.world.model import GeomSpec, InertialSpec, JointSpec, LinkSpec, ModelSpec, Pose
from pytest_simtwin.sim.world.plugins import (
    check_diff_drive_joints,
    other_drive,
    other_drive_error,
    parse_diff_drive,
    parse_lidar,
    plugin_kind,
)
from pytest_simtwin.sim.world.resources import check_mesh
from pytest_simtwin.sim.world.ros2_control import drives_nothing, parse_ros2_control
from pytest_simtwin.sim.world.sensors import add_sensor, visual_rgba
from pytest_simtwin.sim.world.values import floats, sdf_pose, surface_friction
from pytest_simtwin.sim.world.xmltree import Element, parse_file

_KNOWN_ROBOT = {"link", "joint", "gazebo", "material", "ros2_control"}
_JOINT_KINDS = {"revolute": "revolute", "continuous": "continuous", "prismatic": "prismatic", "fixed": "fixed"}


def load_urdf(path: Path, ctx: Context, root: Element | None = None, name: str | None = None) -> ModelSpec:
    """A URDF robot (``root``: its already parsed document; ``name``: the model name instead of
    ``<robot name>``); xacro files are expanded first (:func:`~pytest_simtwin.sim.world.xmltree.parse_file`)."""
    root = root if root is not None else parse_file(path)
    if root.tag != "robot":
        raise ModelError(f"{root.where}: expected a URDF <robot> element; found <{root.tag}>.")
    return _robot(root, path, ctx, name)


def _origin(element: Element | None) -> Pose:
    if element is None:
        return Pose()
    xyz = floats(element, text=element.attrib.get("xyz", "0 0 0"), count=3, what="origin xyz")
    rpy = floats(element, text=element.attrib.get("rpy", "0 0 0"), count=3, what="origin rpy")
    return Pose(*xyz, *rpy)


def _attr_float(element: Element, name: str, default: float | None = None) -> float:
    raw = element.attrib.get(name)
    if raw is None:
        if default is None:
            raise ModelError(f"{element.where}: <{element.tag}> needs a {name}= attribute.")
        return default
    return floats(element, text=raw, count=1, what=name)[0]


def _robot(root: Element, path: Path, ctx: Context, spawn_name: str | None) -> ModelSpec:
    name = spawn_name or root.attrib.get("name", "")
    if not name:
        raise ModelError(f"{root.where}: <robot> needs a name attribute.")
    model = ModelSpec(name=name, source=path)
    for child in root.children:
        if child.tag not in _KNOWN_ROBOT:
            ctx.warn(f"{child.where}: URDF element <{child.tag}> of {name!r} is not simulated")
    origins: dict[str, Pose] = {}
    parents: dict[str, str] = {}
    fixed: dict[str, str] = {}  # child link -> its joint, for URDF type "fixed" only (what sdformat lumps)
    joint_of: dict[str, str] = {}  # child link -> its joint
    urdf_names: dict[int, str] = {}  # id(geom) -> its URDF <collision name> ("" when absent)
    for el in root.findall("link"):
        model.links.append(_link(el, path, ctx, urdf_names))
    links = {link.name for link in model.links}
    for el in root.findall("joint"):
        joint = _joint(el, links, ctx)
        if joint.child in parents:
            raise ModelError(f"{el.where}: link {joint.child!r} has two parent joints; URDF must be a tree.")
        parents[joint.child] = joint.parent
        joint_of[joint.child] = joint.name
        if el.attrib.get("type") == "fixed":
            fixed[joint.child] = joint.name
        origins[joint.child] = _origin(el.find("origin"))
        model.joints.append(joint)
    roots = [link.name for link in model.links if link.name not in parents]
    if len(roots) != 1:
        raise ModelError(f"{root.where}: URDF {name!r} must have exactly one root link; found {roots or 'none'}.")
    model.canonical_link = roots[0]
    if model.canonical_link == "world":
        raise ModelError(f"{root.where}: URDF {name!r} is fixed to 'world'; a robot must be free to move.")

    def pose_of(link: str, depth: int = 0) -> Pose:
        if link not in parents:
            return Pose()
        return pose_of(parents[link], depth + 1) * origins[link]

    for link in model.links:
        link.pose = pose_of(link.name)
    ctx.ros2_control_blocks = root.findall("ros2_control")  # read with the ros2_control plugin
    arms: list[Element] = []  # ros2_control plugins without a drive controller
    kept = kept_fixed_joints(root)
    lumps = {link.name: lumped_into(link.name, parents, origins, fixed, kept) for link in model.links}
    name_collisions(model.links, urdf_names, parents, joint_of, lumps)
    for link in model.links:
        link.lumped = lumps[link.name][0] != link.name
    for gz in root.findall("gazebo"):
        _gazebo(gz, model, ctx, arms, lumps)
    for plugin in arms:
        if model.diff_drive is None:  # the only drive candidate: its error says what the YAML lacks
            base = model.source.parent if model.source else None
            model.diff_drive = parse_ros2_control(
                plugin, model, ctx.resolver, base, ctx.warnings, ctx.ros2_control_blocks
            )
        else:
            base = model.source.parent if model.source else None
            found = ", ".join(drives_nothing(plugin, ctx.resolver, base))
            ctx.warn(
                f"{plugin.where}: ros2_control plugin of {name!r} drives no wheels; of its controllers ({found}) "
                "only position-commanded joints are simulated"
            )
            parse_from_plugin(plugin, model, ctx.resolver, base, ctx.ros2_control_blocks, ctx.warnings)
    if ctx.ros2_control_blocks and (model.diff_drive is None or not model.diff_drive.kind.startswith("diff_drive_c")):
        ctx.warn(
            f"{ctx.ros2_control_blocks[0].where}: <ros2_control> of {name!r} is not simulated (no ros2_control plugin)"
        )
    for link in model.links:
        model.lidars.extend(link.sensors)
        model.devices.extend(link.devices)
    if model.diff_drive is not None:
        check_diff_drive_joints(model.diff_drive, model)
    return model


def _link(el: Element, path: Path, ctx: Context, urdf_names: dict[int, str]) -> LinkSpec:
    link = LinkSpec(name=el.attrib.get("name", ""), origin=el.where)
    if not link.name:
        raise ModelError(f"{el.where}: <link> needs a name attribute.")
    link.rgba = visual_rgba(el)
    inertial = el.find("inertial")
    if inertial is not None:
        mass_el = inertial.find("mass")
        mass = _attr_float(mass_el, "value") if mass_el is not None else 0.0
        tensor = inertial.find("inertia")
        keys = ("ixx", "iyy", "izz", "ixy", "ixz", "iyz")
        values = tuple(_attr_float(tensor, k, 0.0) for k in keys) if tensor is not None else (0.0,) * 6
        if mass > 0:
            link.inertial = InertialSpec(mass, _origin(inertial.find("origin")), values, inertial.where)  # type: ignore[arg-type]
    for col in el.findall("collision"):
        geom = _geometry(col, col.attrib.get("name") or link.name, path, ctx)  # renamed as sdformat (lumping.py)
        if geom is not None:
            geom.pose = _origin(col.find("origin"))
            link.collisions.append(geom)
            urdf_names[id(geom)] = col.attrib.get("name", "")
    return link


def _geometry(col: Element, name: str, path: Path, ctx: Context) -> GeomSpec | None:
    geometry = col.find("geometry")
    if geometry is None or not geometry.children:
        return None
    shape = geometry.children[0]
    if shape.tag == "box":
        size: tuple[float, ...] = tuple(floats(shape, text=shape.attrib.get("size", ""), count=3, what="box size"))
    elif shape.tag == "cylinder":
        size = (_attr_float(shape, "radius"), _attr_float(shape, "length"))
    elif shape.tag == "sphere":
        size = (_attr_float(shape, "radius"),)
    elif shape.tag == "mesh":
        uri = shape.attrib.get("filename", "")
        if not uri:
            raise ModelError(f"{shape.where}: <mesh> needs a filename attribute.")
        if not uri.lower().endswith(MESH_SUFFIXES):
            check_mesh(Path(uri), shape)
        mesh = check_mesh(ctx.resolver.resolve(uri, path.parent, shape), shape)
        scale = tuple(floats(shape, text=shape.attrib.get("scale", "1 1 1"), count=3, what="mesh scale"))
        return GeomSpec(name, "mesh", scale, mesh=mesh.resolve(), origin=shape.where)
    else:
        raise ModelError(
            f"{shape.where}: unknown geometry <{shape.tag}> in collision {name!r}; expected box, cylinder, sphere "
            "or mesh."
        )
    if any(not (v > 0 and math.isfinite(v)) for v in size):
        raise ModelError(f"{shape.where}: {shape.tag} of collision {name!r} has a non-positive size {size}.")
    return GeomSpec(name, shape.tag, size, origin=shape.where)


def _joint(el: Element, links: set[str], ctx: Context) -> JointSpec:
    name, kind = el.attrib.get("name", ""), el.attrib.get("type", "")
    ends = {}
    for role in ("parent", "child"):
        node = el.find(role)
        value = node.attrib.get("link", "") if node is not None else ""
        if value not in links:
            raise ModelError(
                f"{el.where}: joint {name!r} {role} link {value!r} is not defined; expected one of: "
                f"{', '.join(sorted(links))}."
            )
        ends[role] = value
    if kind not in _JOINT_KINDS:
        ctx.warn(f"{el.where}: URDF joint {name!r} of type {kind!r} is simulated as fixed")
    if el.find("mimic") is not None:
        ctx.warn(f"{el.where}: <mimic> of joint {name!r} is not simulated (the joint moves freely)")
    axis_el = el.find("axis")
    axis = (1.0, 0.0, 0.0)  # URDF default
    if axis_el is not None:
        values = floats(axis_el, text=axis_el.attrib.get("xyz", "1 0 0"), count=3, what="axis xyz")
        norm = math.sqrt(sum(v * v for v in values))
        if norm == 0:
            raise ModelError(f"{axis_el.where}: joint {name!r} axis is zero; expected a direction.")
        axis = (values[0] / norm, values[1] / norm, values[2] / norm)
    limits = None
    limit = el.find("limit")
    if limit is not None and kind in ("revolute", "prismatic"):
        limits = (_attr_float(limit, "lower", 0.0), _attr_float(limit, "upper", 0.0))
    damping = friction = 0.0
    dynamics = el.find("dynamics")
    if dynamics is not None:
        damping, friction = _attr_float(dynamics, "damping", 0.0), _attr_float(dynamics, "friction", 0.0)
    return JointSpec(name, _JOINT_KINDS.get(kind, "fixed"), ends["parent"], ends["child"], axis, Pose(), limits,
                     damping, friction, origin=el.where)  # fmt: skip


def _gazebo(
    gz: Element, model: ModelSpec, ctx: Context, arms: list[Element], lumps: dict[str, tuple[str, Pose]]
) -> None:
    reference = gz.attrib.get("reference")
    link = None
    if reference:
        link = next((lk for lk in model.links if lk.name == reference), None)
        if link is None:
            _joint_extension(gz, reference, model, ctx)
            return
    for child in gz.children:
        if child.tag == "plugin":
            kind = plugin_kind(child)
            base = model.source.parent if model.source else None
            if kind == "ros2_control" and drives_nothing(child, ctx.resolver, base):
                arms.append(child)  # decided once every <gazebo> is read: another plugin may drive the base
                continue
            if kind in ("diff_drive", "classic_diff_drive", "ros2_control"):
                if model.diff_drive is not None:
                    raise ModelError(f"{child.where}: a second DiffDrive plugin in {model.name!r}; expected one.")
                if kind == "ros2_control":
                    blocks = ctx.ros2_control_blocks
                    model.diff_drive = parse_ros2_control(child, model, ctx.resolver, base, ctx.warnings, blocks)
                    parse_from_plugin(child, model, ctx.resolver, base, blocks, ctx.warnings)
                else:
                    model.diff_drive = parse_diff_drive(child, model, ctx.warnings)
            elif kind != "infrastructure":
                what = other_drive(child)
                if what is not None:
                    ctx.other_drives.setdefault(model.name, other_drive_error(child.where, child, model.name, what))
                ctx.warn(
                    f"{child.where}: plugin {child.attrib.get('filename', '')!r} of {model.name!r} is not simulated"
                )
        elif child.tag == "sensor" and link is not None:
            _sensor(child, link, model, ctx, lumps[link.name])
        elif link is not None:
            _link_extension(child, gz, link.name, model, ctx, lumps)
        else:
            ctx.warn(f"{child.where}: <gazebo> element <{child.tag}> is not simulated")


#: contact parameters sdformat writes into <surface><contact><ode> (kp, kd, max_vel, min_depth) or the
#: collision (max_contacts, laser_retro): MuJoCo's contact model (solref/solimp) is not tuned from them.
_CONTACT_PARAMS = ("kp", "kd", "maxVel", "minDepth", "maxContacts", "laserRetro")


def _warn_unmatched_surface(
    child: Element, where: str, reference: str, owner: str, model: ModelSpec, ctx: Context
) -> None:
    """Gazebo drops such settings silently: sdformat matches a link's extension by collision name."""
    own = [g.name for lk in model.links if lk.name == reference for g in lk.collisions]
    if not own:
        return
    named = f"{owner}{LUMP}{reference}{COLLISION}[_N]" if owner != reference else f"{reference}{COLLISION}[_N]"
    keep = "" if owner == reference else (
        ", or keep the joint (<gazebo reference=\"JOINT\"><preserveFixedJoint>true</preserveFixedJoint></gazebo>)"
    )
    ctx.warn(
        f"{child.where}: {where} <{child.tag}> reaches none of {reference!r}'s collisions ({', '.join(own)}): "
        f"sdformat applies it only to collisions named '{named}', and a URDF collision with a name= attribute is "
        f"named after that attribute; as in Gazebo they keep the default friction. Drop the name= attributes{keep}"
    )


def _link_extension(
    child: Element, gz: Element, reference: str, model: ModelSpec, ctx: Context, lumps: dict[str, tuple[str, Pose]]
) -> None:
    """One child of ``<gazebo reference="LINK">``, applied where sdformat applies it: a lumped link's
    surface settings to the collisions it gave the link it is lumped into (lumping.takes_extension),
    its link settings (gravity, self-collision) to that link."""
    owner = lumps[reference][0]
    geoms = [g for lk in model.links for g in lk.collisions if (g.link or lk.name) == owner]
    geoms = [g for g in geoms if takes_extension(g, owner, reference)]
    where = f"<gazebo reference={reference!r}>" + (f" (lumped into {owner!r})" if owner != reference else "")
    if child.tag in ("collision", "mu1") and not geoms:
        _warn_unmatched_surface(child, where, reference, owner, model, ctx)
    if child.tag == "collision":
        # parser_urdf.cc collision_blobs: the children go into each of those collisions; a <surface>
        # replaces theirs, and a <mu1> of the same extension is applied after it
        mu = surface_friction(child, ctx.warnings)
        unknown = [c.tag for c in child.children if c.tag != "surface"]
        if unknown:
            ctx.warn(f"{child.where}: {where} <collision> elements {', '.join(unknown)} are not simulated")
        if mu is not None and gz.find("mu1") is None:
            for geom in geoms:
                geom.friction = mu
    elif child.tag == "mu1":
        # sdformat's URDF parser reads <mu1>0.5</mu1> and <mu1 value="0.5"/> alike
        mu = _value(child)
        for geom in geoms:
            geom.friction = mu
        mu2 = gz.find("mu2")
        second = _value(mu2) if mu2 is not None else mu
        fdir = gz.find("fdir1")
        if fdir is not None or (second != mu and min(mu, second) < 1.0):  # as values.surface_friction
            ctx.warn(
                f"{child.where}: {where} anisotropic friction (<mu1> {mu:g}, <mu2> {second:g}"
                f"{', <fdir1>' if fdir is not None else ''}) is not simulated: <mu1> {mu:g} applies in every "
                "direction"
            )
    elif child.tag in ("mu2", "fdir1", "canonicalBody"):
        pass  # read with <mu1> (MuJoCo's sliding friction is isotropic); canonicalBody: sdformat ignores it
    elif child.tag in _CONTACT_PARAMS:
        if child is next(c for c in gz.children if c.tag in _CONTACT_PARAMS):  # one warning per block
            found = ", ".join(c.tag for c in gz.children if c.tag in _CONTACT_PARAMS)
            ctx.warn(f"{child.where}: {where} contact parameters {found} are not simulated (MuJoCo's soft contacts)")
    elif child.tag in ("selfCollide", "self_collide", "turnGravityOff"):
        # InsertSDFExtensionLink: on the link Gazebo builds, the one this link is lumped into
        value = (child.text or child.attrib.get("value", "")).strip().lower()
        if value in ("true", "yes", "1"):
            what = "gravity off" if child.tag == "turnGravityOff" else "self-collision"
            ctx.warn(f"{child.where}: {where} <{child.tag}> ({what} of link {owner!r}) is not simulated")
    elif child.tag == "material":
        ctx.warn(
            f"{child.where}: {where} Gazebo material {(child.text or '').strip()!r} is not rendered: cameras paint "
            "the URDF <visual> colour"
        )
    elif child.tag == "visual":
        # visual_blobs go into the link's visuals (InsertSDFExtensionVisual); a <material> with a colour
        # replaces the URDF one (CreateVisual uses the URDF colour only without diffuse/ambient): the
        # colour cameras paint this link's collision shapes with (they stay on its own body)
        rgba = visual_rgba(gz)
        if rgba is not None:
            next(lk for lk in model.links if lk.name == reference).rgba = rgba
        unknown = [c.tag for c in child.children if c.tag != "material"]
        if unknown:
            ctx.warn(f"{child.where}: {where} <visual> elements {', '.join(unknown)} are not simulated")
    else:
        ctx.warn(f"{child.where}: {where} element <{child.tag}> is not simulated")


def _value(el: Element) -> float:
    return floats(el, text=el.text or el.attrib.get("value", ""), count=1)[0]


def _sensor(el: Element, link: LinkSpec, model: ModelSpec, ctx: Context, lump: tuple[str, Pose]) -> None:
    """A ``<sensor>`` of ``link``, on the link Gazebo gives it: the one it is lumped into (named in the
    default topic and frame id, gz-sim's scoped name), its pose composed (lumping.lumped_into); contact
    sensors too: sdformat moves them and leaves their ``<collision>`` names as written."""
    name, reduction = lump
    owner = next(lk for lk in model.links if lk.name == name)
    _, relative_to = sdf_pose(el.find("pose"))
    if relative_to is not None:  # sdformat leaves such a pose alone; so do we (a frame name is not resolved here)
        owner, reduction = link, Pose()
    count = len(owner.devices)
    if add_sensor(el, owner, model.name, ctx.world, ctx.warnings):
        spec = owner.devices[count]
        spec.pose = reduction * spec.pose
        if spec.kind == "contact":  # gz-sim Contact.cc: its <collision> names a collision of the sensor's link
            have = [g.name for lk in model.links for g in lk.collisions if (g.link or lk.name) == owner.name]
            for missing in (c for c in spec.collisions if c not in have):
                ctx.warn(
                    f"{el.where}: contact sensor {spec.name!r} on link {owner.name!r} (as Gazebo lumps it) names "
                    f"collision {missing!r}, which that link does not have: Gazebo reports nothing for it; its "
                    f"collisions are {', '.join(have) or 'none'}"
                )
        return
    lidar = parse_lidar(el, owner.name, model.name, ctx.world, ctx.warnings)
    if lidar is not None:
        lidar.pose = reduction * lidar.pose
        owner.sensors.append(lidar)


def _joint_extension(gz: Element, reference: str, model: ModelSpec, ctx: Context) -> None:
    """``<gazebo reference="JOINT">``: lumping switches are what we do anyway; the rest is not simulated."""
    if not any(joint.name == reference for joint in model.joints):
        ctx.warn(f"{gz.where}: <gazebo reference={reference!r}> names no link or joint of {model.name!r}")
        return
    for child in gz.children:
        if child.tag not in KEEP_FIXED:
            ctx.warn(f"{child.where}: <gazebo reference={reference!r}> element <{child.tag}> (joint) is not simulated")
