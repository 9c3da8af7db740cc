"""More public robots used as shipped (tests/robots/*/SOURCE.md), through the real simulator process:
each drives 0.2 m/s for 2 s to 0.40 +/- 0.06 m of ground truth, turns 0.5 rad/s for 2 s to about 1 rad,
stays level, sees a spawned box with each of its lidars and publishes what its bridge / plugin names.

* gazebosim/ros_gz_project_template: `ros_gz_example_gazebo/worlds/diff_drive.sdf` (its robot an
  `<include merge="true">` of `package://ros_gz_example_description/models/diff_drive`, found through
  GZ_SIM_RESOURCE_PATH = the share folder as the package's env hook sets it) with its bridge file
  `ros_gz_example_bridge.yaml`, as `diff_drive.launch.py` starts them.
* Husarion ROSbot 2R (husarion/rosbot_ros + ros_components_description), a four-wheel skid-steer robot on
  gz_ros2_control's diff_drive_controller, xacro'd with spawn.launch.py's arguments, its bridge file
  `gz_remappings.yaml`; four 1-ray ToF sensors and an RPLidar A2 (mounted facing backwards).
* Husarion ROSbot XL (husarion/rosbot_xl_ros), four-wheel skid steer on diff_drive_controller, RPLidar S3.
* iRobot Create 3 (iRobotEducation/create3_sim): gz_ros2_control diff_drive_controller (its YAML nests
  `/**: controller_manager:` as rcl allows), a bumper collision mesh, 4 cliff and 7 IR intensity
  ray sensors (resolution 1.0 m on a 0.2 m range, not quantised, as gz-sensors).
* Clearpath Jackal (J100): clearpath_config's `j100_dual_laser.yaml` sample through clearpath's description
  generator (output vendored), ros2_control diff_drive_controller, two Hokuyo UST lidars.
* AgileX LIMO (agilexrobotics/limo_ros2) in its four-wheel differential (skid-steer) form: Gazebo classic
  gazebo_ros_diff_drive with num_wheel_pairs 2; its Ackermann form is a clear "not yet".
* gazebosim/docs (Harmonic): the tutorial worlds `moving_robot.sdf` and `sensor_tutorial.sdf`, run as
  `gz sim FILE`; `building_robot.sdf` has no drive (a clear error, not a robot added silently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from public_robot_checks import ament_prefix, create3_urdf, drive_turn_and_look, run_xacro
from simproc import SimProcess
from test_sim_process import latest_at

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.topics import load_bridge
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
TEMPLATE = ROBOTS / "ros_gz_project_template"
TUTORIALS = ROBOTS / "gazebo_docs_tutorials"
ROSBOT = ROBOTS / "rosbot"
EMPTY = ROBOTS / "turtlebot3" / "turtlebot3_gazebo" / "worlds" / "empty_world.world"
LIMO = ROBOTS / "limo"
JACKAL = ROBOTS / "clearpath_j100"
ROSBOT_XL = ROBOTS / "rosbot_xl"
ROSBOT_PACKAGES = ("rosbot_description", "rosbot_controller", "rosbot_gazebo", "ros_components_description")


def test_ros_gz_project_template_diff_drive_as_its_launch_file_runs_it(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import JointState

    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TEMPLATE))  # the package's dsv hook: <prefix>/share
    world_file = TEMPLATE / "ros_gz_example_gazebo" / "worlds" / "diff_drive.sdf"
    bridge_file = TEMPLATE / "ros_gz_example_bringup" / "config" / "ros_gz_example_bridge.yaml"
    world = load_world(world_file)
    sim: SimProcess = sim_factory(
        str(world_file), "--bridge", str(bridge_file), "--paused", wait_topic="/diff_drive/odometry"
    )
    topics = sim.control.features()["topics"]
    assert (topics["cmd_vel"], topics["odom"]) == ("/diff_drive/cmd_vel", "/diff_drive/odometry")
    # merge="true": the included model's joints keep their names (no "diff_drive::" prefix)
    assert {j.name for j in world.robot.joints} >= {"left_wheel_joint", "right_wheel_joint", "caster_wheel"}
    out = drive_turn_and_look(sim, world, "diff_drive", "/diff_drive/cmd_vel", bridge=load_bridge(bridge_file))
    assert set(out.ranges) == {"/diff_drive/scan"}
    st = sim.control.step(duration=1.0)
    odom = latest_at(sim, "/diff_drive/odometry", st, Odometry, rate=1.0)  # odom_publish_frequency 1
    assert (odom.header.frame_id, odom.child_frame_id) == ("diff_drive/odom", "diff_drive/chassis")
    joints = sim.ros.subscribe("/joint_states", JointState)
    sim.control.step(duration=0.2)
    wait_until(lambda: joints.latest(), 5.0, what="/joint_states")
    joints = joints.latest()
    assert {"left_wheel_joint", "right_wheel_joint"} <= set(joints.name)


def test_gazebo_tutorial_moving_robot_drives_on_cmd_vel(sim_factory: Any) -> None:
    world_file = TUTORIALS / "moving_robot.sdf"
    sim: SimProcess = sim_factory(str(world_file), "--paused", wait_topic="/model/vehicle_blue/odometry")
    drive_turn_and_look_no_lidar(sim, "vehicle_blue", "/cmd_vel")


def drive_turn_and_look_no_lidar(sim: SimProcess, name: str, cmd: str) -> None:
    """The tutorial's moving robot has no lidar: drive and turn only."""
    import math

    from test_multi_robot import pose, send

    sim.control.step(duration=0.5)
    start = pose(sim, name)
    send(sim, cmd, 0.2)
    sim.control.step(duration=2.0)
    send(sim, cmd, 0.0, 0.5)
    moved = pose(sim, name)
    sim.control.step(duration=2.0)
    send(sim, cmd, 0.0)
    sim.control.step(duration=0.5)
    end = pose(sim, name)
    # no acceleration limits in the tutorial's DiffDrive: the full 0.4 m
    assert math.hypot(moved["x"] - start["x"], moved["y"] - start["y"]) == pytest.approx(0.40, abs=0.06)
    assert math.remainder(end["yaw"] - moved["yaw"], 2 * math.pi) == pytest.approx(1.0, abs=0.15)
    assert max(abs(end["roll"]), abs(end["pitch"])) < 0.03, end
    print(f"{name}: drove {math.hypot(moved['x'] - start['x'], moved['y'] - start['y']):.3f} m, turned "
          f"{math.remainder(end['yaw'] - moved['yaw'], 2 * math.pi):.3f} rad")  # fmt: skip


