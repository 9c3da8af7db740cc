"""World and robot loading: SDF worlds with includes, URDF/xacro robots, and every bad input's message."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.errors import ConfigError, ModelError
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.topics import resolve_topics
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world

DATA = Path(__file__).parent / "data"
MODELS = DATA / "models"
INCLUDES = DATA / "worlds" / "includes.sdf"
URDF = DATA / "robots" / "diffbot.urdf"
XACRO = DATA / "robots" / "diffbot.urdf.xacro"


@pytest.fixture
def resources(monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("GZ_SIM_RESOURCE_PATH", "IGN_GAZEBO_RESOURCE_PATH", "SDF_PATH", "GAZEBO_MODEL_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", f"/nonexistent/models:{MODELS}")
    return MODELS


def drive(p: Physics, vx: float, wz: float, seconds: float) -> None:
    p.set_command(vx, wz)
    p.step(round(seconds / p.step_size))


def yaw(p: Physics) -> float:
    t = p.ground_truth()
    return math.atan2(2 * (t.qw * t.qz + t.qx * t.qy), 1 - 2 * (t.qy**2 + t.qz**2))


# -- valid inputs ---------------------------------------------------------------------------------


def test_default_world_and_builtin_robot() -> None:
    world = load_world(None)
    assert world.name == "simtwin_arena" and world.source is None
    assert world.step_size == 0.004 and world.gravity == (0.0, 0.0, -9.81)
    assert world.warnings == []
    names = [m.name for m in world.models]
    assert {"ground_plane", "walls", "simtwin_bot"} <= set(names) and len(names) >= 6
    robot = world.robot
    dd = robot.diff_drive
    assert dd is not None
    assert (dd.wheel_radius, dd.wheel_separation, dd.odom_publish_frequency) == (0.033, 0.16, 30.0)
    assert (dd.topic, dd.odom_topic, dd.frame_id, dd.child_frame_id) == ("/cmd_vel", "/odom", "odom", "base_footprint")
    assert dd.max_linear_velocity == 0.6 and dd.min_linear_velocity == -0.6
    assert math.isinf(dd.max_linear_jerk)
    assert robot.pose == Pose() and robot.canonical_link == "base_footprint"
    (lidar,) = robot.lidars
    assert (lidar.samples, lidar.range_min, lidar.range_max, lidar.update_rate) == (360, 0.12, 3.5, 5.0)
    assert lidar.noise_stddev == 0.01 and lidar.min_angle == 0.0
    assert lidar.angle_increment == pytest.approx(math.radians(1.0))
    assert (lidar.topic, lidar.frame_id) == ("/scan", "base_scan")
    static = [m for m in world.models if m is not robot]
    assert all(m.static for m in static), "arena obstacles are static"


def test_builtin_arena_keeps_the_corridor_ahead_free() -> None:
    world = load_world(None)
    for model in world.models:
        if model.diff_drive is not None or model.name in ("ground_plane", "walls"):
            continue
        assert not (-0.3 < model.pose.x < 3.0 and abs(model.pose.y) < 0.9), f"{model.name} blocks the spawn corridor"


def test_world_with_includes_through_gz_sim_resource_path(resources: Path) -> None:
    world = load_world(INCLUDES)
    assert world.name == "include_test" and world.source == INCLUDES
    assert (world.step_size, world.real_time_factor, world.gravity) == (0.002, 0.0, (0.0, 0.0, -9.8))
    models = {m.name: m for m in world.models}
    assert set(models) == {"ground", "test_bot", "crate_a", "crate_b", "mesh_post", "frames"}
    assert not models["crate_a"].static and models["crate_b"].static, "<static> in <include> overrides"
    assert models["crate_a"].pose == Pose(2, 0, 0.15)
    b = models["crate_b"].pose  # relative_to="crate_a": 1 m to the side of crate_a, turned 90 degrees
    assert (b.x, b.y, b.z, b.yaw) == pytest.approx((2.0, 1.0, 0.15, math.pi / 2))
    post = models["mesh_post"]  # model.config lists two <sdf> versions: the newest file is used
    meshes = post.links[0].collisions
    assert [g.kind for g in meshes] == ["mesh", "mesh"]
    assert meshes[0].mesh == (MODELS / "mesh_post" / "meshes" / "post.stl").resolve()
    assert meshes[1].mesh == (MODELS / "mesh_post" / "meshes" / "post.obj").resolve() and meshes[1].size == (1, 1, 0.5)
    frames = models["frames"]
    assert frames.link("base").pose == Pose(1, 0, 0.5)
    assert frames.link("top").pose == Pose(1, 0, 1.1)


def test_robot_from_an_included_world_model_uses_gazebo_defaults(resources: Path) -> None:
    robot = load_world(INCLUDES).robot
    dd = robot.diff_drive
    assert robot.name == "test_bot" and dd is not None
    assert dd.topic == "/model/test_bot/cmd_vel" and dd.odom_topic == "/model/test_bot/odometry"
    assert dd.frame_id == "test_bot/odom" and dd.child_frame_id == "test_bot/chassis"
    assert dd.odom_publish_frequency == 50.0
    assert (dd.max_linear_velocity, dd.min_angular_velocity, dd.max_angular_velocity) == (1.0, -1.0, 1.5)
    assert (dd.max_linear_acceleration, dd.min_angular_acceleration) == (2.0, -2.0)
    (lidar,) = robot.lidars
    assert lidar.topic == "/world/include_test/model/test_bot/link/chassis/sensor/front_lidar/scan"
    assert lidar.frame_id == "test_bot/chassis/front_lidar"  # gz-sensors' default: the sensor's scoped name
    assert lidar.samples == 181 and lidar.noise_stddev == 0.0
    joint = next(j for j in robot.joints if j.name == "left_wheel_joint")
    assert joint.axis == pytest.approx((0, 0, 1)) and joint.limits is None


def test_unsupported_elements_are_reported_once(resources: Path) -> None:
    warnings = "\n".join(load_world(INCLUDES).warnings)
    for expected in ("pose-publisher", "lights are ignored", "wind-effects", "convex hull"):
        assert expected in warnings
    assert "sensor 'camera'" not in warnings and "sensor 'imu'" not in warnings  # simulated (sensors.py)
    for provided in ("joint-state-publisher", "physics-system", "sensors-system", "post.dae"):
        assert provided not in warnings
    assert len(set(load_world(INCLUDES).warnings)) == len(load_world(INCLUDES).warnings)


def test_world_with_includes_simulates(resources: Path) -> None:
    p = Physics(load_world(INCLUDES), seed=1)
    assert p.step_size == 0.002
    drive(p, 0.5, 0.0, 2.0)
    drive(p, 0.0, 0.0, 1.0)
    assert p.ground_truth().x == pytest.approx(1.0, abs=0.05)
    assert p.odometry().x == pytest.approx(p.ground_truth().x, abs=0.01)
    assert p.entity_state("crate_a")["pose"]["z"] == pytest.approx(0.15, abs=0.005), "dynamic crate rests on ground"
    p.set_entity_state("test_bot", pose={"x": 0.0, "y": 0.0, "yaw": math.pi})
    scan = p.lidar_scan()
    # lidar 0.15 m ahead of the chassis origin, now at x = -0.15; mesh post's +x face at x = -1.9
    assert scan[90] == pytest.approx(1.9 - 0.15, abs=0.02), "STL mesh collides and is seen by rays"


@pytest.mark.parametrize("robot_file", [URDF, XACRO], ids=["urdf", "xacro"])
def test_urdf_and_xacro_robots(robot_file: Path) -> None:
    world = load_world(None, robot_file, Pose(0.5, 0.0, 0.0, 0.0, 0.0, 0.0))
    robot = world.robot
    dd = robot.diff_drive
    assert robot.name == "diffbot" and robot.canonical_link == "base_footprint" and dd is not None
    assert (dd.wheel_radius, dd.wheel_separation, dd.odom_publish_frequency) == (0.05, 0.3, 20.0)
    assert (dd.topic, dd.odom_topic, dd.child_frame_id) == ("/cmd_vel", "/odom", "base_footprint")
    assert (dd.max_linear_velocity, dd.max_linear_jerk) == (0.8, 20.0)
    assert robot.link("left_wheel").pose == Pose(0.05, 0.15, 0.05)
    assert robot.link("left_wheel").collisions[0].friction == 1.2 and robot.link("caster").collisions[0].friction == 0
    (lidar,) = robot.lidars
    # laser -> base_link -> base_footprint are fixed joints: Gazebo lumps the lidar into base_footprint
    assert (lidar.link, lidar.frame_id, lidar.topic, lidar.samples) == ("base_footprint", "laser", "/scan", 720)
    assert (lidar.pose.x, lidar.pose.y, lidar.pose.z) == pytest.approx((0.1, 0.0, 0.15))  # the joints' origins
    assert any("ros2_control" in w for w in world.warnings)
    p = Physics(world)
    drive(p, 0.5, 0.0, 2.0)
    drive(p, 0.0, 0.0, 1.5)
    assert p.ground_truth().x - 0.5 == pytest.approx(1.0, abs=0.05)
    assert p.odometry().x == pytest.approx(p.ground_truth().x - 0.5, abs=0.01)
    drive(p, 0.0, 0.5, 3.0)
    drive(p, 0.0, 0.0, 1.0)
    assert yaw(p) == pytest.approx(1.5, abs=0.05)


def test_xacro_and_urdf_give_the_same_model() -> None:
    a, b = load_world(None, URDF).robot, load_world(None, XACRO).robot
    for link in a.links + b.links:  # file:line of each geometry differs between the two files
        for geom in link.collisions:
            geom.origin = ""
    assert a.links == b.links and a.joints == b.joints
    assert a.diff_drive is not None and b.diff_drive is not None
    assert a.diff_drive.left_joints == b.diff_drive.left_joints == ["left_wheel_joint"]


def test_sdf_robot_file_at_a_pose() -> None:
    world = load_world(None, MODELS / "test_bot" / "model.sdf", Pose(1.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    assert world.robot.name == "test_bot" and world.robot.pose == Pose(1.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert "simtwin_bot" not in [m.name for m in world.models]


def test_classic_gazebo_ros_diff_drive_plugin(tmp_path: Path) -> None:
    text = (MODELS / "test_bot" / "model.sdf").read_text()
    start, end = text.index('<plugin filename="gz-sim-diff'), text.index("</plugin>") + len("</plugin>")
    classic = """<plugin name="diff_drive" filename="libgazebo_ros_diff_drive.so">
      <ros><namespace>/tb3</namespace><remapping>cmd_vel:=cmd</remapping></ros>
      <left_joint>left_wheel_joint</left_joint><right_joint>right_wheel_joint</right_joint>
      <wheel_separation>0.36</wheel_separation><wheel_diameter>0.2</wheel_diameter>
      <odometry_frame>odom</odometry_frame><robot_base_frame>base_link</robot_base_frame><update_rate>30</update_rate>
    </plugin>"""
    path = tmp_path / "classic.sdf"
    path.write_text(text[:start] + classic + text[end:])
    dd = load_world(None, path).robot.diff_drive
    assert dd is not None
    assert (dd.wheel_radius, dd.topic, dd.odom_topic, dd.child_frame_id) == (0.1, "/tb3/cmd", "/tb3/odom", "base_link")
    # the ROS 2 plugin's defaults: no odom transform, odometry_source 1 (the model's world pose)
    assert (dd.odom_publish_frequency, dd.publish_tf, dd.odom_from_world) == (30.0, False, True)

    # ROS 1's <updateRate> is not read (100 Hz); odometry_source 0 integrates the wheels
    path.write_text(path.read_text().replace("<update_rate>30</update_rate>", "<updateRate>30</updateRate>"
                    "<odometry_source>0</odometry_source><publish_odom_tf>true</publish_odom_tf>"))  # fmt: skip
    world = load_world(None, path)
    dd = world.robot.diff_drive
    assert dd is not None and (dd.odom_publish_frequency, dd.publish_tf, dd.odom_from_world) == (100.0, True, False)
    assert any("publish_odom is not true: Gazebo publishes no odometry" in w for w in world.warnings)

    # odometry_source 1: the odometry is the model's pose in the world (spawn offset included)
    path.write_text(path.read_text().replace("<odometry_source>0</odometry_source>", ""))
    physics = Physics(load_world(None, path, Pose(1.0, 2.0, 0.0, yaw=0.5)))
    physics.set_command(0.2, 0.0)
    physics.step(500)
    odom, truth = physics.odometry(), physics.ground_truth()
    assert (odom.x, odom.y) == (truth.x, truth.y) and odom.x > 1.0 and odom.yaw == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(("accel", "after_0_1s"), [(0.0, 0.2), (1.0, 0.1)])
def test_gazebo_ros_diff_drive_ramps_wheels_by_max_wheel_acceleration(
    tmp_path: Path, accel: float, after_0_1s: float
) -> None:
    """gazebo_ros_diff_drive sets the wheels at its update_rate, each rim speed moving towards its target
    by at most max_wheel_acceleration (m/s^2) per second: 1.0 reaches 0.2 m/s after 0.2 s."""
    text = (MODELS / "test_bot" / "model.sdf").read_text()
    start, end = text.index('<plugin filename="gz-sim-diff'), text.index("</plugin>") + len("</plugin>")
    classic = f"""<plugin name="diff_drive" filename="libgazebo_ros_diff_drive.so">
      <left_joint>left_wheel_joint</left_joint><right_joint>right_wheel_joint</right_joint>
      <wheel_separation>0.36</wheel_separation><wheel_diameter>0.2</wheel_diameter><publish_odom>true</publish_odom>
      <max_wheel_acceleration>{accel}</max_wheel_acceleration>
    </plugin>"""
    path = tmp_path / "classic.sdf"
    path.write_text(text[:start] + classic + text[end:])
    physics = Physics(load_world(None, path))
    physics.step(round(0.5 / physics.step_size))  # settle
    physics.set_command(0.2, 0.0)
    physics.step(round(0.1 / physics.step_size))
    assert physics.ground_truth().vx == pytest.approx(after_0_1s, abs=0.03)
    physics.step(round(0.4 / physics.step_size))
    assert physics.ground_truth().vx == pytest.approx(0.2, abs=0.02)


# -- bad inputs -----------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text.strip() + "\n")
    return path


def world_with(body: str) -> str:
    return f'<?xml version="1.0"?>\n<sdf version="1.9">\n<world name="w">\n{body}\n</world>\n</sdf>'


def robot_with(link_extra: str = "", plugin: str | None = None, joint: str = "wheel_joint") -> str:
    if plugin is None:
        plugin = f"""<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
  <left_joint>{joint}</left_joint><right_joint>wheel_joint</right_joint>
  <wheel_separation>0.2</wheel_separation><wheel_radius>0.05</wheel_radius></plugin>"""
    return f"""<?xml version="1.0"?>
