"""Typed values out of XML text, with file:line errors."""

from __future__ import annotations

import math

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.xmltree import Element


def floats(element: Element, text: str | None = None, count: int | None = None, what: str = "") -> list[float]:
    """Whitespace-separated numbers of ``element`` (or ``text``); ``count`` enforces how many."""
    raw = element.text if text is None else text
    try:
        values = [float(v) for v in raw.split()]
    except ValueError:
        raise ModelError(
            f"{element.where}: <{element.tag}> {what or 'value'} must be numbers; found {raw!r}."
        ) from None
    if count is not None and len(values) != count:
        raise ModelError(
            f"{element.where}: <{element.tag}> {what or 'value'} needs {count} numbers; found {len(values)} ({raw!r})."
        )
    if any(math.isnan(v) for v in values):
        raise ModelError(f"{element.where}: <{element.tag}> contains NaN ({raw!r}); expected finite numbers.")
    return values


def number(parent: Element, tag: str, default: float | None = None) -> float:
    """The number in child ``tag``; missing -> ``default`` (or a ModelError when there is none)."""
    child = parent.find(tag)
    if child is None or not child.text:
        if default is None:
            raise ModelError(f"{parent.where}: <{parent.tag}> needs a <{tag}> number; found none.")
        return default
    return floats(child, count=1)[0]


def integer(parent: Element, tag: str, default: int) -> int:
    child = parent.find(tag)
    if child is None or not child.text:
        return default
    try:
        return int(child.text.strip())
    except ValueError:
        value = floats(child, count=1)[0]
        if value != int(value):
            raise ModelError(f"{child.where}: <{tag}> must be an integer; found {child.text!r}.") from None
        return int(value)


def boolean(parent: Element, tag: str, default: bool) -> bool:
    child = parent.find(tag)
    if child is None or not child.text:
        return default
    text = child.text.strip().lower()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ModelError(f"{child.where}: <{tag}> must be true/false/1/0; found {child.text!r}.")


def text(parent: Element, tag: str, default: str = "") -> str:
    child = parent.find(tag)
    return child.text if child is not None and child.text else default


def sdf_pose(element: Element | None) -> tuple[Pose, str | None]:
    """An SDF ``<pose>``: 6 numbers (x y z roll pitch yaw) or 7 with ``rotation_format="quat_xyzw"``;
    ``degrees="true"`` is honoured. Returns the pose and its ``relative_to`` frame (None = default)."""
    if element is None:
        return Pose(), None
    relative_to = element.attrib.get("relative_to") or None
    if not element.text:
        return Pose(), relative_to
    fmt = element.attrib.get("rotation_format", "euler_rpy")
    if fmt == "quat_xyzw":
        x, y, z, qx, qy, qz, qw = floats(element, count=7, what="pose (x y z qx qy qz qw)")
        norm = math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw) or 1.0
        return Pose.from_quaternion(x, y, z, qw / norm, qx / norm, qy / norm, qz / norm), relative_to
    x, y, z, roll, pitch, yaw = floats(element, count=6, what="pose (x y z roll pitch yaw)")
    if element.attrib.get("degrees", "false").lower() in ("true", "1"):
        roll, pitch, yaw = (math.radians(v) for v in (roll, pitch, yaw))
    return Pose(x, y, z, roll, pitch, yaw), relative_to


def surface_friction(collision: Element, warnings: list[str]) -> float | None:
    """A collision's ``<surface><friction>`` coefficient (ode ``<mu>``, bullet ``<friction>``), None if unset.

    Gazebo (gz-physics dartsim) applies ``<mu2>`` across ``<fdir1>``; MuJoCo's sliding friction is
    isotropic, so an ``<fdir1>`` or a ``<mu2>`` that lets one direction slip is reported, and ``<mu>``
    applies in every direction."""
    friction = collision.path("surface", "friction")
    if friction is None:
        return None
    ode = friction.find("ode")
    if ode is not None and ode.find("mu") is not None:
        mu = number(ode, "mu")
        mu2 = number(ode, "mu2") if ode.find("mu2") is not None else mu
        # both >= 1 (the usual ground plane: 100 / 50) grip either way: only a slipping direction matters
        if ode.find("fdir1") is not None or (mu2 != mu and min(mu, mu2) < 1.0):
            warnings.append(
                f"{ode.where}: anisotropic friction (<mu> {mu:g}, <mu2> {mu2:g}"
                f"{', <fdir1>' if ode.find('fdir1') is not None else ''}) is not simulated: <mu> {mu:g} applies in "
                "every direction (a skid-steer robot may turn differently than in Gazebo)"
            )
        return mu
    bullet = friction.find("bullet")
    if bullet is not None and bullet.find("friction") is not None:
        return number(bullet, "friction")
    return None