def test_gazebo_tutorial_sensor_world_drives_and_its_lidar_sees_a_box(sim_factory: Any) -> None:
    """sensor_tutorial.sdf: the robot starts at z 1 and drops; its lidar publishes /lidar (the tutorial
    bridges it with `ros_gz_bridge parameter_bridge /lidar@sensor_msgs/msg/LaserScan[gz.msgs.LaserScan`)."""
    world_file = TUTORIALS / "sensor_tutorial.sdf"
    world = load_world(world_file)
    sim: SimProcess = sim_factory(str(world_file), "--paused", wait_topic="/model/vehicle_blue/odometry")
    out = drive_turn_and_look(sim, world, "vehicle_blue", "/cmd_vel", settle=1.5)
    assert set(out.ranges) == {"/lidar"}


def test_gazebo_tutorial_building_robot_without_a_drive_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match=r"building_robot\.sdf: world 'car_world' has no model with a DiffDrive"):
        load_world(TUTORIALS / "building_robot.sdf")


def _rosbot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mecanum: str = "False") -> tuple[Path, Path]:
    """The ROSbot URDF and bridge file as spawn.launch.py makes them (xacro arguments, ReplaceString)."""
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the ROSbot description")
    ament_prefix(tmp_path, ROSBOT, ROSBOT_PACKAGES, monkeypatch)
    urdf = run_xacro(
        ROSBOT / "rosbot_description" / "urdf" / "rosbot.urdf.xacro", tmp_path / "rosbot.urdf",
        mecanum=mecanum, use_sim="True", use_gpu="True", simulation_engine="ignition-gazebo", namespace="",
    )  # fmt: skip
    bridge = tmp_path / "gz_remappings.yaml"
    bridge.write_text(
        (ROSBOT / "rosbot_gazebo" / "config" / "gz_remappings.yaml").read_text().replace("<robot_namespace>", "")
    )
    return urdf, bridge


