"""What the robot touches besides the ground (a twin replay must run free; see twin/replay.py)."""

from __future__ import annotations

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