<sdf version="1.9">
<model name="r">
<link name="base">{link_extra}</link>
<link name="wheel"><collision name="c"><geometry><sphere><radius>0.05</radius></sphere></geometry></collision></link>
<joint name="wheel_joint" type="revolute"><parent>base</parent><child>wheel</child></joint>
{plugin}
</model>
</sdf>"""


def expect(match: str, *args: object) -> str:
    with pytest.raises(ModelError) as info:
        load_world(*args)  # type: ignore[arg-type]
    message = str(info.value)
    assert match in message, message
    return message


def test_missing_file(tmp_path: Path) -> None:
    expect(f"model file {tmp_path / 'nope.sdf'} does not exist", tmp_path / "nope.sdf")
    expect("does not exist", None, tmp_path / "nope.urdf")


def test_malformed_xml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.sdf", world_with("<model name='m'>\n<link name='l'>\n</model>"))
    message = expect(f"{path}:6: malformed XML", path)
    assert "mismatched tag" in message


def test_bad_number_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "w.sdf", world_with("<model name='m'>\n<pose>0 0 abc 0 0 0</pose>\n</model>"))
    expect(f"{path}:5: <pose> pose (x y z roll pitch yaw) must be numbers; found '0 0 abc 0 0 0'", path)


def test_unknown_geometry(tmp_path: Path) -> None:
    body = "<model name='m'><static>true</static><link name='l'><collision name='c'><geometry>\n<heightmap/>\n</geometry></collision></link></model>"
    path = write(tmp_path, "w.sdf", world_with(body))
    message = expect(f"{path}:5: unknown geometry <heightmap> in collision 'c'", path)
    assert "box, cylinder, sphere" in message


def test_unknown_mesh_format_is_refused_with_a_conversion_hint(tmp_path: Path) -> None:
    (tmp_path / "m.3ds").write_bytes(b"MM")
    body = "<model name='m'><static>true</static><link name='l'><collision name='c'><geometry>\n<mesh><uri>m.3ds</uri></mesh></geometry></collision></link></model>"
    path = write(tmp_path, "w.sdf", world_with(body))
    message = expect(f"{path}:5: mesh m.3ds is .3ds; expected one of .stl, .obj, .dae", path)
    assert "assimp export m.3ds m.obj" in message


def test_broken_dae_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "m.dae").write_text("<COLLADA/>")
    body = "<model name='m'><static>true</static><link name='l'><collision name='c'><geometry>\n<mesh><uri>m.dae</uri></mesh></geometry></collision></link></model>"
    expect(f"mesh {tmp_path / 'm.dae'} is not a valid DAE file", write(tmp_path, "w.sdf", world_with(body)))


def test_missing_mesh_file(tmp_path: Path) -> None:
    body = "<model name='m'><static>true</static><link name='l'><collision name='c'><geometry>\n<mesh><uri>meshes/gone.stl</uri></mesh></geometry></collision></link></model>"
    path = write(tmp_path, "w.sdf", world_with(body))
    expect(f"{path}:5: 'meshes/gone.stl' does not exist (looked for {tmp_path / 'meshes' / 'gone.stl'})", path)


def test_unresolvable_model_uri_lists_the_searched_paths(tmp_path: Path, resources: Path) -> None:
    path = write(tmp_path, "w.sdf", world_with("<include>\n<uri>model://no_such_model</uri></include>"))
    message = expect(f"{path}:4: cannot resolve <uri>model://no_such_model</uri>", path)
    for searched in ("/nonexistent/models", str(resources), str(tmp_path)):
        assert f"    {searched}\n" in message
    assert "GZ_SIM_RESOURCE_PATH" in message


def test_network_uri_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "w.sdf", world_with("<include><uri>https://fuel.gazebosim.org/1.0/x/models/y</uri></include>")
    )
    message = expect(
        f"{path}:4: Gazebo Fuel model 'https://fuel.gazebosim.org/1.0/x/models/y' is not in the local", path
    )
    assert 'gz fuel download -u "https://fuel.gazebosim.org/1.0/x/models/y"' in message


def test_robot_without_diff_drive(tmp_path: Path) -> None:
    path = write(tmp_path, "r.sdf", robot_with(plugin=""))
    expect(f"{path}: robot model 'r' has no DiffDrive plugin", None, path)


def test_robot_with_a_missing_wheel_joint(tmp_path: Path) -> None:
    path = write(tmp_path, "r.sdf", robot_with(joint="left_wheel_joint"))
    message = expect(f"{path}:7: DiffDrive wheel joint 'left_wheel_joint' is not a joint of model 'r'", None, path)
    assert "expected one of: wheel_joint" in message


def test_diff_drive_without_wheel_radius(tmp_path: Path) -> None:
    plugin = """<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
  <left_joint>wheel_joint</left_joint><right_joint>wheel_joint</right_joint><wheel_separation>0.2</wheel_separation></plugin>"""
    expect(
        "needs a positive <wheel_radius> (metres); found none",
        None,
        write(tmp_path, "r.sdf", robot_with(plugin=plugin)),
    )


def test_lidar_with_zero_samples(tmp_path: Path) -> None:
    sensor = """<sensor name="scan" type="gpu_lidar"><lidar><scan><horizontal>
