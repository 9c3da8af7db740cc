"""Contacts from the MuJoCo state: what the robot touches besides the ground (a twin replay must run
free; see twin/replay.py) and what a ``<sensor type="contact">`` reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def robot_contacts(model: Any, data: Any, robot_body: int, entity_of_body: dict[str, str]) -> list[str]:
    """Names of the entities (or bodies) in contact with the robot now, the ground (planes) excluded."""
    import mujoco  # lazily, like physics.py: the module stays importable without MuJoCo

    plane = int(mujoco.mjtGeom.mjGEOM_PLANE)
    root = int(model.body_rootid[robot_body])
    found: list[str] = []
    for i in range(int(data.ncon)):
        c = data.contact[i]
        g1, g2 = int(c.geom1), int(c.geom2)
        r1, r2 = int(model.body_rootid[model.geom_bodyid[g1]]), int(model.body_rootid[model.geom_bodyid[g2]])
        if (r1 == root) == (r2 == root):
            continue  # neither is the robot, or the robot touches itself
        other = g2 if r1 == root else g1
        if int(model.geom_type[other]) == plane:
            continue
        body = model.body(int(model.geom_bodyid[other])).name
        name = entity_of_body.get(body, body)
        if "ground" in name.lower() or name in found:
            continue
        found.append(name)
    return found


@dataclass
class CollisionContact:
    """The contacts of one sensor collision with one other collision now, as gz-sim's physics system
    fills a gz.msgs.Contact: scoped names (``model::link::collision``), and per contact point the world
    position, the normal (from collision2 towards collision1), the penetration depth and the force on
    collision1 (world frame; collision2 feels the opposite)."""

    collision1: str
    collision2: str
    id1: int
    id2: int
    positions: list[tuple[float, float, float]] = field(default_factory=list)
    normals: list[tuple[float, float, float]] = field(default_factory=list)
    depths: list[float] = field(default_factory=list)
    forces: list[tuple[float, float, float]] = field(default_factory=list)


def collision_name(geom_name: str) -> str:
    """A MuJoCo geom's collision name (a split static mesh's ``::partN`` hulls are one collision)."""
    head, sep, tail = geom_name.rpartition("::part")
    return head if sep and tail.isdigit() else geom_name


def sensor_geoms(model: Any, collisions: list[str]) -> list[int]:
    """The geom ids of the scoped collision names (``model::link::collision``) a contact sensor watches."""
    wanted = set(collisions)
    return [g for g in range(int(model.ngeom)) if collision_name(model.geom(g).name) in wanted]


def sensor_contacts(model: Any, data: Any, geoms: set[int]) -> list[CollisionContact]:
    """The contacts of ``geoms`` now, one entry per (sensor collision, other collision) pair."""
    import mujoco
    import numpy as np

    out: dict[tuple[str, str], CollisionContact] = {}
    wrench = np.zeros(6)
    for i in range(int(data.ncon)):
        c = data.contact[i]
        g1, g2 = int(c.geom1), int(c.geom2)
        if g1 in geoms:
            mine, other, sign = g1, g2, 1.0
        elif g2 in geoms:
            mine, other, sign = g2, g1, -1.0
        else:
            continue
        if int(c.exclude) != 0 or int(c.efc_address) < 0:
            continue  # excluded or not active: MuJoCo applies no force through it
        name1, name2 = (collision_name(model.geom(g).name) or model.body(int(model.geom_bodyid[g])).name
                        for g in (mine, other))  # fmt: skip
        entry = out.get((name1, name2))
        if entry is None:
            # gz entity ids are unique per entity; the geom id + 1 is (0 is gz's null entity)
            entry = out[(name1, name2)] = CollisionContact(name1, name2, mine + 1, other + 1)
        frame = np.asarray(c.frame, dtype=float).reshape(3, 3)  # rows: normal (geom1 -> geom2), tangents
        mujoco.mj_contactForce(model, data, i, wrench)
        # MuJoCo's contact force acts on geom2 (+) and geom1 (-) and pushes them apart along the normal
        # (geom1 -> geom2); as DART's in gz-physics, ours is the force on collision1, along the normal
        # from collision2 towards collision1.
        force = -(frame.T @ wrench[:3]) * sign
        normal = -frame[0] * sign
        entry.positions.append((float(c.pos[0]), float(c.pos[1]), float(c.pos[2])))
        entry.normals.append((float(normal[0]), float(normal[1]), float(normal[2])))
        entry.depths.append(max(-float(c.dist), 0.0))
        entry.forces.append((float(force[0]), float(force[1]), float(force[2])))
    return list(out.values())