def test_rosbot_2r_skid_steer_drives_turns_and_sees_with_its_five_range_sensors(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nav_msgs.msg import Odometry

    urdf, bridge = _rosbot(tmp_path, monkeypatch)
    world = load_world(EMPTY, urdf, Pose(), robot_name="rosbot")
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", "rosbot", "--bridge", str(bridge), "--paused",
        wait_topic="/rosbot_base_controller/odom",
    )  # fmt: skip
    topics = sim.control.features()["topics"]
    # the plugin's <remapping>rosbot_base_controller/cmd_vel_unstamped:=cmd_vel</remapping>
    assert (topics["cmd_vel"], topics["cmd_vel_type"]) == ("/cmd_vel", "twist")
    # skid-steer: the 1 rad is reached through the controller's wheel_separation_multiplier 1.45 and mu 1
    # on every wheel (their anisotropic fdir1 / mu2 0 is reported, not simulated): measured 1.11 rad
    out = drive_turn_and_look(sim, world, "rosbot", "/cmd_vel", bridge=load_bridge(bridge))
    # the ToF sensors' <noise><mean>0.1</mean> and <resolution>0.02</resolution> show in their readings
    assert set(out.ranges) == {"/scan", "/range/fl", "/range/fr", "/range/rl", "/range/rr"}
    st = sim.control.step(duration=0.2)
    odom = latest_at(sim, "/rosbot_base_controller/odom", st, Odometry, rate=20.0)
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")


def test_rosbot_mecanum_variant_is_a_clear_not_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urdf, _ = _rosbot(tmp_path, monkeypatch, mecanum="True")
    with pytest.raises(
        ModelError, match=r"mecanum_drive_controller/MecanumDriveController.*is not yet supported"
    ) as info:
        load_world(EMPTY, urdf)
    assert "rosbot.urdf:" in str(info.value) and "mecanum_drive_controller.yaml" in str(info.value)


def test_a_gazebo_collision_block_gives_every_collision_of_its_link_the_surface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sdformat's URDF parser copies `<gazebo reference="LINK"><collision>`'s children into each collision
    of the link; the ROSbot's wheels carry mu 1 / mu2 0 along fdir1 there (anisotropic: reported)."""
    urdf, _ = _rosbot(tmp_path, monkeypatch)
    world = load_world(EMPTY, urdf)
    assert [g.friction for g in world.robot.link("fl_wheel_link").collisions] == [1.0]
    assert [g.friction for g in world.robot.link("body_link").collisions] == [None]  # no block: the default
    notes = [w for w in world.warnings if "anisotropic friction" in w]
    assert len(notes) == 4 and all("rosbot.urdf:" in w and "<mu2> 0, <fdir1>" in w for w in notes), notes
    urdf.write_text(urdf.read_text().replace("<mu>1.0</mu>", "<mu>0.4</mu>"))
    assert [g.friction for g in load_world(EMPTY, urdf).robot.link("fl_wheel_link").collisions] == [0.4]


def test_create3_drives_turns_and_its_ir_sensors_see_a_box(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nav_msgs.msg import Odometry

    urdf = create3_urdf(tmp_path, monkeypatch)
    world = load_world(EMPTY, urdf, Pose(), robot_name="create3")
    dd = world.robot.diff_drive
    assert dd is not None and (dd.wheel_separation, dd.wheel_radius) == (0.233, 0.03575)
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", "create3", "--paused", wait_topic="/odom"
    )
    cmd = "/diffdrive_controller/cmd_vel_unstamped"  # use_stamped_vel: false
    out = drive_turn_and_look(sim, world, "create3", cmd)
    ir = {t for t in out.ranges if "ir_intensity" in t}
    assert len(ir) == 7 and len(out.ranges) == 7, out.ranges  # the 4 cliff sensors look down: skipped
    st = sim.control.step(duration=0.2)
    odom = latest_at(sim, "/odom", st, Odometry, rate=62.0)
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")


def test_limo_four_wheel_diff_drives_and_turns_as_its_friction_makes_it(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the LIMO description")
    ament_prefix(tmp_path, LIMO, ("limo_description",), monkeypatch)
    urdf = run_xacro(LIMO / "limo_description" / "urdf" / "limo_four_diff.xacro", tmp_path / "limo.urdf")
    name = "limo_description"  # spawn_entity.py -entity
    world = load_world(EMPTY, urdf, Pose(), robot_name=name)
    dd = world.robot.diff_drive
    assert dd is not None and len(dd.left_joints) == 2 and len(dd.right_joints) == 2  # num_wheel_pairs 2
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", name, "--paused", wait_topic="/odometry"
    )  # <remapping>odom:=/odometry</remapping>
    # skid steer without an ICR correction (wheel_separation 0.172 m is the track): four wheels with mu 100
    # scrub sideways, so 0.5 rad/s for 2 s turns it about 0.39 rad (measured), like any such robot
    out = drive_turn_and_look(sim, world, name, "/cmd_vel", turn=None)
    assert 0.25 < out.turned < 0.6, out
    assert out.drift < 0.03 and set(out.ranges) == {"/scan"}