<samples>0</samples></horizontal></scan><range><min>0.1</min><max>5</max></range></lidar></sensor>"""
    path = write(tmp_path, "r.sdf", robot_with(link_extra=sensor))
    expect(f"{path}:4: lidar 'scan' has 0 horizontal samples; expected a positive count", None, path)


def test_two_robots_in_a_world(tmp_path: Path, resources: Path) -> None:
    body = (
        "<include><uri>model://test_bot</uri></include><include><name>bot2</name><uri>model://test_bot</uri></include>"
    )
    world = load_world(write(tmp_path, "w.sdf", world_with(body)))
    assert [m.name for m in world.robots] == ["test_bot", "bot2"] and world.robot.name == "test_bot"
    topics = resolve_topics(world)
    assert [(t.robot, t.cmd_vel, t.odom) for t in topics.robots] == [
        ("test_bot", "/model/test_bot/cmd_vel", "/model/test_bot/odometry"),
        ("bot2", "/model/bot2/cmd_vel", "/model/bot2/odometry"),
    ]
    assert topics.others[0].ground_truth == "/simtwin/bot2/ground_truth"


def test_two_robots_on_one_topic_are_refused(tmp_path: Path, resources: Path) -> None:
    body = "".join(
        f"<include><name>{n}</name><uri>model://test_bot</uri><pose>{i} 0 0 0 0 0</pose></include>"
        for i, n in enumerate(("a", "b"))
    )
    world = load_world(write(tmp_path, "w.sdf", world_with(body)))
    for m in world.robots:
        assert m.diff_drive is not None
        m.diff_drive.topic = "/cmd_vel"  # as two <topic>cmd_vel</topic> would
    with pytest.raises(ConfigError, match="robots 'a' and 'b' both use topic /cmd_vel"):
        resolve_topics(world)


def test_robot_file_for_a_world_that_has_a_robot(resources: Path) -> None:
    expect("the world already contains robot 'test_bot'", INCLUDES, URDF)


def test_duplicate_model_names(tmp_path: Path) -> None:
    body = "<model name='a'><static>true</static></model>\n<model name='a'><static>true</static></model>"
    expect("a second model named 'a'", write(tmp_path, "w.sdf", world_with(body)))


def test_unknown_relative_to_frame(tmp_path: Path) -> None:
    body = "<model name='a'><static>true</static><link name='l'>\n<pose relative_to='nowhere'>0 0 0 0 0 0</pose></link></model>"
    path = write(tmp_path, "w.sdf", world_with(body))
    expect(f"{path}:4: relative_to='nowhere' names no frame here", path)


def test_model_file_given_as_world(tmp_path: Path) -> None:
    expect(
        "expected <sdf> with a <world>; found <model> (a model file: pass it as the robot)",
        MODELS / "test_bot" / "model.sdf",
    )
    expect("expected an SDF world, found a URDF robot", URDF)


def test_urdf_joint_with_an_undefined_link(tmp_path: Path) -> None:
    text = URDF.read_text().replace('<child link="caster"/>', '<child link="castor"/>')
    path = write(tmp_path, "r.urdf", text)
    expect("joint 'caster_joint' child link 'castor' is not defined", None, path)


def test_broken_xacro(tmp_path: Path) -> None:
    text = XACRO.read_text().replace("${wheel_radius}", "${wheel_radius_typo}", 1)
    path = write(tmp_path, "r.urdf.xacro", text)
    message = expect(f"{path}: xacro failed", None, path)
    assert "wheel_radius_typo" in message


def test_sdf_xacro_world_and_robot_expand_with_their_defaults(tmp_path: Path) -> None:
    """``.sdf.xacro`` files (Nav2's minimal simulations ship them) are expanded like ``xacro FILE`` with the
    arguments' defaults; a mistake inside names the line of that command's output."""
    pytest.importorskip("xacro")
    xmlns = 'xmlns:xacro="http://www.ros.org/wiki/xacro"'
    robot = robot_with().replace(
        '<sdf version="1.9">', f'<sdf version="1.9" {xmlns}>\n<xacro:arg name="ns" default="/r1"/>'
    )
    robot = robot.replace("<wheel_radius>", "<topic>$(arg ns)/cmd_vel</topic><wheel_radius>")
    world = world_with('<xacro:property name="g" value="-9.8"/><gravity>0 0 ${g}</gravity>')
    world = world.replace('<sdf version="1.9">', f'<sdf version="1.9" {xmlns}>')
    spec = load_world(write(tmp_path, "w.sdf.xacro", world), write(tmp_path, "r.sdf.xacro", robot))
    assert spec.gravity == (0.0, 0.0, -9.8)
    assert spec.robot.diff_drive is not None and spec.robot.diff_drive.topic == "/r1/cmd_vel"

    bad = write(tmp_path, "bad.sdf.xacro", robot.replace("<radius>0.05</radius>", "<radius>-1</radius>"))
    import xacro

    line = next(i for i, t in enumerate(xacro.process_file(str(bad)).toprettyxml(indent="  ").splitlines(), 1)
                if "<sphere>" in t)  # fmt: skip
    expect(f"{bad}:{line} (line of `xacro bad.sdf.xacro`'s output): sphere of collision 'c'", None, bad)


def test_gazebo_classic_stock_models_sun_and_ground_plane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gazebo classic's empty.world includes model://sun and model://ground_plane, which every classic
    installation ships: built in when no resource folder has them, the user's folder when one does."""
    body = "<include><uri>model://sun</uri></include><include><uri>model://ground_plane</uri></include>"
    world = write(tmp_path, "empty.world", world_with(body))
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(tmp_path / "models"))
    models = {m.name: m for m in load_world(world).models}
    (plane,) = models["ground_plane"].links[0].collisions
    assert plane.kind == "plane" and plane.friction == 100.0  # classic's ground_plane: mu 100
    own = tmp_path / "models" / "ground_plane"
    own.mkdir(parents=True)
    (own / "model.sdf").write_text(world_with("").replace("<world name=\"w\">", "").replace("</world>", "")
                                   .replace("</sdf>", "<model name='ground_plane'><static>true</static><link name='l'>"
                                   "<collision name='c'><geometry><box><size>9 9 1</size></box></geometry></collision>"
                                   "</link></model></sdf>"))  # fmt: skip
    models = {m.name: m for m in load_world(world).models}
    assert models["ground_plane"].links[0].collisions[0].kind == "box"


