"""Public robots and worlds, used as shipped: TurtleBot3 burger / waffle / waffle_pi (turtlebot3_gazebo,
vendored under tests/robots/turtlebot3) in turtlebot3_world, turtlebot3_house and empty_world, driven by
the real simulator process over real ROS topics (/cmd_vel in, /odom and /scan out).

The robot is placed as the turtlebot3_gazebo launch files spawn it (x -2.0, y -0.5, z 0.01 in
turtlebot3_world and turtlebot3_house, the origin in empty_world), with GZ_SIM_RESOURCE_PATH on the
package's models folder like those launch files set it. Three combinations (each model once, each world
once) run by default; the full 3 x 3 matrix is marked slow.

Also, each as its launch files run it (vendored under tests/robots/<name>, see their SOURCE.md): Nav2's
minimal TurtleBot3 simulation (xacro world and robot, bridge file), ros_gz_sim_demos' vehicle
(<include merge>), linorobot2's 2wd (Gazebo classic plugins), gz-sim's visualize_lidar.sdf and
diff_drive.sdf. The checks (drive 0.40 m, turn 1.0 rad in place, level, a box seen at 1 m) are the
shared helpers below.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess
from test_sim_process import command, latest_at, truth

from pytest_simtwin.sim.world.model import ModelSpec, Pose
from pytest_simtwin.sim.world.sdf import load_world

TB3 = Path(__file__).resolve().parents[1] / "robots" / "turtlebot3" / "turtlebot3_gazebo"
SPAWN = {"empty_world": (0.0, 0.0), "turtlebot3_world": (-2.0, -0.5), "turtlebot3_house": (-2.0, -0.5)}
FAST = {("burger", "turtlebot3_world"), ("waffle", "turtlebot3_house"), ("waffle_pi", "empty_world")}
MATRIX = [
    pytest.param(model, world, id=f"{model}-{world}", marks=() if (model, world) in FAST else pytest.mark.slow)
    for model in ("burger", "waffle", "waffle_pi")
    for world in ("turtlebot3_world", "turtlebot3_house", "empty_world")
]


def _tilt(pose: dict[str, float]) -> float:
    return max(abs(pose["roll"]), abs(pose["pitch"]))


def drives_turns_and_stays_level(
    sim: SimProcess, send: Callable[[float, float], None], odom: str = "/odom", odom_rate: float = 30.0
) -> tuple[dict[str, float], dict[str, float]]:
    """Settle, drive 0.2 m/s for 2 s (``send(vx, wz)`` commands the robot): 0.40 m of ground truth, the
    odometry agrees, the robot stays level. Returns the ground-truth poses before and after."""
    sim.control.step(duration=0.3)  # settle on the ground
    start = truth(sim)["pose"]
    send(0.2, 0.0)
    sim.control.step(duration=2.0)
    send(0.0, 0.0)
    st = sim.control.step(duration=1.0)
    after_drive = truth(sim)["pose"]
    distance = math.hypot(after_drive["x"] - start["x"], after_drive["y"] - start["y"])
    # max_linear_acceleration 1.0 in these models: 0.2 m/s is reached after 0.2 s -> 0.38 m in 2 s
    assert distance == pytest.approx(0.40, abs=0.06)
    moved = latest_at(sim, odom, st, rate=odom_rate).pose.pose.position
    assert math.hypot(moved.x, moved.y) == pytest.approx(distance, abs=0.02), "wheels grip: odometry = ground truth"
    assert _tilt(after_drive) < 0.03, after_drive
    return start, after_drive


def axle_centre(robot: ModelSpec) -> tuple[float, float]:
    """The midpoint between the (first) left and right wheel joints in the model frame: what a
    differential drive turns about."""
    assert robot.diff_drive is not None
    links = {link.name: link for link in robot.links}
    joints = {j.name: j for j in robot.joints}
    ends = [joints[names[0]] for names in (robot.diff_drive.left_joints, robot.diff_drive.right_joints)]
    points = [links[j.child].pose * j.pose for j in ends]
    return ((points[0].x + points[1].x) / 2, (points[0].y + points[1].y) / 2)


def turns_in_place(
    sim: SimProcess, send: Callable[[float, float], None], before: dict[str, float], axle: tuple[float, float] = (0, 0)
) -> None:
    """0.5 rad/s for 2 s turns 1.0 rad about the wheel axle's centre (``axle`` in the model frame) and
    the robot stays level."""
    send(0.0, 0.5)
    sim.control.step(duration=2.0)
    send(0.0, 0.0)
    sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    turned = math.remainder(end["yaw"] - before["yaw"], 2 * math.pi)
    assert turned == pytest.approx(1.0, abs=0.15)

    def centre(p: dict[str, float]) -> tuple[float, float]:
        c, s = math.cos(p["yaw"]), math.sin(p["yaw"])
        return (p["x"] + c * axle[0] - s * axle[1], p["y"] + s * axle[0] + c * axle[1])

    assert math.dist(centre(end), centre(before)) < 0.03, "turns in place"
    assert _tilt(end) < 0.03, end


def sees_a_box_ahead(sim: SimProcess, robot: ModelSpec, at: dict[str, float], topic: str, frame_id: str) -> None:
    """A box spawned 1 m straight ahead of the robot's (first) lidar shows at 1 m on ``topic``."""
    from sensor_msgs.msg import LaserScan

    lidar = robot.lidars[0]
    sensor = robot.link(lidar.link).pose * lidar.pose
    yaw = at["yaw"]
    sx = at["x"] + sensor.x * math.cos(yaw) - sensor.y * math.sin(yaw)
    sy = at["y"] + sensor.x * math.sin(yaw) + sensor.y * math.cos(yaw)
    depth = 0.1
    centre = 1.0 + depth / 2
    pose = {"x": sx + centre * math.cos(yaw), "y": sy + centre * math.sin(yaw), "z": 0.25, "yaw": yaw}
    sim.control.spawn("target", "box", [depth, 0.6, 0.5], pose)
    st = sim.control.step(duration=2.5 / lidar.update_rate)  # two scan periods
    scan = latest_at(sim, topic, st, LaserScan, rate=lidar.update_rate)
    assert scan.header.frame_id == frame_id
    ahead = round((0.0 - scan.angle_min) / scan.angle_increment)
    assert scan.ranges[ahead] == pytest.approx(1.0, abs=0.05), scan.ranges[max(0, ahead - 1) : ahead + 2]
    sim.control.delete("target")


