"""Whole-world checks after loading: things only visible once the robot is known (said once, at load time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.meshes import mesh_parts
from pytest_simtwin.sim.world.model import GeomSpec, LinkSpec, ModelSpec, Pose, WorldSpec
from pytest_simtwin.sim.world.xmltree import Element

SDF_VERSIONS = ((1, 4), (1, 11))


def check_version(root: Element, warnings: list[str]) -> None:
    """SDF 1.4-1.11 is what we read; other versions load but may mean something else."""
    raw = root.attrib.get("version", "")
    try:
        version = tuple(int(v) for v in raw.split(".")[:2])
    except ValueError:
        version = ()
    if root.tag == "sdf" and not (SDF_VERSIONS[0] <= version <= SDF_VERSIONS[1]):
        message = f"{root.where}: SDF version {raw!r} is outside 1.4-1.11; read as 1.11"
        if message not in warnings:
            warnings.append(message)


def check_no_user_robot(world: WorldSpec, path: Path | None) -> None:
    """A user's world with a jointed model but no DiffDrive is a robot we cannot drive: adding the built-in
    robot would silently test something else (and place it inside the user's model)."""
    if path is None:
        return
    jointed = [m for m in world.models if not m.static and any(j.kind != "fixed" for j in m.joints)]
    if jointed:
        model = jointed[0]
        raise ModelError(
            f"{model.source or path}: world {world.name!r} has no model with a DiffDrive plugin; model "
            f"{model.name!r} has joints but nothing drives it. Expected one robot with "
            '<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive"> (left_joint, '
            "right_joint, wheel_separation, wheel_radius), or a robot file passed with --robot / simtwin_robot."
        )
    world.warn(f"{path}: no robot in the world; the built-in robot simtwin_bot is added at the origin")


def _check_inertia(world: WorldSpec, model: ModelSpec, link: LinkSpec) -> None:
    """Principal moments must satisfy the triangle inequality; DART/ODE tolerate small violations and MuJoCo
    (compiled with balanceinertia) replaces the moments by their mean: say so where that changes the body."""
    if link.inertial is None:
        return
    ixx, iyy, izz, ixy, ixz, iyz = link.inertial.inertia
    moments = np.linalg.eigvalsh(np.array([[ixx, ixy, ixz], [ixy, iyy, iyz], [ixz, iyz, izz]]))
    a, b, c = sorted(float(m) for m in moments)
    if a > 0 and a + b < c * (1 - 1e-3):
        world.warn(
            f"{link.inertial.origin or model.source}: inertia of link {model.name}/{link.name} has principal moments "
            f"{a:.3g}, {b:.3g}, {c:.3g}, which violate A + B >= C (no rigid body has them); MuJoCo uses their mean"
        )


def check_world(world: WorldSpec) -> None:
    for robot in world.robots:
        if robot.static or any(j.parent == "world" for j in robot.joints):
            raise ModelError(
                f"{robot.source or world.source}: robot model {robot.name!r} is static or jointed to the world; "
                "expected a free-moving model (remove <static>true</static> or the joint to 'world')."
            )
        dd = robot.diff_drive
        assert dd is not None
        joints = {j.name: j for j in robot.joints}
        for name in dd.left_joints + dd.right_joints:
            joint = joints[name]
            link = robot.link(joint.child)
            if any(g.kind == "mesh" for g in link.collisions):
                # A mesh wheel collides as its convex hull: a faceted disc with rim edges that scrub. A
                # sphere of the plugin's wheel_radius at the axle rolls exactly like the DiffDrive assumes.
                centre = Pose(joint.pose.x, joint.pose.y, joint.pose.z)
                link.collisions = [g for g in link.collisions if g.kind != "mesh"]
                link.collisions.append(GeomSpec("wheel", "sphere", (dd.wheel_radius,), centre, origin=dd.origin))
                world.warn(f"{robot.name}/{link.name}: mesh wheel collision simulated as a sphere of wheel_radius")
            if not link.collisions:
                world.warn(
                    f"{robot.name}/{link.name}: wheel link has no collision, so it cannot drive; add a <collision>"
                )
    for model in world.models:
        for link in model.links:
            _check_inertia(world, model, link)
        fixed = model.static or any(j.parent == "world" and j.kind == "fixed" for j in model.joints)
        for link in model.links:
            for geom in link.collisions:
                if geom.kind == "mesh" and geom.mesh is not None:
                    count = len(mesh_parts(geom.mesh, fixed))
                    # pieces: its connected parts, concave closed ones split further (see meshes.py)
                    what = f"{count} convex pieces" if count > 1 else "its convex hull"
                    world.warn(f"{geom.origin}: mesh {geom.mesh.name} collides as {what} (MuJoCo)")
        if model.diff_drive is None and model.lidars:
            world.warn(f"{model.source or model.name}: lidar on {model.name!r} (not the robot) is not simulated")
        if model.static:
            continue
        for link in model.links:
            if link.inertial is None and not link.lumped and any(g.kind != "plane" for g in link.collisions):
                world.warn(
                    f"{model.source or model.name}: link {model.name}/{link.name} has no <inertial>; using the "
                    "SDF default mass 1 kg with inertia from its collision shapes"
                )
    grounds = [g for m in world.models if m.static for link in m.links for g in link.collisions]
    if not grounds:
        world.warn(f"{world.source or world.name}: no static geometry (no ground plane): the robot will fall")


def _lowest_point(geom: GeomSpec, frame: Pose) -> float:
    """Lowest z of a geometry placed at ``frame`` (bounding box of boxes/cylinders, exact for spheres)."""
    import numpy as np

    if geom.kind == "sphere":
        return frame.z - geom.size[0]
    if geom.kind == "box":
        half = np.array(geom.size) / 2
    elif geom.kind in ("cylinder", "capsule"):
        r, length = geom.size
        half = np.array([r, r, length / 2 + (r if geom.kind == "capsule" else 0.0)])
    elif geom.kind == "ellipsoid":
        half = np.array(geom.size)
    else:
        return frame.z  # planes and meshes: their origin is a fair guess for a robot part
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    return float(frame.z + (corners @ frame.rotation().T)[:, 2].min())


def lift_robot(world: WorldSpec) -> None:
    """A robot placed partly below z = 0 (a URDF rooted at axle height, spawned at z 0) is lifted onto
    the ground: MuJoCo would otherwise throw it out of the ground plane at the first step."""
    if not any(g.kind == "plane" for m in world.models if m.static for link in m.links for g in link.collisions):
        return
    for robot in world.robots:
        _lift(world, robot)


def _lift(world: WorldSpec, robot: ModelSpec) -> None:
    lowest = min(
        (_lowest_point(g, robot.pose * link.pose * g.pose) for link in robot.links for g in link.collisions),
        default=0.0,
    )
    if lowest < -1e-3:
        p = robot.pose
        robot.pose = Pose(p.x, p.y, p.z - lowest, p.roll, p.pitch, p.yaw)
        world.warn(
            f"{robot.source or robot.name}: robot {robot.name!r} placed {-lowest:.3f} m into the ground; "
            f"lifted to z = {robot.pose.z:.3f} m (give the spawn height in the robot pose to silence this)"
        )
