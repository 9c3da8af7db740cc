"""SDF ``<inertial>`` and collision ``<geometry>`` elements read as sdformat defines them."""

from __future__ import annotations

import math
from pathlib import Path

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.context import Context
from pytest_simtwin.sim.world.meshes import MESH_SUFFIXES
from pytest_simtwin.sim.world.model import GeomSpec, InertialSpec, Pose
from pytest_simtwin.sim.world.resources import check_mesh
from pytest_simtwin.sim.world.values import floats, number, sdf_pose, text
from pytest_simtwin.sim.world.xmltree import Element


def parse_inertial(element: Element) -> InertialSpec:
    """An SDF ``<inertial>``: mass, pose (rotated tensors are rotated when the model is built), inertia."""
    mass = number(element, "mass", 1.0)
    if mass <= 0:
        raise ModelError(f"{element.where}: <mass> must be positive; found {mass}.")
    pose, _ = sdf_pose(element.find("pose"))
    tensor = element.find("inertia")
    values = (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)  # SDF defaults
    if tensor is not None:
        values = tuple(
            number(tensor, k, d) for k, d in zip(("ixx", "iyy", "izz", "ixy", "ixz", "iyz"), values, strict=True)
        )  # type: ignore[assignment]
    return InertialSpec(mass=mass, pose=pose, inertia=values, origin=element.where)


def parse_geometry(collision: Element, name: str, ctx: Context, base: Path) -> GeomSpec | None:
    """An SDF ``<collision>``'s ``<geometry>`` as MuJoCo can build it (None: an empty geometry)."""
    geometry = collision.find("geometry")
    if geometry is None or not geometry.children:
        return None  # SDF allows an empty geometry: nothing to collide with
    shape = geometry.children[0]
    kind = shape.tag
    origin = shape.where
    if kind == "box":
        size = tuple(floats(shape.find("size") or shape, count=3, what="box size (x y z)"))
    elif kind == "cylinder" or kind == "capsule":
        size = (number(shape, "radius"), number(shape, "length"))
    elif kind == "sphere":
        size = (number(shape, "radius"),)
    elif kind == "ellipsoid":
        size = tuple(floats(shape.find("radii") or shape, count=3, what="ellipsoid radii"))
    elif kind == "plane":
        normal = floats(shape.find("normal") or shape, text=text(shape, "normal", "0 0 1"), count=3)
        size_el = shape.find("size")
        size = tuple(floats(size_el, count=2)) if size_el is not None else (0.0, 0.0)
        norm = math.sqrt(sum(v * v for v in normal))
        if norm == 0:
            raise ModelError(f"{origin}: plane normal is zero; expected a direction such as 0 0 1.")
        nx, ny, nz = (v / norm for v in normal)
        # Tilt the plane's z axis onto the normal: R = Ry(pitch) Rx(roll) maps z to (nx, ny, nz).
        tilt = Pose(roll=-math.asin(max(-1.0, min(1.0, ny))), pitch=math.atan2(nx, nz))
        return GeomSpec(name, "plane", size, pose=tilt, origin=origin)
    elif kind == "mesh":
        uri = text(shape, "uri")
        if not uri:
            raise ModelError(f"{origin}: <mesh> needs a <uri>.")
        if not uri.lower().endswith(MESH_SUFFIXES):
            check_mesh(Path(uri), shape)
        path = check_mesh(ctx.resolver.resolve(uri, base, shape), shape)
        if shape.find("submesh") is not None:
            ctx.warn(f"{origin}: <submesh> is ignored; the whole mesh collides")
        scale_el = shape.find("scale")
        scale = tuple(floats(scale_el, count=3)) if scale_el is not None else (1.0, 1.0, 1.0)
        return GeomSpec(name, "mesh", scale, mesh=path.resolve(), origin=origin)
    else:
        raise ModelError(
            f"{origin}: unknown geometry <{kind}> in collision {name!r}; expected box, cylinder, sphere, capsule, "
            "ellipsoid, plane or mesh. Replace it with one of these."
        )
    if any(v <= 0 for v in size):
        raise ModelError(f"{origin}: {kind} of collision {name!r} has a non-positive size {size}; expected > 0.")
    return GeomSpec(name, kind, size, origin=origin)
