"""Collisions and ``<gazebo reference>`` surface settings of URDF links Gazebo lumps into their parent.

linorobot2's 2wd robot (``urdf/robots/2wd.urdf.xacro``) as its launch xacros it: ``base_link`` sits on a
fixed joint under the massless ``base_footprint``, its casters, laser and camera on fixed joints under
``base_link``, none preserved; ``caster_wheel.urdf.xacro`` gives each caster ``<mu1>0.01</mu1>``.
sdformat's URDF->SDF conversion (gazebosim/sdformat src/parser_urdf.cc: ReduceFixedJoints,
ReduceCollisionsToParent, CreateCollisions / CreateCollision, InsertSDFExtensionCollision; checked
against its test/integration/fixed_joint_reduction_collision_visual_extension.sdf) puts all of them in
``base_footprint`` as ``base_footprint_fixed_joint_lump__LINK_collision_K`` (K: the place in the link's
collisions, its own first, then each fixed child's by joint name) and applies each caster's ``<mu1>`` to
the collision that caster contributed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from public_robot_checks import ament_prefix, run_xacro
from simproc import SimProcess

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world.context import Context
from pytest_simtwin.sim.world.mjcf import to_mjcf
from pytest_simtwin.sim.world.model import GeomSpec, WorldSpec
from pytest_simtwin.sim.world.sdf import load_world
from pytest_simtwin.sim.world.urdf import load_urdf

LINOROBOT2 = Path(__file__).resolve().parents[1] / "robots" / "linorobot2"
MODEL = "linorobot2_2wd"
LUMP = "base_footprint_fixed_joint_lump__"
#: gz-sim's scoped name of the front caster's collision (what a Gazebo contact report says)
FRONT_CASTER = f"{MODEL}::base_footprint::{LUMP}front_caster_wheel_link_collision_2"


@pytest.fixture
def urdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the linorobot2 description")
    ament_prefix(tmp_path, LINOROBOT2, ("linorobot2_description",), monkeypatch)
    source = LINOROBOT2 / "linorobot2_description" / "urdf" / "robots" / "2wd.urdf.xacro"
    return run_xacro(source, tmp_path / "2wd.urdf")


def geoms(world: WorldSpec) -> dict[str, tuple[str, GeomSpec]]:
    """Reported collision name -> (the link it is simulated on, the geom)."""
    return {g.name: (lk.name, g) for lk in world.robot.links for g in lk.collisions}


def test_lumped_collisions_get_sdformat_names_and_their_own_links_friction(urdf: Path) -> None:
    world = load_world(None, urdf)
    got = geoms(world)
    assert {name: (on, g.link, g.friction) for name, (on, g) in got.items()} == {
        f"{LUMP}base_link_collision": ("base_link", "base_footprint", None),
        f"{LUMP}camera_link_collision_1": ("camera_link", "base_footprint", None),
        f"{LUMP}front_caster_wheel_link_collision_2": ("front_caster_wheel_link", "base_footprint", 0.01),
        f"{LUMP}laser_collision_3": ("laser", "base_footprint", None),
        f"{LUMP}rear_caster_wheel_link_collision_4": ("rear_caster_wheel_link", "base_footprint", 0.01),
        # continuous joints: their own links, sdformat's LINK_collision
        "left_wheel_link_collision": ("left_wheel_link", "", None),
        "right_wheel_link_collision": ("right_wheel_link", "", None),
    }
    xml, _ = to_mjcf(world)
    # the MuJoCo geom carries Gazebo's scoped name and the caster's friction (0.01, ODE's smaller of two)
    assert f'name="{FRONT_CASTER}"' in xml
    line = next(part for part in xml.split("<geom") if f'name="{FRONT_CASTER}"' in part)
    assert 'friction="0.01 ' in line
    # base.urdf.xacro's <gazebo reference="base_link"><visual><material><diffuse> replaces the URDF colour
    assert world.robot.link("base_link").rgba == (0.8392, 0.6314, 0.0, 1.0)
    base = next(part for part in xml.split("<geom") if f"{LUMP}base_link_collision" in part)
    assert 'rgba="0.8392 0.6314 0.0 1.0"' in base
    assert not [w for w in world.warnings if "mu1" in w or "caster" in w], world.warnings


def _turn(world: WorldSpec) -> float:
    """Yaw after 2 s of turning in place at 1 rad/s (the casters drag across the floor)."""
    p = Physics(world)
    p.step(round(0.3 / p.step_size))
    p.set_command(0.0, 1.0)
    p.step(round(2.0 / p.step_size))
    t = p.ground_truth()
    return math.atan2(2 * (t.qw * t.qz + t.qx * t.qy), 1 - 2 * (t.qy**2 + t.qz**2))


def test_the_lumped_casters_friction_decides_how_the_robot_turns(urdf: Path, tmp_path: Path) -> None:
    sliding = _turn(load_world(None, urdf))
    # the same robot with its casters' <gazebo reference> at mu1 1.0: they grip and drag
    gripping = tmp_path / "gripping.urdf"
    text = urdf.read_text()
    assert text.count("<mu1>0.01</mu1>") == 2
    gripping.write_text(text.replace("<mu1>0.01</mu1>", "<mu1>1.0</mu1>"))
    gripped = geoms(load_world(None, gripping))[f"{LUMP}front_caster_wheel_link_collision_2"][1]
    assert gripped.friction == 1.0
    dragged = _turn(load_world(None, gripping))
    assert sliding > 1.5  # close to the commanded 2 rad
    assert dragged < 0.9 * sliding, (sliding, dragged)


CONTACT = """
  <gazebo reference="front_caster_wheel_link">
    <sensor name="caster_contact" type="contact">
      <update_rate>50</update_rate>
      <topic>/caster_contact</topic>
      <contact><collision>{collision}</collision></contact>
    </sensor>
  </gazebo>