@pytest.mark.parametrize(("model", "world"), MATRIX)
def test_turtlebot3_drives_turns_stays_level_and_sees_a_box(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch, model: str, world: str
) -> None:
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TB3 / "models"))
    world_file, robot_file = TB3 / "worlds" / f"{world}.world", TB3 / "models" / f"turtlebot3_{model}" / "model.sdf"
    x, y = SPAWN[world]
    sim: SimProcess = sim_factory(
        str(world_file), "--robot", str(robot_file), f"--robot-pose={x},{y},0.01,0,0,0", "--paused"
    )
    send = functools.partial(command, sim)
    start, after_drive = drives_turns_and_stays_level(sim, send)
    assert start["x"] == pytest.approx(x, abs=0.01) and start["y"] == pytest.approx(y, abs=0.01)
    # lidar (index 0 = straight ahead, min_angle 0)
    robot = load_world(world_file, robot_file, Pose(x, y, 0.01)).robot
    sees_a_box_ahead(sim, robot, after_drive, "/scan", "base_scan")
    turns_in_place(sim, send, after_drive)


NAV2_TB3 = Path(__file__).resolve().parents[1] / "robots" / "nav2_minimal_tb3" / "nav2_minimal_tb3_sim"


NAV2_TB3_LAUNCHES = [
    # nav2_bringup tb3_simulation_launch.py + spawn_tb3.launch.py
    pytest.param("tb3_sandbox", "gz_waffle", "turtlebot3_waffle_bridge", "/imu", id="tb3_sandbox"),
    # the GPS demo: spawn_tb3_gps.launch.py in tb3_empty_world (spherical coordinates, a navsat sensor)
    pytest.param("tb3_empty_world", "gz_waffle_gps", "turtlebot3_waffle_gps_bridge", "/imu/data", id="gps"),
]


