"""How public descriptions are read, checked against sdformat / gz-sim / ODE semantics (no ROS needed):
rotated inertials, compiler errors that name the user's element, meshes (COLLADA units, hulls, cache),
Fuel URIs from a local cache, lenient XML, URDF <gazebo> attribute forms, <include merge>, robot-less
worlds, friction combination, ball and universal joints."""

from __future__ import annotations

import math
import os
from pathlib import Path

import mujoco
import numpy as np
import pytest

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world import meshes
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
TB3 = ROBOTS / "turtlebot3" / "turtlebot3_gazebo"
FUEL_CACHE = ROBOTS / "fuel_cache"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TB3 / "models"))
    monkeypatch.setenv("SIMTWIN_MESH_CACHE", str(tmp_path / "mesh-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.gz/fuel of the machine takes part
    monkeypatch.delenv("GZ_FUEL_CACHE_PATH", raising=False)
    meshes.mesh_parts.cache_clear()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text.strip() + "\n")
    return path


def robot_sdf(link_extra: str = "", model_extra: str = "", base_inertial: str = "") -> str:
    return f"""<?xml version="1.0"?>
<sdf version="1.9">
<model name="r">
<link name="base">{base_inertial}<collision name="c"><geometry><box><size>0.2 0.2 0.1</size></box></geometry></collision>{link_extra}</link>
<link name="wheel"><collision name="c"><geometry><sphere><radius>0.05</radius></sphere></geometry></collision></link>
<joint name="wheel_joint" type="revolute"><parent>base</parent><child>wheel</child></joint>
{model_extra}
<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
  <left_joint>wheel_joint</left_joint><right_joint>wheel_joint</right_joint>
  <wheel_separation>0.2</wheel_separation><wheel_radius>0.05</wheel_radius></plugin>
</model>
</sdf>"""


def tb3(world: str = "empty_world", model: str = "burger") -> Physics:
    return Physics(load_world(TB3 / "worlds" / f"{world}.world", TB3 / "models" / f"turtlebot3_{model}" / "model.sdf",
                              Pose(0.0, 0.0, 0.01)))  # fmt: skip


# -- inertials and compiler errors ------------------------------------------------------------------------


def test_rotated_sdf_inertial_is_rotated_into_the_link_frame() -> None:
    p = tb3()
    body = p.model.body("turtlebot3_burger::wheel_left_link")
    # <pose>0 0.08 0.023 -1.57 0 0</pose> with izz = 1.089e-4 about the wheel axle: the axle is the link's y
    assert sorted(body.inertia) == pytest.approx(sorted([5.445e-05, 5.445e-05, 1.089e-04]), rel=1e-3)
    rot = np.empty(9)
    mujoco.mju_quat2Mat(rot, body.iquat)
    largest = rot.reshape(3, 3)[:, int(np.argmax(body.inertia))]
    assert abs(largest[1]) == pytest.approx(1.0, abs=1e-3), "the largest moment is about the link's y axis"
    assert list(body.ipos) == pytest.approx([0.0, 0.08, 0.023])


def test_rotated_urdf_inertial_origin_is_accepted(tmp_path: Path) -> None:
    text = (Path(__file__).parent / "data" / "robots" / "diffbot.urdf").read_text()
    rotated = text.replace("<inertial>", '<inertial><origin xyz="0 0 0" rpy="1.5708 0 0.3"/>', 1)
    assert rotated != text
    path = write(tmp_path, "r.urdf", rotated)
    Physics(load_world(None, path))  # compiles (was: "at most one of fullinertia, quat")


def test_compiler_error_names_the_users_file_line_and_link(tmp_path: Path) -> None:
    inertial = "<inertial><mass>1</mass><inertia><ixx>-1</ixx><iyy>1</iyy><izz>1</izz></inertia></inertial>"
    path = write(tmp_path, "r.sdf", robot_sdf(base_inertial=inertial))
    with pytest.raises(ModelError) as info:
        Physics(load_world(None, path))
    message = str(info.value)
    assert message.startswith(f"{path}:4 (link 'base' of model 'r'): MuJoCo could not compile"), message
    assert "positive eigenvalues" in message
    assert "line 1" not in message and "built-in world" not in message and "Element name" not in message


def test_impossible_principal_moments_are_warned_and_boundary_ones_are_not(tmp_path: Path) -> None:
    inertial = "<inertial><mass>1</mass><inertia><ixx>0.01</ixx><iyy>0.01</iyy><izz>0.03</izz></inertia></inertial>"
    path = write(tmp_path, "r.sdf", robot_sdf(base_inertial=inertial))
    world = load_world(None, path)
    assert any(f"{path}:4: inertia of link r/base has principal moments" in w for w in world.warnings)
    Physics(world)  # MuJoCo (balanceinertia) still compiles it
    tb3_world = load_world(TB3 / "worlds" / "empty_world.world", TB3 / "models" / "turtlebot3_burger" / "model.sdf")
    assert not any("principal moments" in w for w in tb3_world.warnings), "ixx + iyy == izz is a valid disc"


# -- meshes -----------------------------------------------------------------------------------------------


def test_collada_units_are_applied() -> None:
    vertices, _ = meshes.load_mesh(TB3 / "models" / "turtlebot3_world" / "meshes" / "hexagon.dae")
    # <unit name="inch" meter="0.0254"/>: the hexagon is 100 inch tall and 115.47 inch across its corners
    assert np.ptp(vertices[:, 2]) == pytest.approx(100 * 0.0254, rel=1e-6)
    assert np.ptp(vertices[:, 0]) == pytest.approx(115.47 * 0.0254, rel=1e-4)


def test_concave_static_wall_ring_is_split_into_convex_pieces() -> None:
    wall = TB3 / "models" / "turtlebot3_world" / "meshes" / "wall.dae"
    parts = meshes.mesh_parts(wall, True)
    assert len(parts) >= 6, "one hull of the hexagonal wall ring would fill the arena"
    inner = np.array([0.0, 0.0, 1.0])  # the arena centre (mesh units: metres after <unit>)
    for part in parts:
        assert np.linalg.norm(part[:, :2].mean(axis=0)) > 1.0, "no piece covers the centre"
    assert meshes.mesh_parts(wall, False)[0].shape[1] == 3 and inner.shape == (3,)


def test_processed_meshes_are_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = TB3 / "models" / "turtlebot3_world" / "meshes" / "wall.dae"
    copy = tmp_path / "copy" / "wall.dae"
    copy.parent.mkdir()
    copy.write_bytes(source.read_bytes())
    first = meshes.mesh_parts(source, True)
    files = list((tmp_path / "mesh-cache").glob("*.npz"))
    assert len(files) == 1
    meshes.mesh_parts.cache_clear()

    def fail(*_: object) -> None:
        raise AssertionError("processed again instead of read from the cache")

    monkeypatch.setattr(meshes, "_process", fail)
    again = meshes.mesh_parts(copy, True)  # another path, same content: the same cache entry
    assert len(again) == len(first) and all(np.array_equal(a, b) for a, b in zip(again, first, strict=True))


def test_a_big_mesh_becomes_a_bounded_hull(tmp_path: Path) -> None:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=6, radius=0.2)  # 40962 vertices
    path = tmp_path / "shell.stl"
    sphere.export(path)
    (cloud,) = meshes.mesh_parts(path, False)
    assert len(cloud) <= len(sphere.vertices) and np.linalg.norm(cloud, axis=1).max() == pytest.approx(0.2, rel=1e-3)