</robot>"""


def test_a_contact_sensor_on_a_lumped_link_reports_the_collision_gazebo_names(urdf: Path, sim_factory: Any) -> None:
    """A contact sensor on the caster link names the caster's collision as Gazebo does (the lumped
    name): sdformat moves the sensor to base_footprint, gz-sim looks the name up among that link's
    collisions (src/systems/contact/Contact.cc) and reports ``model::base_footprint::...``."""
    from pytest_simtwin.backends.messages import contacts_type

    lumped = FRONT_CASTER.rsplit("::", 1)[1]
    urdf.write_text(urdf.read_text().replace("</robot>", CONTACT.format(collision=lumped)))
    world = load_world(None, urdf)
    sensor = next(d for d in world.robot.devices if d.name == "caster_contact")
    assert (sensor.link, sensor.collisions) == ("base_footprint", [lumped])
    assert not [w for w in world.warnings if "caster_contact" in w], world.warnings
    sim: SimProcess = sim_factory("--robot", str(urdf), "--paused", wait_topic="/odom/unfiltered")
    buf = sim.ros.subscribe("/caster_contact", contacts_type())
    wait_until(lambda: sim.ros.count_publishers("/caster_contact") > 0, 10.0, what="a publisher on /caster_contact")
    for _ in range(40):
        sim.control.step(duration=0.1)
        if buf.count >= 3:
            break
    wait_until(lambda: buf.count >= 3, 10.0, what="contacts on /caster_contact")
    names = {(c.collision1.name, c.collision2.name) for c in buf.latest().contacts}
    assert {a for a, _ in names} == {FRONT_CASTER}, names  # the caster resting on the floor
    assert all("ground" in b for _, b in names), names


def test_a_contact_sensor_naming_the_unlumped_collision_is_reported(urdf: Path) -> None:
    """In Gazebo the caster link's own name finds no collision on base_footprint: the loader says so."""
    urdf.write_text(urdf.read_text().replace("</robot>", CONTACT.format(collision="front_caster_wheel_link_collision")))
    world = load_world(None, urdf)
    (warning,) = [w for w in world.warnings if "caster_contact" in w]
    assert "2wd.urdf:" in warning and "'front_caster_wheel_link_collision'" in warning
    assert f"{LUMP}front_caster_wheel_link_collision_2" in warning


def _link(name: str, radius: float, collision_name: str = "") -> str:
    named = f' name="{collision_name}"' if collision_name else ""
    return (
        f'<link name="{name}"><inertial><mass value="1"/><inertia ixx="0.001" iyy="0.001" izz="0.001"/></inertial>'
        f'<collision{named}><geometry><sphere radius="{radius}"/></geometry></collision></link>'
    )