@pytest.mark.parametrize(("world", "robot", "bridge", "imu_topic"), NAV2_TB3_LAUNCHES)
def test_nav2_minimal_tb3_sim_as_its_launch_files_run_it(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch, world: str, robot: str, bridge: str, imu_topic: str
) -> None:
    """Nav2's minimal TurtleBot3 simulation as its launch files run it: the xacro world and robot
    (expanded with their default arguments: headless, namespace ''), spawned at the launch pose
    (-2, -0.5, 0.01) with its GZ_SIM_RESOURCE_PATH, topics as its bridge file names them."""
    from sensor_msgs.msg import Imu, JointState, NavSatFix

    from pytest_simtwin.sim import msgbuild

    msgbuild.ensure("tf2_msgs")  # not on PyPI: built from its .msg at first use (cached)
    from tf2_msgs.msg import TFMessage

    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", f"{NAV2_TB3 / 'models'}:{NAV2_TB3.parent}")
    world_file, robot_file = NAV2_TB3 / "worlds" / f"{world}.sdf.xacro", NAV2_TB3 / "urdf" / f"{robot}.sdf.xacro"
    bridge_file = NAV2_TB3 / "configs" / f"{bridge}.yaml"
    sim: SimProcess = sim_factory(
        str(world_file), "--robot", str(robot_file), "--robot-pose=-2,-0.5,0.01,0,0,0", "--bridge", str(bridge_file),
        "--paused",
    )  # fmt: skip
    assert {"ground_plane", "turtlebot3_waffle"} <= set(sim.control.entities())
    imu, joints = sim.ros.subscribe(imu_topic, Imu), sim.ros.subscribe("/joint_states", JointState)
    tf, gps = sim.ros.subscribe("/tf", TFMessage), sim.ros.subscribe("/gps/fix", NavSatFix)
    send = functools.partial(command, sim)  # /cmd_vel, TwistStamped in the bridge file: both types are taken
    start, after_drive = drives_turns_and_stays_level(sim, send)
    assert (start["x"], start["y"]) == (pytest.approx(-2.0, abs=0.01), pytest.approx(-0.5, abs=0.01))
    robot_spec = load_world(world_file, robot_file, Pose(-2.0, -0.5, 0.01)).robot
    sees_a_box_ahead(sim, robot_spec, after_drive, "/scan", "base_scan")
    turns_in_place(sim, send, after_drive)

    assert imu.count > 0 and imu.latest().header.frame_id == "imu_link"
    assert {"wheel_left_joint", "wheel_right_joint"} <= set(joints.latest().name)
    frames = {(t.header.frame_id, t.child_frame_id) for m in tf.messages() for t in m.transforms}
    assert ("odom", "base_footprint") in frames  # the DiffDrive's <tf_topic>/tf</tf_topic>, bridged as "tf"
    if robot == "gz_waffle_gps":  # 1 Hz fixes around the world origin (55.944831 N, 3.186998 W), ENU
        fix, at = gps.latest(), truth(sim)["pose"]
        lat = 55.944831 + math.degrees(at["y"] / 6378137.0)
        lon = -3.186998 + math.degrees(at["x"] / (6378137.0 * math.cos(math.radians(55.944831))))
        assert fix.header.frame_id == "gps_link"
        assert (fix.latitude, fix.longitude) == (pytest.approx(lat, abs=5e-6), pytest.approx(lon, abs=5e-6))
    else:
        assert "turtlebot3_world" in sim.control.entities() and gps.count == 0


GZ_DEMOS = Path(__file__).resolve().parents[1] / "robots" / "ros_gz_sim_demos"