def test_gltf_binary_meshes_load_with_their_scene_transforms(tmp_path: Path) -> None:
    import trimesh

    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(extents=(0.2, 0.4, 0.6)), transform=trimesh.transformations.translation_matrix([1, 0, 0])
    )
    path = tmp_path / "crate.glb"
    scene.export(path)
    (cloud,) = meshes.mesh_parts(path, False)
    assert cloud.min(axis=0) == pytest.approx([0.9, -0.2, -0.3]) and cloud.max(axis=0) == pytest.approx([1.1, 0.2, 0.3])


# -- Fuel -------------------------------------------------------------------------------------------------


def test_stock_turtlebot3_world_maps_fuel_ground_plane_and_sun_to_built_ins() -> None:
    world = load_world(TB3 / "worlds" / "empty_world.world", TB3 / "models" / "turtlebot3_burger" / "model.sdf")
    names = [m.name for m in world.models]
    assert names == ["ground_plane", "turtlebot3_burger"], names  # the Sun is a light: nothing to simulate
    (plane,) = world.models[0].links[0].collisions
    assert plane.kind == "plane" and plane.friction == 100.0


def _fuel_world(tmp_path: Path, uri: str) -> Path:
    return write(tmp_path, "w.sdf", f'<?xml version="1.0"?>\n<sdf version="1.9">\n<world name="w">\n'
                 f"<include>\n<uri>{uri}</uri>\n</include>\n</world>\n</sdf>")  # fmt: skip