def _fixed(name: str, parent: str, child: str) -> str:
    return f'<joint name="{name}" type="fixed"><parent link="{parent}"/><child link="{child}"/></joint>'


def test_names_and_friction_follow_sdformats_own_lumping_test(tmp_path: Path) -> None:
    """sdformat's test/integration/fixed_joint_reduction_collision_visual_extension.urdf and .sdf:
    child_link_2 (under child_link_1) is reduced into child_link_1 first, so it comes before
    child_link_1a; each <mu1> reaches the collision its link contributed. A collision with a URDF
    name takes the lump prefix even on its own link and so none of that link's <mu1>."""
    links = "".join(
        (_link("base_link", 0.02), _link("child_link_1", 0.03), _link("child_link_1a", 0.03),
         _link("child_link_2", 0.05), _link("arm", 0.01, collision_name="grip"))
    )  # fmt: skip
    joints = "".join(
        (_fixed("fixed_joint_1", "base_link", "child_link_1"), _fixed("fixed_joint_1a", "base_link", "child_link_1a"),
         _fixed("fixed_joint_2", "child_link_1", "child_link_2"),
         '<joint name="arm_joint" type="revolute"><parent link="base_link"/><child link="arm"/>'
         '<limit lower="-1" upper="1" effort="1" velocity="1"/></joint>')
    )  # fmt: skip
    gazebo = "".join(
        f'<gazebo reference="{link}"><mu1>{mu}</mu1></gazebo>'
        for link, mu in (("child_link_1", 0.7), ("child_link_1a", 0.6), ("child_link_2", 0.5), ("arm", 0.3))
    )
    path = tmp_path / "lumping_test.urdf"
    path.write_text(f'<robot name="lumping_test">{links}{joints}{gazebo}</robot>')
    ctx = Context()
    model = load_urdf(path, ctx)  # the model as the URDF reader gives it (no drive plugin needed)
    got = {g.name: (lk.name, g.link, g.friction) for lk in model.links for g in lk.collisions}
    lump = "base_link_fixed_joint_lump__"
    assert got == {
        "base_link_collision": ("base_link", "", None),
        f"{lump}child_link_1_collision_1": ("child_link_1", "base_link", 0.7),
        f"{lump}child_link_2_collision_2": ("child_link_2", "base_link", 0.5),
        f"{lump}child_link_1a_collision_3": ("child_link_1a", "base_link", 0.6),
        "arm_fixed_joint_lump__grip_collision": ("arm", "", None),  # parser_urdf.cc CreateCollision's prefix
    }
    # Gazebo drops the arm's <mu1> without a word; here it is said, with the file and what to do.
    (warning,) = [w for w in ctx.warnings if "reaches none" in w]
    assert "lumping_test.urdf:" in warning and "<gazebo reference='arm'> <mu1>" in warning
    assert "arm_fixed_joint_lump__grip_collision" in warning and "Drop the name= attributes" in warning


def test_a_lumped_links_friction_that_reaches_no_collision_is_reported(tmp_path: Path) -> None:
    """The example project's mistake once: a named caster on a lumped base_link keeps mu 1 in Gazebo."""
    links = _link("base_footprint", 0.02) + _link("base_link", 0.012, collision_name="caster")
    gazebo = '<gazebo reference="base_link"><mu1>0.0</mu1><mu2>0.0</mu2></gazebo>'
    path = tmp_path / "named_caster.urdf"
    path.write_text(f'<robot name="bot">{links}{_fixed("base_joint", "base_footprint", "base_link")}{gazebo}</robot>')
    ctx = Context()
    model = load_urdf(path, ctx)
    (caster,) = [g for lk in model.links if lk.name == "base_link" for g in lk.collisions]
    assert caster.friction is None  # the default, as sdformat leaves it
    (warning,) = [w for w in ctx.warnings if "reaches none" in w]
    assert "(lumped into 'base_footprint')" in warning and "base_footprint_fixed_joint_lump__caster_collision" in warning
    assert "'base_footprint_fixed_joint_lump__base_link_collision[_N]'" in warning and "preserveFixedJoint" in warning