def test_ros_gz_sim_demos_vehicle_with_its_merged_include(sim_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ros_gz_sim_demos' worlds/vehicle.sdf as sdf_parser.launch.py runs it: model "vehicle" includes
    package://ros_gz_sim_demos/models/vehicle with merge="true" (its links, joints and DiffDrive join
    the outer model un-prefixed, as sdformat merges them), driven on /model/vehicle/cmd_vel with
    odometry on /model/vehicle/odometry at the plugin's 1 Hz; its ball caster rolls."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import JointState

    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(GZ_DEMOS))  # the package's hook: <share> on the path
    world = GZ_DEMOS / "ros_gz_sim_demos" / "worlds" / "vehicle.sdf"
    sim: SimProcess = sim_factory(str(world), "--paused", wait_topic="/model/vehicle/odometry")
    assert set(sim.control.entities()) >= {"vehicle", "ground_plane"}
    joints = sim.ros.subscribe("/joint_states", JointState)
    odom = sim.ros.subscribe("/model/vehicle/odometry", Odometry)
    send = functools.partial(_twist, sim, "/model/vehicle/cmd_vel")
    _, after_drive = drives_turns_and_stays_level(sim, send, odom="/model/vehicle/odometry", odom_rate=1.0)
    # gz DiffDrive's default frames: <model>/odom -> <model>/<canonical link> (the merged chassis)
    assert (odom.latest().header.frame_id, odom.latest().child_frame_id) == ("vehicle/odom", "vehicle/chassis")
    # the wheels are 0.55 m ahead of the model frame: the vehicle turns about them
    turns_in_place(sim, send, after_drive, axle_centre(load_world(world).robot))
    # the launch file bridges /world/demo/model/vehicle/joint_state to joint_states: merged names, no vehicle::
    names = joints.latest().name
    assert {"left_wheel_joint", "right_wheel_joint"} <= set(names) and not any("::" in n for n in names), names


LINOROBOT2 = Path(__file__).resolve().parents[1] / "robots" / "linorobot2" / "linorobot2_description"


def ament_prefix(root: Path, packages: dict[str, Path]) -> Path:
    """An install prefix as colcon lays it out (share/<pkg> and the ament index marker), so xacro's
    ``$(find pkg)`` and ``package://pkg`` resolve as in a sourced workspace."""
    index = root / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for name, folder in packages.items():
        (index / name).touch()
        (root / "share" / name).symlink_to(folder)
    return root