def test_fuel_model_resolves_from_the_cache_newest_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GZ_FUEL_CACHE_PATH", str(FUEL_CACHE))
    world = load_world(_fuel_world(tmp_path, "https://fuel.gazebosim.org/1.0/OpenRobotics/models/Playground"))
    playground = next(m for m in world.models if m.name == "Playground")
    assert [g.name for g in playground.links[0].collisions] == ["north_wall", "south_wall"]
    assert all(g.mesh is not None and g.mesh.name == "block.obj" for g in playground.links[0].collisions)


def test_fuel_model_version_in_the_url_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GZ_FUEL_CACHE_PATH", str(FUEL_CACHE))
    load_world(_fuel_world(tmp_path, "https://fuel.gazebosim.org/1.0/openrobotics/models/playground/3"))
    with pytest.raises(ModelError, match="is not in the local Fuel cache"):
        load_world(_fuel_world(tmp_path, "https://fuel.gazebosim.org/1.0/openrobotics/models/playground/2"))


def test_missing_fuel_model_names_the_url_and_the_download_command(tmp_path: Path) -> None:
    path = _fuel_world(tmp_path, "https://fuel.gazebosim.org/1.0/OpenRobotics/models/Depot")
    with pytest.raises(ModelError) as info:
        load_world(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4: Gazebo Fuel model 'https://fuel.gazebosim.org/1.0/OpenRobotics/models/Depot'")
    assert 'gz fuel download -u "https://fuel.gazebosim.org/1.0/OpenRobotics/models/Depot"' in message
    assert (
        f"{tmp_path / 'home' / '.gz' / 'fuel' / 'fuel.gazebosim.org' / 'openrobotics' / 'models' / 'depot'}" in message
    )


# -- XML and description forms ----------------------------------------------------------------------------


def test_double_dash_inside_comments_is_accepted_like_tinyxml2(tmp_path: Path) -> None:
    text = robot_sdf().replace('<model name="r">', '<model name="r">\n<!-- try: gz topic -t /cmd_vel --help --->')
    world = load_world(None, write(tmp_path, "r.sdf", text))
    assert world.robot.name == "r"
    broken = text.replace("<box><size>0.2 0.2 0.1</size></box>", "<box><size>0.2 0.2</size></box>")
    with pytest.raises(ModelError, match=r"r2.sdf:5: <size> box size \(x y z\) needs 3 numbers"):
        load_world(None, write(tmp_path, "r2.sdf", broken))  # line numbers unchanged by the leniency


def test_urdf_gazebo_mu1_attribute_form(tmp_path: Path) -> None:
    text = (Path(__file__).parent / "data" / "robots" / "diffbot.urdf").read_text()
    caster = '<gazebo reference="caster"><mu1 value="0.25"/><mu2 value="0.25"/></gazebo>\n</robot>'
    world = load_world(None, write(tmp_path, "r.urdf", text.replace("</robot>", caster)))
    assert {g.friction for g in world.robot.link("caster").collisions} == {0.25}


def test_include_merge_adds_links_and_joints_without_a_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(tmp_path / "models"))
    (tmp_path / "models" / "base").mkdir(parents=True)
    write(tmp_path / "models" / "base", "model.sdf", robot_sdf())
    outer = ('<?xml version="1.0"?>\n<sdf version="1.9">\n<model name="vehicle">\n<include merge="true">'
             "<uri>model://base</uri></include>\n</model>\n</sdf>")  # fmt: skip
    world = load_world(None, write(tmp_path, "vehicle.sdf", outer))
    robot = world.robot
    assert robot.name == "vehicle"
    assert [link.name for link in robot.links] == ["base", "wheel"] and [j.name for j in robot.joints] == [
        "wheel_joint"
    ]
    assert robot.diff_drive is not None and robot.diff_drive.left_joints == ["wheel_joint"]