def test_limo_ackermann_form_is_a_clear_not_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the LIMO description")
    ament_prefix(tmp_path, LIMO, ("limo_description",), monkeypatch)
    with pytest.raises(
        ModelError,
        match=r"limo_ackerman\.xacro:\d+ \(line of `xacro limo_ackerman\.xacro`'s output\): .*'libgazebo_ros_ackerman\.so', an Ackermann steering drive; not yet supported",
    ):
        load_world(EMPTY, LIMO / "limo_description" / "urdf" / "limo_ackerman.xacro")


@pytest.mark.parametrize(
    ("filename", "name", "what"),
    [
        ("gz-sim-ackermann-steering-system", "gz::sim::systems::AckermannSteering", "an Ackermann steering drive"),
        ("gz-sim-mecanum-drive-system", "gz::sim::systems::MecanumDrive", "a mecanum drive"),
        ("libgazebo_ros_planar_move.so", "planar", "a planar-move"),
    ],
)
def test_a_world_robot_with_another_drive_is_a_clear_not_yet(
    tmp_path: Path, filename: str, name: str, what: str
) -> None:
    world = tmp_path / "w.sdf"
    world.write_text(
        '<?xml version="1.0"?>\n<sdf version="1.9"><world name="w"><model name="car">\n'
        '<link name="base"/><link name="wheel"/>\n'
        '<joint name="j" type="revolute"><parent>base</parent><child>wheel</child><axis><xyz>0 1 0</xyz></axis></joint>\n'
        f'<plugin filename="{filename}" name="{name}"/>\n</model></world></sdf>\n'
    )
    with pytest.raises(
        ModelError, match=rf"w\.sdf:5: robot model 'car' is driven by plugin '{filename}', {what}.*not yet"
    ):
        load_world(world)


def test_rosbot_xl_skid_steer_drives_turns_and_its_lidar_sees_a_box(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the ROSbot XL description")
    prefix = tmp_path / "install" / "share"
    ament_prefix(
        tmp_path, ROSBOT_XL, ("rosbot_xl_description", "rosbot_xl_controller", "rosbot_xl_gazebo"), monkeypatch
    )
    (prefix / "ros_components_description").symlink_to(ROSBOT / "ros_components_description")
    (prefix / "ament_index" / "resource_index" / "packages" / "ros_components_description").touch()
    urdf = run_xacro(
        ROSBOT_XL / "rosbot_xl_description" / "urdf" / "rosbot_xl.urdf.xacro", tmp_path / "rosbot_xl.urdf",
        use_sim="True", mecanum="False", lidar_model="slamtec_rplidar_s3", camera_model="intel_realsense_d435",
        include_camera_mount="False", simulation_engine="ignition-gazebo", namespace="",
        controller_config_file=str(prefix / "rosbot_xl_controller" / "config" / "diff_drive_controller.yaml"),
    )  # fmt: skip
    bridge = tmp_path / "lidar_bridge.yaml"
    source = ROSBOT_XL / "rosbot_xl_gazebo" / "config" / "gz_slamtec_rplidar_remappings.yaml"
    bridge.write_text(source.read_text().replace("<robot_namespace>", ""))
    world = load_world(EMPTY, urdf, Pose(), robot_name="rosbot_xl")
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", "rosbot_xl", "--bridge", str(bridge), "--paused",
        wait_topic="/rosbot_xl_base_controller/odom",
    )  # fmt: skip
    # skid steer on mu-1 wheels: the turn depends on the mass the wheels carry. Measured 0.82 rad with its
    # 3.9 kg (antenna_link and camera_mount_*_link have no <inertial> and are lumped into their parents,
    # adding no mass as in sdformat; at 1 kg each it over-turned 1.20); docs/robots-and-topics.md
    out = drive_turn_and_look(sim, world, "rosbot_xl", "/cmd_vel", bridge=load_bridge(bridge), turn=None)
    assert 0.7 < out.turned < 1.4, out
    assert set(out.ranges) == {"/scan"}