def test_static_robot_is_refused(tmp_path: Path) -> None:
    text = robot_with().replace('<model name="r">', '<model name="r"><static>true</static>')
    expect("robot model 'r' is static or jointed to the world", None, write(tmp_path, "r.sdf", text))


def test_links_without_inertial_are_warned_at_load_time(tmp_path: Path) -> None:
    world = load_world(None, write(tmp_path, "r.sdf", robot_with()))
    assert any("r/wheel has no <inertial>" in w for w in world.warnings)
    Physics(world)  # and the defaults simulate


def test_mesh_wheels_become_spheres_of_the_wheel_radius(tmp_path: Path) -> None:
    mesh = MODELS / "mesh_post" / "meshes" / "post.obj"
    text = robot_with().replace(
        '<link name="wheel"><collision name="c"><geometry><sphere><radius>0.05</radius></sphere></geometry>',
        f'<link name="wheel"><collision name="c"><geometry><mesh><uri>{mesh}</uri></mesh></geometry>',
    )
    world = load_world(None, write(tmp_path, "r.sdf", text))
    (geom,) = world.robot.link("wheel").collisions
    assert (geom.kind, geom.size) == ("sphere", (0.05,))
    assert any("mesh wheel collision simulated as a sphere" in w for w in world.warnings)