def test_world_with_a_jointed_model_but_no_diff_drive_is_an_error(tmp_path: Path) -> None:
    model = robot_sdf().split("<model", 1)[1].rsplit("</sdf>", 1)[0]
    model = model[: model.index("<plugin")] + "</model>"
    path = write(
        tmp_path,
        "w.sdf",
        f'<?xml version="1.0"?>\n<sdf version="1.9">\n<world name="w">\n<model{model}\n</world>\n</sdf>',
    )
    with pytest.raises(ModelError) as info:
        load_world(path)
    message = str(info.value)
    assert "has no model with a DiffDrive plugin; model 'r' has joints but nothing drives it" in message
    assert "--robot" in message


def test_world_with_only_scenery_gets_the_built_in_robot_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "w.sdf", '<?xml version="1.0"?>\n<sdf version="1.9">\n<world name="w">\n'
                 "<include><uri>https://fuel.gazebosim.org/1.0/OpenRobotics/models/Ground Plane</uri></include>\n"
                 "</world>\n</sdf>")  # fmt: skip
    world = load_world(path)
    assert world.robot.name == "simtwin_bot"
    assert any("no robot in the world; the built-in robot simtwin_bot is added" in w for w in world.warnings)


# -- physics semantics ------------------------------------------------------------------------------------


def test_friction_of_two_surfaces_is_the_smaller_one() -> None:
    p = tb3()
    p.step(300)  # settled on wheels and caster
    found = {}
    for contact in p.data.contact[: p.data.ncon]:
        names = {p.model.geom(contact.geom1).name, p.model.geom(contact.geom2).name}
        other = next(n for n in names if not n.startswith("ground_plane"))
        found[other.split("::")[1]] = float(contact.friction[0])
    # ground 100 (Fuel Ground Plane), wheels 100000, caster unset (sdformat default 1): min of each pair
    assert found["wheel_left_link"] == pytest.approx(100.0), found
    assert found["caster_back_link"] == pytest.approx(1.0)


def test_large_wheel_friction_keeps_wheels_on_the_ground_and_gripping() -> None:
    p = tb3()
    p.step(300)
    z0 = p.ground_truth().z
    p.set_command(0.2, 0.0)
    p.step(2000)
    p.set_command(0.0, 0.0)
    p.step(500)
    t = p.ground_truth()
    assert z0 == pytest.approx(0.01, abs=5e-4), "wheels rest on the ground (no sinking)"
    assert math.hypot(t.x, t.y) == pytest.approx(p.odometry().x, abs=0.01), "no slip: truth = odometry"
    assert p.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC


def test_ball_and_universal_joints_are_simulated_as_joints(tmp_path: Path) -> None:
    p = tb3()
    caster = p.model.joint("turtlebot3_burger::caster_back_joint")
    assert caster.type[0] == mujoco.mjtJoint.mjJNT_BALL
    extra = ('<link name="arm"><inertial><mass>0.1</mass><inertia><ixx>1e-4</ixx><iyy>1e-4</iyy><izz>1e-4</izz>'
             '</inertia></inertial></link>\n<joint name="u" type="universal"><parent>base</parent><child>arm</child>'
             "<axis><xyz>1 0 0</xyz></axis><axis2><xyz>0 1 0</xyz></axis2></joint>")  # fmt: skip
    q = Physics(load_world(None, write(tmp_path, "r.sdf", robot_sdf(model_extra=extra))))
    axes = [list(q.model.joint(n).axis) for n in ("r::u", "r::u::axis2")]
    assert axes == [pytest.approx([1, 0, 0]), pytest.approx([0, 1, 0])]
    assert "u" in q.joint_states()[0] and "u::axis2" in q.joint_states()[0]


def test_caster_rolls_so_turns_reach_the_commanded_angle() -> None:
    p = tb3(model="waffle")
    p.set_command(0.0, 0.5)
    p.step(2000)
    p.set_command(0.0, 0.0)
    p.step(500)
    t = p.ground_truth()
    yaw = math.atan2(2 * (t.qw * t.qz + t.qx * t.qy), 1 - 2 * (t.qy**2 + t.qz**2))
    assert yaw == pytest.approx(1.0, abs=0.03)
    assert os.environ["SIMTWIN_MESH_CACHE"]  # the isolated cache fixture is in effect
