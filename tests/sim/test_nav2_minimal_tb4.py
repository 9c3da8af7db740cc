"""The Nav2 minimal TurtleBot 4 (ros-navigation/nav2_minimal_turtlebot_simulation, vendored under
tests/robots/nav2_minimal_tb4) used as its launch files use it, driven by the real simulator process.

nav2_minimal_tb4_sim's simulation.launch.py expands `nav2_minimal_tb4_description/urdf/standard/
turtlebot4.urdf.xacro` with no arguments, spawns it as `nav2_turtlebot4` at x -8.0, y 0.0, z 0.01,
bridges topics with `configs/tb4_bridge.yaml` plus two ros_gz_image bridges (`/rgbd_camera/image`,
`/rgbd_camera/depth_image`), and runs `worlds/depot.sdf` through xacro with `headless:=False`. The
description's `$(find ...)` and `package://` resolve from an ament prefix made as colcon installs
one (share/<package> + the ament index marker). The empty world is turtlebot3_gazebo's empty_world;
the depot and warehouse worlds include Fuel models, resolved from tests/robots/fuel_cache (stand-ins
laid out as `gz fuel download` lays models out).
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simproc import SIM_COMMAND, SimProcess
from test_public_robots import FUEL_CACHE, TB3, _tilt
from test_sensors import _image, _stepped
from test_sim_process import command, latest_at, truth

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.model import ModelSpec, Pose
from pytest_simtwin.sim.world.sdf import load_world

pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the TurtleBot 4 description")
pytest_plugins = ["pytester"]

TB4 = Path(__file__).resolve().parents[1] / "robots" / "nav2_minimal_tb4"
ROBOT = TB4 / "nav2_minimal_tb4_description" / "urdf" / "standard" / "turtlebot4.urdf.xacro"
SIM_PKG = TB4 / "nav2_minimal_tb4_sim"
BRIDGE = SIM_PKG / "configs" / "tb4_bridge.yaml"
EMPTY = TB3 / "worlds" / "empty_world.world"
SPAWN = (-8.0, 0.0, 0.01)  # simulation.launch.py's x_pose, y_pose, z_pose defaults
NAME = "nav2_turtlebot4"  # its robot_name default, the `ros_gz_sim create -name`
G = 9.81


@pytest.fixture
def tb4_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ament prefix holding both packages (as `colcon build` installs them); returns the tmp folder."""
    prefix = tmp_path / "install"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for package in ("nav2_minimal_tb4_description", "nav2_minimal_tb4_sim"):
        (prefix / "share" / package).symlink_to(TB4 / package)
        (index / package).touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    monkeypatch.setenv("GZ_FUEL_CACHE_PATH", str(FUEL_CACHE))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gz/fuel of the machine takes part
    return tmp_path


def _xacro_world(name: str, out: Path) -> Path:
    """`xacro -o OUT worlds/NAME headless:=False`, as simulation.launch.py runs it."""
    import xacro

    document = xacro.process_file(str(SIM_PKG / "worlds" / name), mappings={"headless": "False"})
    path = out / f"nav2_{name}"
    path.write_text(document.toprettyxml(indent="  "))
    return path


def _start(sim_factory: Any, world: Path, *extra: str) -> SimProcess:
    x, y, z = SPAWN
    sim: SimProcess = sim_factory(
        str(world), "--robot", str(ROBOT), "--robot-name", NAME, "--bridge", str(BRIDGE),
        f"--robot-pose={x},{y},{z},0,0,0", "--paused", *extra,
    )  # fmt: skip
    return sim


def _robot(world: Path) -> ModelSpec:
    return load_world(world, ROBOT, Pose(*SPAWN), NAME).robot


def _in_world(pose: dict[str, float], local: Pose) -> tuple[float, float, float]:
    """World x, y, yaw of a point given in the robot's model frame (the robot stays level)."""
    yaw = pose["yaw"]
    x = pose["x"] + local.x * math.cos(yaw) - local.y * math.sin(yaw)
    y = pose["y"] + local.x * math.sin(yaw) + local.y * math.cos(yaw)
    return x, y, yaw + local.yaw


def _stamped_after(sim: SimProcess, buf: Any, t: float) -> list[Any]:
    """Messages on ``buf`` stamped after sim time ``t``, stepping until there is one (bursts of a fast
    sensor overflow the reader's queue, so its first ones may all be older)."""

    def later() -> list[Any] | None:
        found = [m for m in buf.messages() if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 > t]
        return found or (sim.control.step(duration=0.02) and None)

    result: list[Any] = wait_until(later, 10.0, what=f"a message on {buf.topic} stamped after {t} s", interval=0.05)
    return result