def test_world_level_oddities_are_warned(tmp_path: Path) -> None:
    sensor = (MODELS / "test_bot" / "model.sdf").read_text()
    lidar = sensor[sensor.index('<sensor name="front_lidar"') : sensor.index("</sensor>") + len("</sensor>")]
    body = f"<model name='post'><static>true</static><link name='l'>{lidar}</link></model>"
    path = write(tmp_path, "w.sdf", world_with(body).replace('version="1.9"', 'version="1.2"'))
    warnings = "\n".join(load_world(path).warnings)
    assert f"{path}:2: SDF version '1.2' is outside 1.4-1.11" in warnings
    assert "lidar on 'post' (not the robot) is not simulated" in warnings
    assert "no static geometry (no ground plane)" in warnings


def test_skid_steer_robot_with_repeated_wheel_joints() -> None:
    world = load_world(None, DATA / "robots" / "skid4.sdf")
    dd = world.robot.diff_drive
    assert dd is not None and dd.left_joints == ["front_left_joint", "rear_left_joint"]
    assert dd.right_joints == ["front_right_joint", "rear_right_joint"]
    p = Physics(world)
    drive(p, 0.5, 0.0, 2.0)
    drive(p, 0.0, 0.0, 1.0)
    assert p.ground_truth().x == pytest.approx(1.0, abs=0.05)
    names, _, velocities = p.joint_states()
    assert len(names) == 4 and all(v == pytest.approx(0.0, abs=0.05) for v in velocities), "stopped wheels"
    drive(p, 0.0, 0.5, 3.0)
    drive(p, 0.0, 0.0, 1.0)
    # all four wheels follow their command; the body turns less because skid steering scrubs sideways
    assert p.odometry().yaw == pytest.approx(1.5, abs=0.05)
    assert 0.5 < yaw(p) < p.odometry().yaw - 0.2