def test_linorobot2_2wd_gazebo_classic_robot_as_its_launch_files_spawn_it(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """linorobot2's 2wd robot (LINOROBOT2_BASE=2wd) as linorobot2_gazebo's gazebo.launch.py spawns it at
    the origin: urdf/robots/2wd.urdf.xacro through xacro with $(find linorobot2_description) from a
    workspace, Gazebo classic plugins: gazebo_ros_diff_drive with <ros><remapping>odom:=odom/unfiltered,
    the ray sensor's ~/out:=scan, fixed-joint casters with mu1 0.01 (ODE takes the smaller friction of
    the two surfaces, so they slide), odometry from the plugin's default odometry_source (the world
    pose) at its default 100 Hz. Its playground.world needs the classic online model database
    (playground, pine_tree, asphalt_plane): the built-in arena stands in."""
    from nav_msgs.msg import Odometry

    monkeypatch.setenv(
        "AMENT_PREFIX_PATH", str(ament_prefix(tmp_path / "install", {"linorobot2_description": LINOROBOT2}))
    )
    robot_file = LINOROBOT2 / "urdf" / "robots" / "2wd.urdf.xacro"
    sim: SimProcess = sim_factory("--robot", str(robot_file), "--paused", wait_topic="/odom/unfiltered")
    odom = sim.ros.subscribe("/odom/unfiltered", Odometry)
    send = functools.partial(command, sim)
    _, after_drive = drives_turns_and_stays_level(sim, send, odom="/odom/unfiltered", odom_rate=100.0)
    assert (odom.latest().header.frame_id, odom.latest().child_frame_id) == ("odom", "base_footprint")
    assert sim.control.features()["topics"]["tf"] is None  # publish_odom_tf false
    robot = load_world(None, robot_file).robot
    sees_a_box_ahead(sim, robot, after_drive, "/scan", "laser")
    turns_in_place(sim, send, after_drive, axle_centre(robot))


GZ_WORLDS = Path(__file__).resolve().parents[1] / "robots" / "gz_sim" / "examples" / "worlds"
FUEL_CACHE = Path(__file__).resolve().parents[1] / "robots" / "fuel_cache"


def _twist(sim: SimProcess, topic: str, vx: float, wz: float) -> None:
    """Publish a Twist on ``topic`` until the paused simulator has counted it."""
    from geometry_msgs.msg import Twist

    from pytest_simtwin._internal.waiting import wait_until

    before = int(sim.control.state()["cmd_count"])
    msg = Twist()
    msg.linear.x, msg.angular.z = vx, wz
    pub = sim.ros.publisher(topic, Twist)
    wait_until(lambda: int(sim.control.state()["cmd_count"]) > before or pub.publish(msg), 10.0,
               what=f"the simulator to count ({vx}, {wz}) on {topic}", interval=0.05)  # fmt: skip


def test_gz_sim_visualize_lidar_world_loads_its_fuel_playground_from_the_cache_and_drives(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """gz-sim's examples/worlds/visualize_lidar.sdf as shipped: its Fuel "Playground" include resolves from
    a cache folder laid out like `gz fuel download` (a test stand-in model), its vehicle drives with its
    ball caster rolling, and its lidar on /lidar2 sees a spawned box."""
    from sensor_msgs.msg import LaserScan

    monkeypatch.setenv("GZ_FUEL_CACHE_PATH", str(FUEL_CACHE))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gz/fuel of the machine takes part
    sim: SimProcess = sim_factory(
        str(GZ_WORLDS / "visualize_lidar.sdf"), "--paused", wait_topic="/model/vehicle_blue/odometry"
    )
    assert "Playground" in sim.control.entities()
    cmd = "/model/vehicle_blue/cmd_vel"
    sim.control.step(duration=0.3)
    start = truth(sim)["pose"]
    _twist(sim, cmd, 0.2, 0.0)
    sim.control.step(duration=2.0)
    _twist(sim, cmd, 0.0, 0.0)
    sim.control.step(duration=1.0)
    moved = truth(sim)["pose"]
    assert math.hypot(moved["x"] - start["x"], moved["y"] - start["y"]) == pytest.approx(0.40, abs=0.06)

    lidar_x = moved["x"]  # lidar_link is at the model frame x (0 0 0.5), heading +x
    sim.control.spawn("target", "box", [0.2, 1.0, 1.5], {"x": lidar_x + 2.0 + 0.1, "y": moved["y"], "z": 0.75})
    st = sim.control.step(duration=0.3)
    scan = latest_at(sim, "/lidar2", st, LaserScan, rate=10.0)
    assert scan.header.frame_id == "vehicle_blue/lidar_link/gpu_lidar"  # no <frame_id>: gz-sensors' scoped name
    ahead = round((0.0 - scan.angle_min) / scan.angle_increment)
    assert scan.ranges[ahead] == pytest.approx(2.0, abs=0.05)
    sim.control.delete("target")

    _twist(sim, cmd, 0.0, 0.5)
    sim.control.step(duration=2.0)
    _twist(sim, cmd, 0.0, 0.0)
    sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    # the ball caster rolls freely: the vehicle turns as commanded (a dragging caster made it 43-80 %)
    assert math.remainder(end["yaw"] - moved["yaw"], 2 * math.pi) == pytest.approx(1.0, abs=0.15)
    assert _tilt(end) < 0.03, end


def test_gz_sim_diff_drive_world_loads_and_its_first_vehicle_drives(sim_factory: Any) -> None:
    """gz-sim's examples/worlds/diff_drive.sdf as shipped (two DiffDrive vehicles): vehicle_blue drives on
    its gz default topics; vehicle_green stays where it is (one driven robot per simulator for now)."""
    sim: SimProcess = sim_factory(
        str(GZ_WORLDS / "diff_drive.sdf"), "--paused", wait_topic="/model/vehicle_blue/odometry"
    )
    assert {"vehicle_blue", "vehicle_green"} <= set(sim.control.entities())
    sim.control.step(duration=0.3)
    start = truth(sim)["pose"]
    green = sim.control.get_entity_state("vehicle_green")["pose"]
    _twist(sim, "/model/vehicle_blue/cmd_vel", 0.2, 0.0)
    sim.control.step(duration=2.0)
    _twist(sim, "/model/vehicle_blue/cmd_vel", 0.0, 0.5)
    sim.control.step(duration=2.0)
    _twist(sim, "/model/vehicle_blue/cmd_vel", 0.0, 0.0)
    sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    assert end["x"] - start["x"] > 0.3, (start, end)
    assert math.remainder(end["yaw"] - start["yaw"], 2 * math.pi) == pytest.approx(1.0, abs=0.15)
    still = sim.control.get_entity_state("vehicle_green")["pose"]
    assert math.hypot(still["x"] - green["x"], still["y"] - green["y"]) < 0.01
