"""sdformat's URDF fixed-joint lumping: which link a URDF link is merged into, and the collision names.

gazebosim/sdformat ``src/parser_urdf.cc``: ``ReduceFixedJoints`` merges the child of a ``fixed`` joint
(without ``preserveFixedJoint`` / ``disableFixedJointLumping``) into its parent, recursively; the child's
collisions join the parent's (``ReduceCollisionsToParent``) and ``CreateCollisions`` /
``CreateCollision`` name them; ``ReduceSDFExtensionToParent`` moves the child's ``<gazebo reference>``
to the parent, where ``InsertSDFExtensionCollision`` applies it only to the collisions it contributed.
Links stay MuJoCo bodies here (welded, same mass and inertia); their collisions carry the link Gazebo
names them under (:attr:`GeomSpec.link`), so contact reports and contact sensors see Gazebo's names.
"""

from __future__ import annotations

from pytest_simtwin.sim.world.model import GeomSpec, LinkSpec, Pose
from pytest_simtwin.sim.world.xmltree import Element

LUMP = "_fixed_joint_lump__"  # parser_urdf.cc kLumpPrefix
COLLISION = "_collision"  # kCollisionExt

#: a fixed joint's child is lumped into its parent unless one of these is true (parser_urdf.cc
#: FixedJointShouldBeReduced); sdformat reads "true", "yes" and "1" (lowerStr).
KEEP_FIXED = ("preserveFixedJoint", "disableFixedJointLumping")


def kept_fixed_joints(root: Element) -> set[str]:
    """Joints whose ``<gazebo reference>`` sets ``preserveFixedJoint`` / ``disableFixedJointLumping`` true."""
    out = set()
    for gz in root.findall("gazebo"):
        for tag in KEEP_FIXED:
            el = gz.find(tag)
            if el is not None and (el.text or "").strip().lower() in ("true", "yes", "1"):
                out.add(gz.attrib.get("reference", ""))
    return out


def lumped_into(
    link: str, parents: dict[str, str], origins: dict[str, Pose], fixed: dict[str, str], kept: set[str]
) -> tuple[str, Pose]:
    """The link sdformat merges ``link`` into, and ``link``'s frame in it (the joint origins composed,
    as ReduceSDFExtensionElementTransformReduction pre-multiplies a lumped sensor's pose)."""
    pose = Pose()
    while link in parents and fixed.get(link) not in (None, *kept):
        pose = origins[link] * pose
        link = parents[link]
    return link, pose


def name_collisions(
    links: list[LinkSpec],
    urdf_names: dict[int, str],
    parents: dict[str, str],
    joint_of: dict[str, str],
    lumps: dict[str, tuple[str, Pose]],
) -> None:
    """Give every collision sdformat's SDF name and, for a lumped link's, the link it joins.

    ``urdf_names``: ``id(geom)`` -> its URDF ``<collision name>`` ("" when absent). The order of a
    merged link's collisions is sdformat's: its own, then each fixed child's (its subtree reduced
    first), children in the order of their joints' names (urdfdom keeps joints in a ``std::map``).
    A collision is ``NAME_collision`` (NAME: its URDF name, else the link it came from), ``_K`` from
    the second one on, prefixed ``LINK_fixed_joint_lump__`` unless it starts with the link's name.
    """
    by_name = {link.name: link for link in links}
    arrays: dict[str, list[tuple[GeomSpec, str]]] = {
        link.name: [(g, urdf_names.get(id(g), "")) for g in link.collisions] for link in links
    }
    children: dict[str, list[str]] = {}
    for child in sorted(parents, key=lambda c: joint_of[c]):
        children.setdefault(parents[child], []).append(child)

    def lumped(link: str) -> bool:  # merged into its parent (lumped_into only climbs lumped joints)
        return lumps[link][0] != link

    def visit(link: str) -> None:
        for child in children.get(link, []):
            if lumped(child):
                visit(child)
        if link in parents and lumped(link):  # ReduceCollisionsToParent
            arrays[parents[link]].extend((g, n if LUMP in n else (n or link)) for g, n in arrays[link])
            arrays[link] = []
        for child in children.get(link, []):
            if not lumped(child):
                visit(child)

    for root in (name for name in by_name if name not in parents):
        visit(root)
    for owner, entries in arrays.items():
        for index, (geom, name) in enumerate(entries):  # CreateCollisions / CreateCollision
            full = (name or owner) + COLLISION + (f"_{index}" if index else "")
            geom.name = full if full.startswith(owner) else owner + LUMP + full
            if not any(g is geom for g in by_name[owner].collisions):
                geom.link = owner


def takes_extension(geom: GeomSpec, owner: str, reference: str) -> bool:
    """Whether ``<gazebo reference=reference>`` (lumped into ``owner``) reaches collision ``geom`` of
    ``owner``: InsertSDFExtensionCollision's test on the SDF name (a URDF-named collision of ``owner``
    itself carries the lump prefix too, and takes none of ``owner``'s extensions, as in Gazebo)."""
    if reference == owner:
        return LUMP not in geom.name
    return LUMP + reference + COLLISION in geom.name