def test_static_mesh_room_collides_as_its_connected_parts(resources: Path) -> None:
    world = load_world(DATA / "worlds" / "mesh_room.sdf")  # one binary STL: 4 walls + a flat floor
    assert any("room.stl collides as 5 convex pieces" in w for w in world.warnings)
    p = Physics(world)
    drive(p, 0.0, 0.0, 0.4)
    assert 0.0 <= p.ground_truth().z < 0.002, "the robot rests on the (thickened) mesh floor"
    scan = p.lidar_scan()
    assert [scan[i] for i in (90, 180, 270)] == pytest.approx([2.0, 2.0 - 0.032, 2.0], abs=0.05)
    drive(p, 0.6, 0.0, 6.0)
    assert 1.9 < p.ground_truth().x + 0.04 < 2.0 + 0.01, "stops at the mesh wall, inside the room"


def test_obj_polygons_and_negative_indices(tmp_path: Path) -> None:
    from pytest_simtwin.sim.world.meshes import connected_parts, load_mesh

    obj = tmp_path / "quads.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1/1/1 2/2/2 3/3/3 4/4/4\n"
                   "v 5 5 5\nv 6 5 5\nv 6 6 5\nv 5 5 6\nf -4 -3 -2\nf -4 -2 -1\n")  # fmt: skip
    vertices, faces = load_mesh(obj)
    assert vertices.shape == (8, 3) and len(faces) == 4  # a quad is two triangles
    assert sorted(map(tuple, vertices[faces[2:]].reshape(-1, 3).round(6).tolist())) == sorted(
        [(5.0, 5.0, 5.0), (6.0, 5.0, 5.0), (6.0, 6.0, 5.0), (5.0, 5.0, 5.0), (6.0, 6.0, 5.0), (5.0, 5.0, 6.0)]
    ), "negative indices count back from the last vertex"
    parts = connected_parts(vertices, faces)
    assert len(parts) == 2
    assert np.ptp(parts[0][:, 2]) == pytest.approx(1e-3), "a flat part is thickened to 1 mm"