def _drive_and_turn(sim: SimProcess) -> dict[str, float]:
    """0.2 m/s for 2 s, then 0.5 rad/s for 2 s, with TwistStamped as the bridge declares; returns the pose
    after the drive (the turn is checked here)."""
    sim.control.step(duration=0.3)  # settle on the ground
    start = truth(sim)["pose"]
    command(sim, 0.2, stamped=True)
    sim.control.step(duration=2.0)
    command(sim, 0.0, stamped=True)
    st = sim.control.step(duration=1.0)
    moved = truth(sim)["pose"]
    distance = math.hypot(moved["x"] - start["x"], moved["y"] - start["y"])
    # max_linear_acceleration 2: 0.2 m/s after 0.1 s -> 0.39 m in 2 s
    assert distance == pytest.approx(0.40, abs=0.06)
    odom = latest_at(sim, "/odom", st, rate=100.0)
    assert odom.pose.pose.position.x == pytest.approx(distance, abs=0.02), "wheels grip: odometry = ground truth"
    assert _tilt(moved) < 0.03, moved

    command(sim, 0.0, 0.5, stamped=True)
    sim.control.step(duration=2.0)
    command(sim, 0.0, 0.0, stamped=True)
    sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    assert math.remainder(end["yaw"] - moved["yaw"], 2 * math.pi) == pytest.approx(1.0, abs=0.15)
    assert math.hypot(end["x"] - moved["x"], end["y"] - moved["y"]) < 0.03, "turns in place"
    assert _tilt(end) < 0.03, end
    return end


def test_tb4_loads_with_its_sensors_as_gazebo_names_them(tb4_env: Path) -> None:
    robot = _robot(EMPTY)
    assert robot.diff_drive is not None
    dd = robot.diff_drive
    assert (dd.wheel_radius, dd.wheel_separation, dd.topic, dd.odom_topic) == (0.03575, 0.233, "/cmd_vel", "/odom")
    assert [(lidar.name, lidar.topic, lidar.frame_id, lidar.samples) for lidar in robot.lidars] == [
        ("rplidar", "/scan", "rplidar_link", 360)
    ]
    devices = {d.name: d for d in robot.devices}
    assert set(devices) == {"imu", "rgbd_camera"}
    imu, cam = devices["imu"], devices["rgbd_camera"]
    assert (imu.link, imu.update_rate, imu.topics) == ("imu_link", 200.0, {"imu": "/imu"})
    # gz-sensors' default frame: the sensor's scoped name, model as spawned (ros_gz_bridge turns :: into /)
    assert imu.frame_id == "nav2_turtlebot4/imu_link/imu"
    assert load_world(EMPTY, ROBOT).robot.devices[0].frame_id == "turtlebot4/imu_link/imu"  # <robot name>
    assert (cam.kind, cam.link, cam.width, cam.height, cam.horizontal_fov) == ("rgbd", "oakd_rgb_camera_frame",
                                                                              320, 240, 1.25)  # fmt: skip
    assert cam.frame_id == "oakd_rgb_camera_optical_frame"  # <optical_frame_id> (gz-sensors 8/9)
    assert cam.topics == {"image": "/rgbd_camera/image", "depth": "/rgbd_camera/depth_image",
                          "points": "/rgbd_camera/points", "camera_info": "/rgbd_camera/camera_info"}  # fmt: skip
    assert (cam.near, cam.far) == (0.3, 100.0)
    shell = next(g for g in robot.link("shell_link").collisions if g.kind == "mesh")
    assert shell.mesh is not None and shell.mesh.name == "shell_collision.dae"


