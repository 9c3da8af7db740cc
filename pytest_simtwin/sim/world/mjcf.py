"""WorldSpec -> MJCF text for MuJoCo, plus the names physics needs to find things again.

Settings follow the measurements in /work/shared/README.md: the ``discrete`` integrator (accurate at
1-4 ms with velocity-servoed wheels, where implicit integrators made wheels hop), stiff contacts
(solimp 0.99 0.99 0.001: wheels sink 0.06 % of their radius instead of 0.5 %), driven wheels that
collide as spheres (cylinder rims give two edge contacts that scrub when turning in place), velocity
actuators with kv ~0.3 scaled to the robot mass and wheel radius.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_simtwin.sim.world.meshes import mesh_parts
from pytest_simtwin.sim.world.model import GeomSpec, JointSpec, LinkSpec, ModelSpec, Pose, WorldSpec

#: Geom groups: rays see groups 0-2; the robot lives in 3 so its own lidar does not see it.
ENV_GROUP = 0
ROBOT_GROUP = 3
SITE_GROUP = 5
#: Robot i of a world lives in group ROBOT_GROUPS[i % 4]: a lidar skips its own robot, sees the others.
ROBOT_GROUPS = (ROBOT_GROUP, 4, 1, 2)
#: Collision bits: the robot's links do not collide with each other (Gazebo's self_collide=false).
ENV_BITS = (1, 3)  # contype, conaffinity
ROBOT_BITS = (2, 1)
MAX_ROBOT_BITS = 30  # contype bits 1..30 for robots: each collides with the others, not with itself


def robot_bits(index: int, count: int) -> tuple[int, int]:
    """(contype, conaffinity) of robot ``index`` of ``count``: own bit, colliding with the world and the
    other robots (Gazebo collides models with each other) but not its own links (self_collide false)."""
    if count > MAX_ROBOT_BITS:  # past that, robots share bits and do not collide with each other
        index %= MAX_ROBOT_BITS
        count = MAX_ROBOT_BITS
    own = 2 << index
    others = sum(2 << i for i in range(count) if i != index)
    return own, 1 | others


SOLIMP = "0.99 0.99 0.001"
DEFAULT_FRICTION = 1.0  # sdformat's default <ode><mu>
MAX_FRICTION = 100.0
PYRAMIDAL_MAX_MU = 2.0
#: Servo gain for 1 kg on r = 0.033 m wheels, one wheel per side. The prototype's 0.3 tracks light
#: robots well but loaded wheels (skid steer turning in place) lag their command by 10 %; 10x that
#: tracks within 1 % like Gazebo's exact velocity commands, changes nothing measurable for the
#: built-in robot, and the discrete integrator treats the gain implicitly, so it stays stable.
KV_REF, MR2_REF = 3.0, 1.0 * 0.033**2
#: velocity servo of a position-commanded joint per kg it moves (N m s/rad/kg): with the default 100/s
#: position gain an arm holding 0.6 N m against gravity sags 0.6 / (kv * 100) rad (< 1 mrad for 1 kg).
SERVO_KV = 20.0


@dataclass
class EntityLayout:
    name: str
    body: str
    static: bool
    #: model frame expressed in the root body's frame (entity pose = body pose * this).
    offset: Pose = field(default_factory=Pose)


@dataclass
class RobotLayout:
    """MJCF names of one DiffDrive robot: its root body, wheel joints and servos, joints, lidar sites."""

    name: str
    body: str = ""
    group: int = ROBOT_GROUP
    left_joints: list[str] = field(default_factory=list)
    right_joints: list[str] = field(default_factory=list)
    left_actuators: list[str] = field(default_factory=list)
    right_actuators: list[str] = field(default_factory=list)
    joints: list[tuple[str, str]] = field(default_factory=list)
    lidar_sites: list[str] = field(default_factory=list)
    #: position-servoed joints (ros2_control position command interfaces): (MJCF joint, actuator).
    servos: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Layout:
    entities: dict[str, EntityLayout] = field(default_factory=dict)
    #: every DiffDrive robot by model name, in world order (the fields below repeat the first one's).
    robots: dict[str, RobotLayout] = field(default_factory=dict)
    robot: str = ""
    robot_body: str = ""
    left_joints: list[str] = field(default_factory=list)
    right_joints: list[str] = field(default_factory=list)
    left_actuators: list[str] = field(default_factory=list)
    right_actuators: list[str] = field(default_factory=list)
    #: every hinge/slide joint of the robot, for joint_states (MJCF name, reported name).
    robot_joints: list[tuple[str, str]] = field(default_factory=list)
    lidar_sites: list[str] = field(default_factory=list)
    #: MJCF element name -> "file:line (what)" of the user's element, for MuJoCo compiler messages.
    origins: dict[str, str] = field(default_factory=dict)
    #: IMU/camera/navsat/contact sensors: ``model/link/name`` -> MJCF site (and camera) name.
    device_sites: dict[str, str] = field(default_factory=dict)


def device_site(model: str, link: str, sensor: str) -> str:
    return f"{model}::{link}::{sensor}"


def friction_priority(mu: float) -> int:
    """MuJoCo geom priority so that a contact takes the smaller friction of its two geoms, as ODE and DART
    (gz-physics) combine them (MuJoCo: the higher-priority geom's value wins; equal priorities take the max)."""
    if mu <= 0:
        return 3000
    return 1000 + round(-100 * math.log10(max(mu, 1e-9)))


def effective_friction(mu: float) -> float:
    """The friction MuJoCo gets for an SDF ``<mu>``: clamped to MAX_FRICTION, above which a wheel never slips
    anyway (TurtleBot3 with elliptic cones drives the same at 100 and 100000) and the solver stays well scaled."""
    return min(mu, MAX_FRICTION)


def cone_for(world: WorldSpec) -> str:
    """Friction cone: with pyramidal cones a contact friction above ~2 (TurtleBot3 wheels on Gazebo's ground:
    min(100000, 100)) weakens the normal force and wheels sink until the chassis drags (measured: mu 5 -> 6 %
    short, mu 20 -> no motion); elliptic cones stay within 1 % at mu 1e5. Pyramidal stays the default where
    no contact can exceed PYRAMIDAL_MAX_MU: it is what the built-in world was measured and tuned with."""
    mus = sorted(
        DEFAULT_FRICTION if g.friction is None else g.friction
        for m in world.models
        for link in m.links
        for g in link.collisions
    )
    # the largest friction any pair can get is min(a, b): at most the second-largest value
    return "elliptic" if len(mus) >= 2 and mus[-2] > PYRAMIDAL_MAX_MU else "pyramidal"


def body_name(model: str, link: str) -> str:
    return f"{model}::{link}"


def _fmt(values: tuple[float, ...] | list[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


def _place(element: ET.Element, pose: Pose) -> None:
    element.set("pos", _fmt((pose.x, pose.y, pose.z)))
    if pose.roll or pose.pitch or pose.yaw:
        element.set("quat", _fmt(pose.quaternion()))


class _Builder:
    def __init__(self, world: WorldSpec) -> None:
        self.world = world
        self.layout = Layout()
        self.root = ET.Element("mujoco", model=world.name)
        self.meshes: dict[tuple[str, tuple[float, ...], bool], list[str]] = {}
        self.rgba: tuple[float, float, float, float] | None = None

    def build(self) -> str:
        w = self.world
        # balanceinertia: DART/ODE simulate tensors that violate A + B >= C (common in CAD-exported URDFs),
        # MuJoCo refuses them; balanced, they get the mean moment, and checks.py says so at load time.
        ET.SubElement(self.root, "compiler", angle="radian", autolimits="true", inertiafromgeom="auto",
                      balanceinertia="true")  # fmt: skip
        ET.SubElement(self.root, "option", timestep=repr(w.step_size), integrator="discrete", gravity=_fmt(w.gravity),
                      cone=cone_for(w))  # fmt: skip
        default = ET.SubElement(self.root, "default")
        ET.SubElement(default, "geom", solimp=SOLIMP, friction=f"{DEFAULT_FRICTION} 0.005 0.0001")
        self.asset = ET.SubElement(self.root, "asset")
        self.worldbody = ET.SubElement(self.root, "worldbody")
        self.actuators = ET.SubElement(self.root, "actuator")
        self.contact = ET.SubElement(self.root, "contact")
        self.sensor = ET.SubElement(self.root, "sensor")
        robots = [m for m in w.models if m.diff_drive is not None]
        self.robot_count = len(robots)
        for model in w.models:
            self.robot_index = robots.index(model) if model in robots else -1
            self._model(model, model in robots)
        if any(d.kind in ("camera", "depth", "rgbd") for m in w.models for d in m.devices):
            # Gazebo's default scene background (sdformat scene.sdf: 0.7 0.7 0.7), not MuJoCo's black.
            ET.SubElement(self.asset, "texture", type="skybox", builtin="flat", rgb1="0.7 0.7 0.7",
                          rgb2="0.7 0.7 0.7", width="8", height="8")  # fmt: skip
        for section in (self.asset, self.actuators, self.contact, self.sensor):
            if not len(section):
                self.root.remove(section)
        return ET.tostring(self.root, encoding="unicode")

    # -- geometry ---------------------------------------------------------------------------------

    def _geom(
        self, body: ET.Element, geom: GeomSpec, pose: Pose, name: str, robot: bool, wheel: bool, static: bool = False
    ) -> None:
        g = ET.SubElement(body, "geom", name=name)
        parts: list[str] = [""]
        kind, size = geom.kind, geom.size
        if wheel and kind == "cylinder":
            kind, size = "sphere", (size[0],)
        if kind == "box":
            g.set("type", "box")
            g.set("size", _fmt(tuple(s / 2 for s in size)))
        elif kind in ("cylinder", "capsule"):
            g.set("type", kind)
            g.set("size", _fmt((size[0], size[1] / 2)))
        elif kind in ("sphere", "ellipsoid"):
            g.set("type", kind)
            g.set("size", _fmt(size))
        elif kind == "plane":
            g.set("type", "plane")
            g.set("size", _fmt((size[0] / 2, size[1] / 2, 1.0)) if size[0] > 0 and size[1] > 0 else "0 0 1")
        elif kind == "mesh":
            assert geom.mesh is not None
            parts = self._mesh_assets(geom.mesh, size, split=static)
            g.set("type", "mesh")
            g.set("mesh", parts[0])
        _place(g, pose)
        contype, conaffinity = robot_bits(self.robot_index, self.robot_count) if robot else ENV_BITS
        g.set("contype", str(contype))
        g.set("conaffinity", str(conaffinity))
        g.set("group", str(ROBOT_GROUPS[self.robot_index % len(ROBOT_GROUPS)] if robot else ENV_GROUP))
        mu = DEFAULT_FRICTION if geom.friction is None else geom.friction
        g.set("priority", str(friction_priority(mu)))
        if mu <= 0:
            g.set("condim", "1")
        else:
            g.set("friction", f"{effective_friction(mu)!r} 0.005 0.0001")
        self.layout.origins[name] = f"{geom.origin} (collision {geom.name!r})"
        if self.rgba is not None:  # the link's visual colour, for cameras
            g.set("rgba", _fmt(self.rgba))
        for index, part in enumerate(parts[1:], start=1):  # further hulls of a split static mesh
            copy = ET.SubElement(body, "geom", dict(g.attrib))
            copy.set("name", f"{name}::part{index}")
            copy.set("mesh", part)

    def _mesh_assets(self, path: Path, scale: tuple[float, ...], split: bool) -> list[str]:
        """Mesh assets (vertex clouds: MuJoCo builds their convex hulls) for one mesh file."""
        key = (str(path), scale, split)
        if key not in self.meshes:
            names = []
            for cloud in mesh_parts(path, split):
                names.append(f"mesh{len(self.asset)}")
                vertex = " ".join(f"{v:.9g}" for v in cloud.reshape(-1))
                ET.SubElement(self.asset, "mesh", name=names[-1], scale=_fmt(scale), vertex=vertex)
                self.layout.origins[names[-1]] = f"mesh {path}"
            self.meshes[key] = names
        return self.meshes[key]

    # -- models -----------------------------------------------------------------------------------

    def _model(self, model: ModelSpec, is_robot: bool) -> None:
        fixed_to_world = any(j.parent == "world" and j.kind == "fixed" for j in model.joints)
        if model.static or fixed_to_world or not model.links:
            body = ET.SubElement(self.worldbody, "body", name=model.name)
            _place(body, model.pose)
            for link in model.links:
                self.rgba = link.rgba
                for geom in link.collisions:
                    gname = f"{model.name}::{geom.link or link.name}::{geom.name}"
                    self._geom(body, geom, link.pose * geom.pose, gname, is_robot, False, static=True)
            self.layout.entities[model.name] = EntityLayout(model.name, model.name, True)
            return
        children: dict[str, list[tuple[str, str]]] = {}
        has_parent: set[str] = set()
        joints = {j.name: j for j in model.joints}
        for joint in model.joints:
            if joint.parent == "world" or joint.child in has_parent:
                continue  # a second parent would close a loop MuJoCo trees cannot express
            has_parent.add(joint.child)
            children.setdefault(joint.parent, []).append((joint.name, joint.child))
        root = model.root_link
        while root in has_parent:
            root = next(j.parent for j in model.joints if j.child == root and j.parent != "world")
        self._robot_joints: list[tuple[str, str]] = []
        wheel_joints = set(model.diff_drive.left_joints + model.diff_drive.right_joints) if model.diff_drive else set()
        links = {link.name: link for link in model.links}
        roots = [root] + [name for name in links if name not in has_parent and name != root]
        for index, top in enumerate(roots):
            body = self._link_body(self.worldbody, model, links, top, model.pose * links[top].pose, is_robot)
            ET.SubElement(body, "freejoint", name=f"{model.name}::{top}::free")
            if index == 0:
                self.layout.entities[model.name] = EntityLayout(
                    model.name, body_name(model.name, top), False, links[top].pose.inverse()
                )
            self._subtree(body, model, links, joints, children, top, is_robot, wheel_joints)
        if is_robot and model.diff_drive is not None:
            self._robot(model, root)
        elif len(links) > 1:
            names = [body_name(model.name, n) for n in links]
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    ET.SubElement(self.contact, "exclude", body1=a, body2=b)

    def _link_body(
        self, parent: ET.Element, model: ModelSpec, links: dict[str, LinkSpec], name: str, pose: Pose, robot: bool,
        wheel: bool = False,
    ) -> ET.Element:  # fmt: skip
        link = links[name]
        body = ET.SubElement(parent, "body", name=body_name(model.name, name))
        _place(body, pose)
        self.layout.origins[body.get("name", "")] = (
            f"{link.origin or model.source} (link {name!r} of model {model.name!r})"
        )
        if link.inertial is not None:
            i = link.inertial
            # MuJoCo takes fullinertia in the body frame and no orientation with it: rotate the tensor.
            inertial = ET.SubElement(body, "inertial", mass=repr(i.mass), fullinertia=_fmt(i.link_frame_inertia()))
            inertial.set("pos", _fmt((i.pose.x, i.pose.y, i.pose.z)))
        elif not link.collisions or all(g.kind == "plane" for g in link.collisions):
            # Massless frame links (URDF base_footprint): tiny inertia so MuJoCo accepts a free root.
            inertial = ET.SubElement(body, "inertial", pos="0 0 0", mass="0.001", diaginertia="1e-6 1e-6 1e-6")
        massive = [g for g in link.collisions if g.kind != "plane"]
        self.rgba = link.rgba
        for geom in link.collisions:
            gname = f"{model.name}::{geom.link or name}::{geom.name}"  # Gazebo's scoped name (lumping)
            self._geom(body, geom, geom.pose, gname, robot, wheel)
            if link.inertial is None and geom.kind != "plane":
                body[-1].set("mass", "0" if link.lumped else repr(1.0 / len(massive)))
        for lidar in link.sensors:
            site = ET.SubElement(body, "site", name=f"{model.name}::{name}::{lidar.name}", group=str(SITE_GROUP))
            _place(site, lidar.pose)
            site.set("size", "0.005")
        for device in link.devices:
            site_name = device_site(device.model, name, device.name)
            site = ET.SubElement(body, "site", name=site_name, group=str(SITE_GROUP), size="0.005")
            _place(site, device.pose)
            self.layout.device_sites[f"{device.model}/{name}/{device.name}"] = site_name
            if device.kind in ("camera", "depth", "rgbd"):
                # MuJoCo cameras look along -z with y up; the SDF sensor frame looks along +x with z up.
                rot = device.pose.rotation() @ np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
                ET.SubElement(body, "camera", name=site_name, pos=_fmt((device.pose.x, device.pose.y, device.pose.z)),
                              xyaxes=_fmt([*rot[:, 0], *rot[:, 1]]), fovy=repr(math.degrees(device.vertical_fov)))  # fmt: skip
            elif device.kind == "imu":
                ET.SubElement(self.sensor, "gyro", name=f"{site_name}::gyro", site=site_name)
                ET.SubElement(self.sensor, "accelerometer", name=f"{site_name}::acc", site=site_name)
                ET.SubElement(self.sensor, "framequat", name=f"{site_name}::quat", objtype="site", objname=site_name)
        return body

    def _subtree(
        self, body: ET.Element, model: ModelSpec, links: dict[str, LinkSpec], joints: dict[str, JointSpec],
        children: dict[str, list[tuple[str, str]]], name: str, robot: bool, wheel_joints: set[str],
    ) -> None:  # fmt: skip
        for joint_name, child in children.get(name, []):
            joint = joints[joint_name]
            pose = links[name].pose.inverse() * links[child].pose
            child_body = self._link_body(body, model, links, child, pose, robot, joint_name in wheel_joints)
            self._joint(child_body, model, joint, robot)
            self._subtree(child_body, model, links, joints, children, child, robot, wheel_joints)

    def _joint(self, body: ET.Element, model: ModelSpec, joint: JointSpec, robot: bool) -> None:
        """MJCF joint(s) for one SDF/URDF joint: hinge, slide, ball, or two hinges for a universal joint."""
        if joint.kind == "fixed":
            return
        name = f"{model.name}::{joint.name}"
        axes = [(name, joint.axis)]
        if joint.kind == "universal":
            axes.append((f"{name}::axis2", joint.axis2))
        for jname, axis in axes:
            j = ET.SubElement(body, "joint", name=jname)
            self.layout.origins[jname] = (
                f"{joint.origin or model.source} (joint {joint.name!r} of model {model.name!r})"
            )
            j.set("pos", _fmt((joint.pose.x, joint.pose.y, joint.pose.z)))
            if joint.kind == "ball":
                j.set("type", "ball")  # a caster's ball joint rolls freely, as in Gazebo
                break
            j.set("type", "slide" if joint.kind == "prismatic" else "hinge")
            j.set("axis", _fmt(axis))
            if joint.limits is not None:
                j.set("range", _fmt(joint.limits))
            if joint.damping:
                j.set("damping", repr(joint.damping))
            if joint.friction:
                j.set("frictionloss", repr(joint.friction))
            if robot:
                self._robot_joints.append((jname, joint.name if jname == name else f"{joint.name}::axis2"))

    def _robot(self, model: ModelSpec, root: str) -> None:
        dd = model.diff_drive
        assert dd is not None
        lay = RobotLayout(model.name, body_name(model.name, root), ROBOT_GROUPS[self.robot_index % len(ROBOT_GROUPS)])
        lay.joints = self._robot_joints
        # Massless frame links count nothing; links without <inertial> get the SDF default 1 kg.
        total = sum(link.mass if link.inertial or link.lumped else (1.0 if link.collisions else 0.0) for link in model.links)
        per_side = max(len(dd.left_joints), len(dd.right_joints))
        # kv scales with m r^2 so every robot gets the same servo time constant.
        # No torque limit: Gazebo's DiffDrive sets wheel velocities as unlimited joint velocity commands,
        # and a clamped MuJoCo actuator loses the discrete integrator's implicit damping (the wheel then
        # flips by F*dt/I each step and the robot hops). Wheel traction stays bounded by ground friction.
        kv = KV_REF * total * dd.wheel_radius**2 / MR2_REF / per_side
        for side, names, acts in (("left", dd.left_joints, lay.left_actuators), ("right", dd.right_joints, lay.right_actuators)):  # fmt: skip
            for joint in names:
                act = f"{model.name}::{joint}::{side}_servo"
                ET.SubElement(self.actuators, "velocity", name=act, joint=f"{model.name}::{joint}", kv=repr(kv))
                acts.append(act)
                (lay.left_joints if side == "left" else lay.right_joints).append(f"{model.name}::{joint}")
        for servo in model.servos:
            # gz_ros2_control commands the joint's velocity (DART holds it like a stiff velocity motor):
            # a velocity servo as stiff as the wheels' per kg carried; the discrete integrator keeps it stable.
            act = f"{model.name}::{servo.joint}::position_servo"
            kv = SERVO_KV * max(_subtree_mass(model, servo.joint), 0.05)
            ET.SubElement(self.actuators, "velocity", name=act, joint=f"{model.name}::{servo.joint}", kv=repr(kv))
            lay.servos.append((f"{model.name}::{servo.joint}", act))
        lay.lidar_sites = [f"{model.name}::{lidar.link}::{lidar.name}" for lidar in model.lidars]
        self.layout.robots[model.name] = lay
        if len(self.layout.robots) == 1:  # the first robot also fills the single-robot fields
            first = self.layout
            first.robot, first.robot_body, first.robot_joints = lay.name, lay.body, lay.joints
            first.left_joints, first.right_joints = lay.left_joints, lay.right_joints
            first.left_actuators, first.right_actuators = lay.left_actuators, lay.right_actuators
            first.lidar_sites = lay.lidar_sites


def _subtree_mass(model: ModelSpec, joint: str) -> float:
    """Mass moved by ``joint``: its child link and everything below it."""
    spec = next(j for j in model.joints if j.name == joint)
    below, frontier = {spec.child}, [spec.child]
    while frontier:
        parent = frontier.pop()
        for j in model.joints:
            if j.parent == parent and j.child not in below:
                below.add(j.child)
                frontier.append(j.child)
    return sum(link.mass for link in model.links if link.name in below)


def to_mjcf(world: WorldSpec) -> tuple[str, Layout]:
    """MJCF text for ``world`` and the layout (entity bodies, robot joints/actuators, lidar sites)."""
    builder = _Builder(world)
    text = builder.build()
    return text, builder.layout


def yaw_of(quat: tuple[float, float, float, float]) -> float:
    w, x, y, z = quat
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