def test_corrupt_mesh_file(tmp_path: Path) -> None:
    (tmp_path / "m.stl").write_bytes(b"\x00\x01garbage")
    body = "<model name='m'><static>true</static><link name='l'><collision name='c'><geometry>\n<mesh><uri>m.stl</uri></mesh></geometry></collision></link></model>"
    expect("m.stl is not a valid STL file", write(tmp_path, "w.sdf", world_with(body)))


@pytest.mark.parametrize(
    "axis",
    [
        '<xyz expressed_in="__model__">0 1 0</xyz>',
        "<xyz>0 1 0</xyz><use_parent_model_frame>true</use_parent_model_frame>",
    ],
    ids=["expressed_in", "use_parent_model_frame"],
)
def test_joint_axis_in_the_model_frame(tmp_path: Path, axis: str) -> None:
    text = (MODELS / "test_bot" / "model.sdf").read_text().replace("<xyz>0 0 1</xyz>", axis)
    robot = load_world(None, write(tmp_path, "r.sdf", text)).robot
    joint = next(j for j in robot.joints if j.name == "left_wheel_joint")
    assert joint.axis == pytest.approx((0.0, 0.0, 1.0), abs=1e-6), "model +y is the rolled wheel link's +z"


def test_nested_models_are_flattened(tmp_path: Path, resources: Path) -> None:
    body = """<model name="cart"><pose>0 2 0 0 0 1.5707963</pose>
  <link name="base"><pose>0 0 0.1 0 0 0</pose>
    <collision name="c"><geometry><box><size>0.4 0.2 0.1</size></box></geometry></collision></link>
  <model name="arm"><pose>0.2 0 0.2 0 0 0</pose>
    <link name="l"><collision name="c"><geometry><sphere><radius>0.05</radius></sphere></geometry></collision></link>
  </model>
  <include><uri>model://test_crate</uri><name>load</name><pose>-0.1 0 0.3 0 0 0</pose></include>
  <joint name="mount" type="fixed"><parent>base</parent><child>arm::l</child></joint>
  <joint name="strap" type="fixed"><parent>base</parent><child>load::body</child></joint>
</model>
<model name="ground"><static>true</static><link name="g"><collision name="p"><geometry><plane><normal>0 0 1</normal></plane></geometry></collision></link></model>"""
    world = load_world(write(tmp_path, "w.sdf", world_with(body)))
    cart = next(m for m in world.models if m.name == "cart")
    assert [link.name for link in cart.links] == ["base", "arm::l", "load::body"]
    assert cart.link("arm::l").pose == Pose(0.2, 0, 0.2)
    assert cart.link("load::body").pose.z == pytest.approx(0.3)
    p = Physics(world)
    p.step(100)
    state = p.entity_state("cart")["pose"]
    assert (state["x"], state["y"], state["yaw"]) == pytest.approx((0.0, 2.0, math.pi / 2), abs=0.01)