def test_tb4_drives_turns_stays_level_and_its_lidar_sees_a_box_in_an_empty_world(
    sim_factory: Any, tb4_env: Path
) -> None:
    from sensor_msgs.msg import LaserScan

    sim = _start(sim_factory, EMPTY, "--no-sensor", "camera")
    end = _drive_and_turn(sim)
    robot = _robot(EMPTY)
    lidar = robot.lidars[0]
    # the rplidar is mounted turned by +90 degrees: its ray 0 (min_angle 0) looks to the robot's left
    sx, sy, yaw = _in_world(end, robot.link(lidar.link).pose * lidar.pose)
    depth = 0.1
    centre = 1.0 + depth / 2
    pose = {"x": sx + centre * math.cos(yaw), "y": sy + centre * math.sin(yaw), "z": 0.25, "yaw": yaw}
    sim.control.spawn("target", "box", [depth, 0.6, 0.5], pose)
    st = sim.control.step(duration=0.3)
    scan = latest_at(sim, "/scan", st, LaserScan, rate=lidar.update_rate)
    assert (scan.header.frame_id, len(scan.ranges)) == ("rplidar_link", 360)
    assert scan.ranges[0] == pytest.approx(1.0, abs=0.05), scan.ranges[:3]
    # the robot's own standoffs are closer than range_min (0.164 m): nothing of the robot in the scan
    assert np.isinf(np.array(scan.ranges[90:270])).all(), "nothing but the box around the robot"