def test_controller_yaml_dotted_and_namespace_nested_forms_read_as_ros_does(tmp_path: Path) -> None:
    """ROS 2 parameter files may dot names (Clearpath: `platform_velocity_controller.type: ...`) and nest
    node names under namespaces (Create 3: `/**: controller_manager: ros__parameters:`)."""
    from test_ros2_control import URDF, YAML, _empty

    folder = tmp_path / "gz_ros2_control_demos"
    (folder / "urdf").mkdir(parents=True)
    (folder / "config").mkdir()
    (folder / "urdf" / URDF.name).write_text(URDF.read_text())
    text = YAML.read_text()
    edited = text.replace(
        "    joint_state_broadcaster:\n      type: joint_state_broadcaster/JointStateBroadcaster\n",
        "    joint_state_broadcaster.type: joint_state_broadcaster/JointStateBroadcaster\n"
        "    diff_drive_base_controller.type: diff_drive_controller/DiffDriveController\n",
    ).replace("    type: diff_drive_controller/DiffDriveController\n", "", 1)
    assert edited.count("diff_drive_controller/DiffDriveController") == 1 and ".type:" in edited
    nested = "/**:\n" + "".join(f"  {line}\n" if line else "\n" for line in edited.splitlines())
    for variant in (edited, nested):
        (folder / "config" / YAML.name).write_text(variant)
        dd = load_world(_empty(tmp_path), robot=folder / "urdf" / URDF.name).robot.diff_drive
        assert dd is not None and (dd.wheel_separation, dd.wheel_radius) == (1.25, 0.3)


def test_clearpath_jackal_from_its_robot_yaml_drives_and_both_lidars_see_a_box(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the Jackal description")
    packages = ("clearpath_platform_description", "clearpath_sensors_description", "clearpath_control")
    ament_prefix(tmp_path, JACKAL, packages, monkeypatch)
    urdf = run_xacro(
        JACKAL / "setup" / "robot.urdf.xacro", tmp_path / "robot.urdf", is_sim="true", namespace="j100_0000"
    )
    name = "j100-0000"  # the generated <robot name> (serial_number)
    world = load_world(EMPTY, urdf, Pose(), robot_name=name)
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", name, "--paused", wait_topic="/j100_0000/platform/odom"
    )
    # four wheels, wheel_separation_multiplier 1.5 (skid steer): measured 1.06 rad, centre 0.06 m off
    out = drive_turn_and_look(sim, world, name, "/j100_0000/platform/cmd_vel_unstamped")
    assert set(out.ranges) == {"/j100_0000/sensors/lidar2d_0/scan", "/j100_0000/sensors/lidar2d_1/scan"}


@pytest.mark.parametrize("order", ["ros2_control_first", "diff_drive_first"])
def test_a_ros2_control_plugin_without_a_drive_next_to_a_diff_drive_plugin_is_not_an_error(
    tmp_path: Path, order: str
) -> None:
    """The TurtleBot3 + OpenMANIPULATOR-X: gazebo_ros_diff_drive drives the base, a gazebo_ros2_control
    plugin runs the arm's controllers (reported; position joints are held, tests/sim/test_turtlebot3_manipulation.py).
    Alone, such a plugin still errors."""
    from test_ros2_control import URDF, YAML, _empty

    folder = tmp_path / "gz_ros2_control_demos"
    (folder / "urdf").mkdir(parents=True)
    (folder / "config").mkdir()
    arm = "controller_manager:\n  ros__parameters:\n    arm_controller:\n      type: joint_trajectory_controller/JointTrajectoryController\n"
    (folder / "config" / YAML.name).write_text(arm)
    classic = (
        '<gazebo><plugin name="diff_drive" filename="libgazebo_ros_diff_drive.so"><left_joint>left_wheel_joint'
        "</left_joint><right_joint>right_wheel_joint</right_joint><wheel_separation>1.25</wheel_separation>"
        "<wheel_diameter>0.6</wheel_diameter></plugin></gazebo>"
    )
    text = URDF.read_text()
    at = text.index("  <gazebo>") if order == "diff_drive_first" else text.rindex("</robot>")
    robot = folder / "urdf" / URDF.name
    robot.write_text(text[:at] + classic + "\n" + text[at:])
    world = load_world(_empty(tmp_path), robot=robot)
    assert world.robot.diff_drive is not None and world.robot.diff_drive.kind == "gazebo_ros_diff_drive"
    assert any("drives no wheels" in w and "arm_controller (joint_trajectory_controller" in w for w in world.warnings)
    robot.write_text(text)
    with pytest.raises(ModelError, match=r"no diff_drive_controller/DiffDriveController .*arm_controller"):
        load_world(_empty(tmp_path), robot=robot)