def test_a_robot_placed_into_the_ground_is_lifted(tmp_path: Path) -> None:
    world = load_world(None, write(tmp_path, "r.sdf", robot_with()))  # wheel sphere r 0.05 centred at z 0
    assert world.robot.pose.z == pytest.approx(0.05)
    assert any("placed 0.050 m into the ground; lifted to z = 0.050 m" in w for w in world.warnings)
    pose = Pose(1.0, 0.0, 0.2, 0.0, 0.0, 0.0)  # an explicit spawn height above ground is kept
    assert load_world(None, write(tmp_path, "r2.sdf", robot_with()), pose).robot.pose == pose


def test_plane_normal_tilts_the_plane(tmp_path: Path) -> None:
    body = """<model name="ground"><static>true</static><link name="l"><collision name="p">
<geometry><plane><normal>0 0 1</normal></plane></geometry></collision></link></model>
<model name="wall"><static>true</static><pose>2 0 0 0 0 0</pose><link name="l"><collision name="p">
<geometry><plane><normal>-1 0 0</normal></plane></geometry></collision></link></model>"""
    world = load_world(write(tmp_path, "w.sdf", world_with(body)))
    tilt = next(m for m in world.models if m.name == "wall").links[0].collisions[0].pose
    assert tilt.rotation() @ np.array([0, 0, 1.0]) == pytest.approx([-1.0, 0.0, 0.0], abs=1e-9)
    p = Physics(world)
    assert p.lidar_scan()[0] == pytest.approx(2.0 + 0.032, abs=0.05), "the lidar sees the vertical plane at x = 2"


def test_ros2_control_robots_get_a_clear_error(tmp_path: Path) -> None:
    plugin = '<plugin filename="gz_ros2_control-system" name="gz_ros2_control::GazeboSimROS2ControlPlugin"/>'
    robot = write(tmp_path, "r.sdf", robot_with(plugin=plugin))
    # ros2_control robots are simulated (tests/sim/test_ros2_control.py); one without its controller file says so
    message = expect(f"{robot}:7: the ros2_control plugin names no controller file", None, robot)
    assert "<parameters>" in message and "diff_drive_controller" in message
    world_text = world_with(robot.read_text().split('<sdf version="1.9">')[1].replace("</sdf>", ""))
    expect("the ros2_control plugin names no controller file", write(tmp_path, "w.sdf", world_text))
    urdf = URDF.read_text().replace("gz-sim-diff-drive-system", "gz_ros2_control-system")
    expect("the ros2_control plugin names no controller file", None, write(tmp_path, "r.urdf", urdf))