def test_tb4_publishes_imu_oakd_and_scan_as_its_bridges_name_them(sim_factory: Any, tb4_env: Path) -> None:
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, LaserScan, PointCloud2

    from pytest_simtwin.sim import msgbuild

    msgbuild.ensure("tf2_msgs")  # not on PyPI: built from its .msg at first use (cached)
    from tf2_msgs.msg import TFMessage

    sim = _start(sim_factory, EMPTY)
    robot = _robot(EMPTY)
    cam_pose = robot.link("oakd_rgb_camera_frame").pose
    start = truth(sim)["pose"]
    cx, cy, yaw = _in_world(start, cam_pose)
    box_depth = 1.5  # the box's front face, ahead of the camera
    sim.control.spawn("target", "box", [0.2, 1.0, 1.0],
                      {"x": cx + (box_depth + 0.1) * math.cos(yaw), "y": cy + (box_depth + 0.1) * math.sin(yaw),
                       "z": 0.5, "yaw": yaw})  # fmt: skip
    topics = {"/imu": Imu, "/scan": LaserScan, "/odom": Odometry, "/joint_states": JointState,
              "/rgbd_camera/image": Image, "/rgbd_camera/depth_image": Image,
              "/rgbd_camera/camera_info": CameraInfo, "/rgbd_camera/points": PointCloud2}  # fmt: skip
    bufs = {t: sim.ros.subscribe(t, ty) for t, ty in topics.items()}
    tf = sim.ros.subscribe("/tf", TFMessage)
    sim.control.step(duration=0.5)  # settle at rest
    for buf in bufs.values():  # each arrives (a loaded machine delivers some later than others)
        _stepped(sim, buf, 1)

    # at rest (after the 0.5 s settle): every reading is gravity, up, and no rotation (noise stddev 0)
    rest = _stamped_after(sim, bufs["/imu"], 0.5)
    assert all(m.header.frame_id == "nav2_turtlebot4/imu_link/imu" for m in rest)
    for imu in rest:
        acc = np.array([imu.linear_acceleration.x, imu.linear_acceleration.y, imu.linear_acceleration.z])
        assert np.linalg.norm(acc) == pytest.approx(G, abs=0.05) and acc[2] > G - 0.1, (imu.header.stamp, acc)
        gyro = imu.angular_velocity
        assert max(abs(gyro.x), abs(gyro.y), abs(gyro.z)) < 0.01

    image = bufs["/rgbd_camera/image"].latest()
    assert (image.encoding, image.width, image.height) == ("rgb8", 320, 240)
    assert image.header.frame_id == "oakd_rgb_camera_optical_frame"
    depth_msg = bufs["/rgbd_camera/depth_image"].latest()
    assert (depth_msg.encoding, depth_msg.header.frame_id) == ("32FC1", "oakd_rgb_camera_optical_frame")
    depth = _image(depth_msg)
    assert np.abs(depth[100:140, 140:180] - box_depth).max() < 0.01, depth[120, 160]
    info = bufs["/rgbd_camera/camera_info"].latest()
    fx = 320 / (2 * math.tan(1.25 / 2))
    assert list(info.k) == pytest.approx([fx, 0, 160, 0, fx, 120, 0, 0, 1])
    assert info.header.frame_id == "oakd_rgb_camera_optical_frame"
    # the rgbd_camera's points (gz publishes them; tb4_bridge.yaml does not bridge them): stamped with the
    # optical frame like gz-sensors 8, the data in the sensor frame (x forward) as gz-sensors fills it
    cloud = bufs["/rgbd_camera/points"].latest()
    assert cloud.header.frame_id == "oakd_rgb_camera_optical_frame" and (cloud.width, cloud.height) == (320, 240)
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(240, 320, cloud.point_step // 4)[..., :3]
    assert xyz[120, 160] == pytest.approx([box_depth, 0.0, 0.0], abs=0.01)

    scan = bufs["/scan"].latest()
    assert (scan.header.frame_id, len(scan.ranges), scan.range_max) == ("rplidar_link", 360, 20.0)
    # ray 270 (4.71 rad in the lidar frame) looks ahead of the robot: the box, from the lidar 0.04 m behind base_link
    lidar = robot.lidars[0]
    ahead = round((3 * math.pi / 2 - scan.angle_min) / scan.angle_increment)
    lidar_x = (robot.link(lidar.link).pose * lidar.pose).x
    assert scan.ranges[ahead] == pytest.approx(cam_pose.x - lidar_x + box_depth, abs=0.05)
    odom = bufs["/odom"].latest()
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    joints = bufs["/joint_states"].latest()
    assert set(joints.name) == {"left_wheel_joint", "right_wheel_joint"}
    wait_until(lambda: tf.count > 0 or sim.control.step(duration=0.1) is None, 10.0, what="a message on /tf")
    frames = {(t.header.frame_id, t.child_frame_id) for m in tf.messages() for t in m.transforms}
    assert ("odom", "base_link") in frames


@pytest.mark.parametrize("world", ["depot.sdf", "warehouse.sdf"])
def test_tb4_in_its_fuel_worlds_through_a_fuel_cache(sim_factory: Any, tb4_env: Path, world: str) -> None:
    """depot.sdf (xacro'd as the launch file does) and warehouse.sdf, their Fuel models from a cache folder
    laid out as `gz fuel download` lays it out (stand-ins): the world loads and the robot drives in it."""
    from sensor_msgs.msg import LaserScan

    path = _xacro_world(world, tb4_env) if world == "depot.sdf" else SIM_PKG / "worlds" / world
    sim = _start(sim_factory, path, "--no-sensor", "camera")
    entities = set(sim.control.entities())
    assert {"Depot"} <= entities if world == "depot.sdf" else {"warehouse", "shelf_big_0", "barrier_3"} <= entities
    end = _drive_and_turn(sim)
    if world == "depot.sdf":
        # the stand-in Depot (a 30 x 15 m floor inside four walls, no ground plane in the world) carries
        # the robot, and the lidar's ray 0 reaches its walls where they are
        assert end["z"] > -0.01, "on the Depot's floor"
        robot = _robot(path)
        lidar = robot.lidars[0]
        sx, sy, yaw = _in_world(end, robot.link(lidar.link).pose * lidar.pose)
        dx, dy = math.cos(yaw), math.sin(yaw)
        wall = min(t for t in ((15 - sx) / dx if dx else math.inf, (-15 - sx) / dx if dx else math.inf,
                               (7.5 - sy) / dy if dy else math.inf, (-7.5 - sy) / dy if dy else math.inf) if t > 0)  # fmt: skip
        st = sim.control.step(duration=0.3)
        scan = latest_at(sim, "/scan", st, LaserScan, rate=lidar.update_rate)
        assert scan.ranges[0] == pytest.approx(wall, abs=0.05)


def test_tb4_world_with_a_fuel_model_missing_from_the_cache_names_the_url_and_the_command(
    tb4_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty_cache = tmp_path / "fuel"
    empty_cache.mkdir()
    monkeypatch.setenv("GZ_FUEL_CACHE_PATH", str(empty_cache))
    world = _xacro_world("depot.sdf", tmp_path)
    url = "https://fuel.gazebosim.org/1.0/OpenRobotics/models/Depot"
    with pytest.raises(ModelError) as info:
        load_world(world, ROBOT, Pose(*SPAWN))
    message = str(info.value)
    assert f"{world}:" in message and url in message and f'gz fuel download -u "{url}"' in message
    assert str(empty_cache / "fuel.gazebosim.org" / "openrobotics" / "models" / "depot") in message
    # the simulator process says the same and exits 2
    proc = subprocess.run([SIM_COMMAND, str(world), "--robot", str(ROBOT)], env=dict(os.environ),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert url in proc.stderr and "gz fuel download" in proc.stderr


def test_robot_name_is_the_spawn_name_and_needs_a_robot(tb4_env: Path) -> None:
    run = [SIM_COMMAND, str(EMPTY), "--robot", str(ROBOT), "--robot-name", NAME, "--check"]
    res = subprocess.run(run, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"model {NAME} (robot)" in res.stdout and f"frame {NAME}/imu_link/imu" in res.stdout
    res = subprocess.run([SIM_COMMAND, "--robot-name", NAME, "--check"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "--robot-name 'nav2_turtlebot4': expected a non-empty name together with --robot" in res.stderr


def test_tb4_depot_loads_without_warnings_of_its_own_and_params_edits_other_than_visuals_warn(
    tb4_env: Path, tmp_path: Path
) -> None:
    depot = _xacro_world("depot.sdf", tmp_path)
    world = load_world(depot, ROBOT, Pose(*SPAWN), NAME)
    # the world's plugins (physics, sensors, imu, ...) and its <experimental:params> visual removals
    assert [w for w in world.warnings if w.startswith(str(depot))] == []
    robot_warnings = " ".join(world.warnings)
    assert "preserveFixedJoint" not in robot_warnings and "names no link" not in robot_warnings
    edited = tmp_path / "edited.sdf"
    text = depot.read_text()
    assert "Fan1::visual" in text
    edited.write_text(text.replace("<visual", "<collision", 1))
    warnings = load_world(edited, ROBOT, Pose(*SPAWN)).warnings
    assert any("<experimental:params> edit of <collision> is not applied" in w for w in warnings), warnings
    # the world as shipped, not through xacro: the xacro element is named, with what to do
    raw = SIM_PKG / "worlds" / "depot.sdf"
    warnings = load_world(raw, ROBOT, Pose(*SPAWN)).warnings
    assert f"{raw}:22: <xacro:unless> is xacro, not SDF: expand the world with xacro first (ignored)" in warnings


PLUGIN_TESTS = """
import math
import pytest
from pytest_simtwin.helpers.sensors import assert_depth_at_centre

CAMERA_X = {camera_x!r}  # oakd_rgb_camera_frame ahead of base_link (m)
NAME, SPAWN = {name!r}, {spawn!r}  # simulation.launch.py's robot_name and x_pose, y_pose, z_pose


def test_drives_and_reads_gravity(robot, sim):
    assert robot.cmd_vel_topic == "/cmd_vel" and sim.robot_name() == NAME
    start = robot.ground_truth
    assert (start.x, start.y) == (pytest.approx(SPAWN[0], abs=0.01), pytest.approx(SPAWN[1], abs=0.01))
    assert math.hypot(robot.pose.x, robot.pose.y) < 0.005, "odometry starts at zero"
    robot.send_velocity(0.2, 0.0, 2.0)
    robot.stop()
    end = robot.ground_truth
    assert math.hypot(end.x - start.x, end.y - start.y) == pytest.approx(0.40, abs=0.06)
    robot.wait_for_imu()
    imu = robot.imu
    assert imu.frame_id == NAME + "/imu_link/imu" and imu.linear_acceleration[2] == pytest.approx(9.81, abs=0.1)


def test_its_oakd_sees_a_box(robot, sim):
    pose = robot.ground_truth
    ahead = CAMERA_X + 1.5 + 0.1
    sim.control.spawn("target", "box", [0.2, 1.0, 1.0], {{"x": pose.x + ahead * math.cos(pose.yaw),
                      "y": pose.y + ahead * math.sin(pose.yaw), "z": 0.5, "yaw": pose.yaw}})
    image = robot.wait_for_depth("rgbd_camera")
    assert image.frame_id == "oakd_rgb_camera_optical_frame"
    assert_depth_at_centre(image.array, 1.5, tolerance=0.01)
"""


def test_tb4_with_the_plugin_as_a_user_runs_it(pytester: pytest.Pytester, tb4_env: Path) -> None:
    """`pytest -n 2 --simtwin-world=empty_world.world --simtwin-robot=turtlebot4.urdf.xacro`, named and placed
    as simulation.launch.py spawns it (--simtwin-spawn-name / --simtwin-spawn-pose): the gz names of the
    TurtleBot 4 are its ROS names, so it runs with the plugin's robot and sim fixtures unchanged."""
    camera_x = _robot(EMPTY).link("oakd_rgb_camera_frame").pose.x
    pytester.makepyfile(test_tb4=PLUGIN_TESTS.format(camera_x=camera_x, name=NAME, spawn=SPAWN))
    x, y, z = SPAWN
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--simtwin-world={EMPTY}", f"--simtwin-robot={ROBOT}",
        f"--simtwin-spawn-name={NAME}", f"--simtwin-spawn-pose={x} {y} {z}", timeout=300,
    )  # fmt: skip
    result.assert_outcomes(passed=2)
