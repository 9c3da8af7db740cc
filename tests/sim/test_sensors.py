"""IMU, cameras, depth/RGB-D cameras and navsat of the embedded simulator, over real ROS topics.

The world (data/worlds/sensors.sdf) is the built-in robot with a noisy 200 Hz IMU, an ideal 100 Hz
IMU, a 320x240 RGB camera, a 320x240 depth camera, a 160x120 RGB-D camera and a navsat receiver,
facing a red box whose front face is 1.5 m ahead of the cameras. Each test steps a paused simulator.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simproc import SimProcess, wait_log

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ControlError, WaitTimeout
from pytest_simtwin.sim.world.sdf import load_world
from pytest_simtwin.sim.world.sensors import parse_sensor
from pytest_simtwin.sim.world.xmltree import parse_string

WORLD = str(Path(__file__).parent / "data" / "worlds" / "sensors.sdf")
G = 9.81
BOX_DISTANCE = 1.5  # box front face (x = 1.55) minus camera x (0.05)


def _stepped(sim: SimProcess, buf: Any, count: int, chunk: float = 0.1, limit: float = 30.0) -> None:
    """Step in small chunks until ``buf`` holds ``count`` messages (bursts stay within the QoS depth)."""
    stepped = 0.0
    while buf.count < count and stepped < limit:
        # listened: the simulator first matches what we just subscribed to (lazy sensors publish only then)
        sim.control.step(duration=chunk, listened=sim.ros.take_fresh())
        stepped += chunk
        with contextlib.suppress(WaitTimeout):  # a slow sensor publishes only every few chunks
            wait_until(lambda: buf.count >= count, 0.3, what=f"messages on {buf.topic}")
    assert buf.count >= count, f"{buf.count} messages on {buf.topic} after {stepped} s"


def _image(msg: Any) -> np.ndarray:
    if msg.encoding == "rgb8":
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)
    assert msg.encoding == "32FC1"
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


def _latest_after_step(sim: SimProcess, buf: Any, duration: float = 0.2) -> Any:
    before = buf.count
    sim.control.step(duration=duration, listened=sim.ros.take_fresh())
    wait_until(lambda: buf.count > before, 10.0, what=f"a message on {buf.topic}")
    return buf.latest()


# -- parsing (no ROS) -------------------------------------------------------------------------------


def test_sensors_parse_with_sdformat_defaults_and_gz_topic_names() -> None:
    world = load_world(Path(WORLD))
    devices = {d.name: d for d in world.robot.devices}
    assert set(devices) == {"front_camera", "front_depth", "front_rgbd", "imu", "imu_ideal", "gps", "bumper", "compass",
                            "baro"}
    assert devices["bumper"].collisions == ["chassis"] and devices["bumper"].topics == {"contact": "/bumper"}
    cam = devices["front_camera"]
    assert cam.topics == {"image": "/front_camera/image", "camera_info": "/front_camera/camera_info"}
    assert cam.frame_id == "sensor_bot/camera_link/front_camera"  # gz-sensors default: the scoped name
    assert cam.fx == pytest.approx(320 / (2 * math.tan(1.047 / 2)))
    depth = devices["front_depth"]
    # gz-sensors: camera_info next to the depth topic's parent, points under it
    assert depth.topics == {"depth": "/front_depth", "points": "/front_depth/points", "camera_info": "/camera_info"}
    assert depth.frame_id == "camera_optical_frame" and (depth.depth_near, depth.depth_far) == (0.1, 5.0)
    rgbd = devices["front_rgbd"]
    assert rgbd.topics == {"image": "/rgbd/image", "depth": "/rgbd/depth_image", "points": "/rgbd/points",
                           "camera_info": "/rgbd/camera_info"}  # fmt: skip
    imu = devices["imu"]
    assert imu.update_rate == 200 and imu.topics == {"imu": "/imu"}
    assert imu.gyro_noise[2].stddev == 0.01 and imu.gyro_noise[2].bias_mean == 0.005
    assert imu.accel_noise[0].stddev == 0.05 and not devices["imu_ideal"].gyro_noise[0].active
    assert world.spherical == (48.1, 11.5, 520.0, 0.0)
    assert not [w for w in world.warnings if "not simulated" in w and "sensor" in w]


def test_classic_gazebo_ros_plugins_rename_topics_and_frames() -> None:
    camera = parse_string("""
      <sensor type="depth" name="kinect">
        <update_rate>15</update_rate>
        <camera><horizontal_fov>1.02</horizontal_fov><image><width>640</width><height>480</height></image>
          <clip><near>0.05</near><far>8</far></clip></camera>
        <plugin name="depth_driver" filename="libgazebo_ros_camera.so">
          <ros><namespace>/bot</namespace><remapping>depth/image_raw:=depth/image_rect</remapping></ros>
          <camera_name>cam</camera_name><frame_name>cam_optical</frame_name>
          <min_depth>0.2</min_depth><max_depth>6</max_depth>
        </plugin>
      </sensor>""")
    warn: list[str] = []
    spec = parse_sensor(camera, "camera_link", "bot", "w", warn)
    assert spec is not None and spec.kind == "rgbd" and spec.classic and spec.optical_points
    assert spec.topics["image"] == "/bot/cam/image_raw" and spec.topics["depth"] == "/bot/depth/image_rect"
    assert spec.topics["points"] == "/bot/cam/points" and spec.topics["camera_info"] == "/bot/cam/camera_info"
    assert spec.frame_id == "cam_optical" and (spec.depth_near, spec.depth_far) == (0.2, 6.0)
    imu = parse_string("""
      <sensor type="imu" name="imu_sensor"><update_rate>100</update_rate>
        <plugin name="imu_plugin" filename="libgazebo_ros_imu_sensor.so">
          <ros><namespace>/tb</namespace><remapping>~/out:=imu</remapping></ros></plugin>
      </sensor>""")
    spec = parse_sensor(imu, "imu_link", "tb", "w", warn)
    assert spec is not None and spec.topics == {"imu": "/tb/imu"} and spec.frame_id == "imu_link"
    assert not warn


# -- IMU --------------------------------------------------------------------------------------------


def test_imu_at_rest_reads_gravity_zero_rates_and_the_sdf_noise(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import Imu

    sim = sim_factory(WORLD, "--paused", "--seed", "7", "--no-sensor", "camera")
    noisy = sim.ros.subscribe("/imu", Imu)
    ideal = sim.ros.subscribe("/imu_ideal", Imu)
    sim.control.step(duration=0.5)  # settle on the wheels
    start = noisy.count
    _stepped(sim, noisy, start + 1000)
    samples = noisy.messages()[start : start + 1000]
    acc = np.array([[m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z] for m in samples])
    gyro = np.array([[m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z] for m in samples])
    n = len(samples)
    # gravity within 3 sigma, sample by sample (at most a few of 1000 outside), and on average
    assert np.mean(np.abs(acc[:, 2] - G) < 3 * 0.05) > 0.99
    assert abs(acc[:, 2].mean() - G) < 3 * 0.05 / math.sqrt(n) + 1e-3
    for axis in range(3):  # noise statistics as the SDF says: stddev 0.05 / 0.01, z gyro bias 0.005
        assert acc[:, axis].std() == pytest.approx(0.05, rel=0.1)
        assert gyro[:, axis].std() == pytest.approx(0.01, rel=0.1)
    assert abs(acc[:, 0].mean()) < 4 * 0.05 / math.sqrt(n) and abs(gyro[:, 0].mean()) < 4 * 0.01 / math.sqrt(n)
    # gz GaussianNoiseModel: the bias keeps its size and takes a random sign
    assert abs(abs(gyro[:, 2].mean()) - 0.005) < 4 * 0.01 / math.sqrt(n)
    m = ideal.latest()
    # the robot rests slightly pitched on its caster: gravity seen through the reported orientation
    q = m.orientation
    up = np.array([2 * (q.x * q.z - q.w * q.y), 2 * (q.y * q.z + q.w * q.x), 1 - 2 * (q.x * q.x + q.y * q.y)])
    acc_ideal = np.array([m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z])
    assert acc_ideal == pytest.approx(G * up, abs=2e-3) and np.linalg.norm(acc_ideal) == pytest.approx(G, abs=2e-3)
    assert max(abs(m.angular_velocity.x), abs(m.angular_velocity.y), abs(m.angular_velocity.z)) < 1e-3
    assert (m.orientation.w, m.header.frame_id) == (pytest.approx(1.0, abs=1e-4), "sensor_bot/imu_link/imu_ideal")
    assert list(samples[0].angular_velocity_covariance)[::4] == pytest.approx([1e-4] * 3)
    # same seed after a reset: the same noise, reading for reading
    sim.control.reset(seed=7)
    sim.control.step(duration=0.5)
    again_start = noisy.count
    _stepped(sim, noisy, again_start + 5)
    by_stamp: dict[tuple[int, int], list[float]] = {}  # readings of both runs at the same sim time
    for msg in noisy.messages():
        by_stamp.setdefault((msg.header.stamp.sec, msg.header.stamp.nanosec), []).append(msg.angular_velocity.z)
    repeated = [v for v in by_stamp.values() if len(v) == 2]
    assert repeated and all(v[0] == v[1] for v in repeated)


def test_imu_turning_reads_the_yaw_rate(sim_factory: Callable[..., SimProcess]) -> None:
    from geometry_msgs.msg import Twist
    from sensor_msgs.msg import Imu

    sim = sim_factory(WORLD, "--paused", "--no-sensor", "camera")
    ideal = sim.ros.subscribe("/imu_ideal", Imu)
    cmd = Twist()
    cmd.angular.z = 0.5
    pub = sim.ros.publisher("/cmd_vel", Twist)
    wait_until(lambda: pub.get_subscription_count() > 0, 10.0, what="the simulator's /cmd_vel subscription")
    pub.publish(cmd)
    sim.control.wait_for_commands(1)
    sim.control.step(duration=1.0)
    start = ideal.count
    _stepped(sim, ideal, start + 50)
    readings = ideal.messages()[start:]
    rates = [m.angular_velocity.z for m in readings]
    assert np.mean(rates) == pytest.approx(0.5, abs=0.02)
    assert max(abs(m.linear_acceleration.z - G) for m in readings) < 0.3


# -- cameras ----------------------------------------------------------------------------------------


def test_depth_camera_reads_the_box_distance_and_rep117_infinities(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    sim = sim_factory(WORLD, "--paused")
    depth_buf = sim.ros.subscribe("/front_depth", Image)
    info_buf = sim.ros.subscribe("/camera_info", CameraInfo)
    points_buf = sim.ros.subscribe("/front_depth/points", PointCloud2)
    msg = _latest_after_step(sim, depth_buf)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("32FC1", 320, 240, 320 * 4)
    assert msg.header.frame_id == "camera_optical_frame"
    depth = _image(msg)
    # the box spans columns 160 +/- 55 and rows 120 - 64 .. 120 + 27 at 1.5 m (fx = 277 px)
    box = depth[70:140, 120:200]
    assert np.abs(box - BOX_DISTANCE).max() < 0.005, f"box pixels read {box.min()}..{box.max()} m"
    assert np.isposinf(depth[:40, :]).all(), "sky: nothing within the far clip (5 m) must read +inf"
    info = info_buf.latest() or _latest_after_step(sim, info_buf)
    fx = 320 / (2 * math.tan(1.047 / 2))
    assert list(info.k) == pytest.approx([fx, 0, 160, 0, fx, 120, 0, 0, 1])
    assert list(info.p) == pytest.approx([fx, 0, 160, 0, 0, fx, 120, 0, 0, 0, 1, 0])
    assert (info.width, info.height, info.distortion_model) == (320, 240, "plumb_bob")
    cloud = points_buf.latest() or _latest_after_step(sim, points_buf)
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"] and cloud.point_step == 16
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(240, 320, 4)[..., :3]
    assert xyz[120, 160] == pytest.approx([BOX_DISTANCE, 0.0, 0.0], abs=0.01)  # gz: sensor frame, x forward
    assert xyz[100, 120][1] > 0.1 and xyz[100, 120][2] > 0.05  # left of and above the centre: +y, +z
    # something inside the near clip (0.1 m): -inf where it covers the image
    sim.control.spawn("blocker", "box", [0.02, 0.4, 0.4], {"x": 0.12, "y": 0.0, "z": 0.15})
    near = _image(_latest_after_step(sim, depth_buf))
    assert np.isneginf(near[100:140, 140:180]).all()


def test_rgb_camera_sees_the_box_colour_where_the_box_is(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import Image

    sim = sim_factory(WORLD, "--paused")
    buf = sim.ros.subscribe("/front_camera/image", Image)
    msg = _latest_after_step(sim, buf)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", 320, 240, 960)
    img = _image(msg).astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 60) & (img[..., 2] < 60)
    rows, cols = np.nonzero(red)
    # the box: 0.6 m wide at 1.5 m -> 111 px around column 160; from the ground up to 0.35 m above the camera
    assert 100 <= cols.min() <= 110 and 210 <= cols.max() <= 220, (cols.min(), cols.max())
    assert 50 <= rows.min() <= 62 and rows.max() <= 150, (rows.min(), rows.max())
    assert red[70:140, 120:200].all()
    assert not red[:, :90].any() and not red[:, 230:].any()  # ground and sky around it are not red


def test_a_paused_simulators_first_frame_is_seen_from_the_camera(sim_factory: Callable[..., SimProcess]) -> None:
    """Never stepped: the frame a late joiner gets is rendered from the camera's pose, not the compiled model's."""
    from sensor_msgs.msg import Image

    sim = sim_factory(WORLD, "--paused")
    buf = sim.ros.subscribe("/front_camera/image", Image)
    wait_until(lambda: buf.count > 0, 10.0, what="the re-sent frame of the paused simulator")
    msg = buf.messages()[0]
    assert msg.header.stamp.sec == 0 and msg.header.stamp.nanosec == 0  # no step: the t = 0 state
    img = _image(msg).astype(int)
    _rows, cols = np.nonzero((img[..., 0] > 150) & (img[..., 1] < 60) & (img[..., 2] < 60))
    assert 100 <= cols.min() <= 110 and 210 <= cols.max() <= 220, (cols.min(), cols.max())  # as after a step


def test_cameras_render_only_while_someone_listens(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import Image

    sim = sim_factory(WORLD, "--paused")
    sim.control.step(duration=1.0)
    rendered = sim.control.state()["camera_frames"]
    assert rendered == {"front_camera": 0, "front_depth": 0, "front_rgbd": 0}
    buf = sim.ros.subscribe("/rgbd/depth_image", Image)
    msg = _latest_after_step(sim, buf, 1.0)
    assert (msg.width, msg.height) == (160, 120) and np.isfinite(_image(msg)[60, 80])
    rendered = sim.control.state()["camera_frames"]
    assert rendered["front_rgbd"] >= 1 and rendered["front_camera"] == rendered["front_depth"] == 0


def test_no_sensor_option_and_bridge_renames(sim_factory: Callable[..., SimProcess], tmp_path: Path) -> None:
    from sensor_msgs.msg import Imu, NavSatFix

    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(
        "- ros_topic_name: /robot/imu\n  gz_topic_name: imu\n  ros_type_name: sensor_msgs/msg/Imu\n"
        "  gz_type_name: gz.msgs.IMU\n  direction: GZ_TO_ROS\n"
    )
    sim = sim_factory(WORLD, "--paused", "--no-sensor", "camera", "--no-sensor", "imu_ideal", "--bridge", str(bridge))
    names = {s["name"]: s for s in sim.control.features()["sensors"]}
    assert set(names) == {"imu", "gps", "bumper", "compass", "baro"} and names["imu"]["topics"] == {"imu": "/robot/imu"}
    imu = sim.ros.subscribe("/robot/imu", Imu)
    gps = sim.ros.subscribe("/navsat", NavSatFix)
    _stepped(sim, gps, 1)
    assert imu.count > 0 and "not served" not in sim.log()
    fix = gps.latest()
    # the receiver sits 3 cm behind the world origin: latitude 48.1, longitude 3 cm west of 11.5
    assert fix.latitude == pytest.approx(48.1, abs=1e-7) and fix.altitude == pytest.approx(520.1, abs=0.01)
    assert fix.longitude == pytest.approx(
        11.5 - math.degrees(0.03 / (6378137 * math.cos(math.radians(48.1)))), abs=1e-8
    )
    # the IMU's noise does not depend on which other sensors run: same seed, same readings at the same times
    full = sim_factory(WORLD, "--paused", name="all_sensors")
    imu_full = full.ros.subscribe("/imu", Imu)
    _stepped(full, imu_full, 20)
    mine = {(m.header.stamp.sec, m.header.stamp.nanosec): m.angular_velocity.z for m in imu.messages()}
    same = [(mine[k], m.angular_velocity.z) for m in imu_full.messages()
            if (k := (m.header.stamp.sec, m.header.stamp.nanosec)) in mine]  # fmt: skip
    assert len(same) >= 10 and all(a == b for a, b in same)


def _osmesa_missing() -> bool:
    for name in ("libOSMesa.so.8", "libOSMesa.so.6"):
        try:
            ctypes.CDLL(name)
            return False
        except OSError:
            continue
    return True


@pytest.mark.skipif(not _osmesa_missing(), reason="needs a machine without libOSMesa to stand for a missing GL")
def test_without_gl_cameras_give_one_clear_error_and_the_rest_runs(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import Image, Imu

    sim = sim_factory(WORLD, "--paused", extra_env={"MUJOCO_GL": "osmesa"})
    log = wait_log(sim, "cameras are not rendered")
    assert "apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1" in log
    image = sim.ros.subscribe("/front_camera/image", Image)
    imu = sim.ros.subscribe("/imu", Imu)
    _stepped(sim, imu, 10)
    sim.control.step(duration=0.5)
    assert image.count == 0 and sim.proc.poll() is None
    assert sim.log().count("cameras are not rendered") == 1
    errors = {s["name"]: s["error"] for s in sim.control.features()["sensors"] if "error" in s}
    assert all("libegl1" in e for e in errors.values()) and len(errors) == 3


ROBOTS = Path(__file__).parents[1] / "robots"
WAFFLE = ROBOTS / "turtlebot3" / "turtlebot3_gazebo" / "models" / "turtlebot3_waffle" / "model.sdf"


@pytest.mark.skipif(not WAFFLE.is_file(), reason="the vendored TurtleBot3 models come with the world-loading work")
def test_turtlebot3_waffle_publishes_imu_camera_and_scan_as_its_bridge_names_them(
    sim_factory: Callable[..., SimProcess],
) -> None:
    from sensor_msgs.msg import CameraInfo, Image, Imu, LaserScan

    bridge = ROBOTS / "turtlebot3_bridges" / "turtlebot3_waffle_bridge.yaml"
    sim = sim_factory("--robot", str(WAFFLE), "--bridge", str(bridge), "--paused")
    topics = {"/imu": Imu, "/camera/image_raw": Image, "/camera/camera_info": CameraInfo, "/scan": LaserScan}
    bufs = {t: sim.ros.subscribe(t, ty) for t, ty in topics.items()}
    # each topic has its own rate (the 5 Hz scan may not fall inside the steps that gave two images)
    for topic, buf in bufs.items():
        _stepped(sim, buf, 2 if topic == "/camera/image_raw" else 1)
    img = bufs["/camera/image_raw"].latest()
    assert (img.width, img.height, img.encoding, img.header.frame_id) == (1920, 1080, "rgb8", "camera_rgb_frame")
    info = bufs["/camera/camera_info"].latest()
    assert info.k[0] == pytest.approx(1920 / (2 * math.tan(1.02974 / 2)))
    # A sample of a step just taken: under a full -n 2 suite run, the last received of the earlier 200 Hz
    # bursts once read free fall (z 0.01, as a sample before the first contact does); not reproduced alone.
    imu = _latest_after_step(sim, bufs["/imu"], 0.1)
    stamp = imu.header.stamp.sec + imu.header.stamp.nanosec * 1e-9
    assert imu.linear_acceleration.z == pytest.approx(G, abs=0.1), f"stamp {stamp:.3f} s"  # stddev 0.017
    unserved = [line for line in sim.log().splitlines() if "not served" in line]
    assert all("/tf" in line for line in unserved)  # imu, camera_info, scan, clock, ... are all served


def test_urdf_gazebo_reference_camera_and_imu_plugins(tmp_path: Path) -> None:
    """Gazebo classic sensors in a URDF ``<gazebo reference>``: parsed on that link, frames and topics
    from the gazebo_ros plugins; the link's URDF material colour paints its shapes for cameras."""
    from pytest_simtwin.sim.world.mjcf import to_mjcf

    urdf = (Path(__file__).parent / "data" / "robots" / "diffbot.urdf").read_text()
    extra = """
  <link name="camera_link">
    <visual><geometry><box size="0.02 0.05 0.02"/></geometry><material name="blue"><color rgba="0 0 1 1"/></material></visual>
    <collision><geometry><box size="0.02 0.05 0.02"/></geometry></collision>
    <inertial><mass value="0.01"/><inertia ixx="1e-6" iyy="1e-6" izz="1e-6" ixy="0" ixz="0" iyz="0"/></inertial>
  </link>
  <joint name="camera_joint" type="fixed"><parent link="base_link"/><child link="camera_link"/>
    <origin xyz="0.1 0 0.1" rpy="0 0 0"/></joint>
  <gazebo reference="camera_link">
    <sensor type="camera" name="front">
      <update_rate>15</update_rate>
      <camera><horizontal_fov>1.3</horizontal_fov><image><width>64</width><height>48</height></image></camera>
      <plugin name="front_driver" filename="libgazebo_ros_camera.so">
        <ros><namespace>/diffbot</namespace></ros><frame_name>camera_optical</frame_name>
      </plugin>
    </sensor>
    <sensor type="imu" name="imu">
      <update_rate>50</update_rate>
      <plugin name="imu_driver" filename="libgazebo_ros_imu_sensor.so"><ros><remapping>~/out:=imu/data</remapping></ros></plugin>
    </sensor>
  </gazebo>
</robot>"""
    path = tmp_path / "diffbot_sensors.urdf"
    path.write_text(urdf.replace("</robot>", extra))
    world = load_world(None, robot=path)
    devices = {d.name: d for d in world.robot.devices}
    camera, imu = devices["front"], devices["imu"]
    # camera_link -> base_link -> base_footprint are fixed joints: Gazebo lumps the sensors into base_footprint
    assert camera.link == "base_footprint" and camera.frame_id == "camera_optical" and camera.update_rate == 15
    assert (camera.pose.x, camera.pose.y, camera.pose.z) == pytest.approx((0.1, 0.0, 0.1))
    assert camera.topics == {"image": "/diffbot/front/image_raw", "camera_info": "/diffbot/front/camera_info"}
    assert (camera.width, camera.height, camera.near, camera.far) == (64, 48, 0.1, 100.0)  # sdformat clip defaults
    # gazebo_ros' default frame_name: the sensor's parent link, the one it is lumped into
    assert imu.topics == {"imu": "/imu/data"} and imu.frame_id == "base_footprint" and imu.relative_orientation
    xml, layout = to_mjcf(world)
    site = layout.device_sites[f"{world.robot.name}/base_footprint/front"]
    assert f'<camera name="{site}"' in xml and 'rgba="0.0 0.0 1.0 1.0"' in xml
    assert f'<accelerometer name="{layout.device_sites[f"{world.robot.name}/base_footprint/imu"]}::acc"' in xml


def test_an_unknown_no_sensor_name_is_a_usage_error() -> None:
    from simproc import SIM_COMMAND

    out = subprocess.run([SIM_COMMAND, WORLD, "--no-sensor", "frnt_camera"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--no-sensor frnt_camera: no sensor or kind of that name" in out.stderr and "front_camera" in out.stderr


def test_a_nested_model_sensor_gets_gz_sims_scoped_names(tmp_path: Path) -> None:
    world = tmp_path / "nested.sdf"
    world.write_text("""<sdf version="1.9"><world name="w">
      <model name="rig"><static>true</static>
        <model name="head"><link name="mount">
          <sensor name="cam" type="camera"><camera><horizontal_fov>1.0</horizontal_fov></camera></sensor>
          <sensor name="imu" type="imu"><topic>rig_imu</topic></sensor>
        </link></model>
      </model></world></sdf>""")
    rig = next(m for m in load_world(world).models if m.name == "rig")
    devices = {d.name: d for d in rig.devices}
    cam = devices["cam"]
    assert (cam.model, cam.link, cam.frame_id) == ("rig", "head::mount", "rig/head/mount/cam")
    assert cam.topics["image"] == "/world/w/model/rig/model/head/link/mount/sensor/cam/image"
    assert cam.topics["camera_info"] == "/world/w/model/rig/model/head/link/mount/sensor/cam/camera_info"
    assert devices["imu"].topics == {"imu": "/rig_imu"}  # an explicit <topic> is kept


def test_a_paused_simulator_sends_a_late_camera_subscriber_a_frame(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import Image

    sim = sim_factory(WORLD, "--paused")
    before = sim.control.state()["sim_time"]
    buf = sim.ros.subscribe("/front_camera/image", Image)
    wait_until(lambda: buf.count > 0, 10.0, what="a frame for a subscriber of a paused simulator")
    assert sim.control.state()["sim_time"] == before  # nothing was stepped
    r, g, b = _image(buf.latest())[120, 160].tolist()
    assert r > 150 and g < 60 and b < 60  # the red box, seen from the start pose


NOISE_SCRIPT = """
import dataclasses, json, sys
from pathlib import Path
import numpy as np
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.engine.sensors import Cameras
from pytest_simtwin.sim.world.sdf import load_world
from pytest_simtwin.sim.world.sensors import NoiseSpec

world = load_world(Path(sys.argv[1]))
physics = Physics(world)
physics.step(50)
cam = next(d for d in world.robot.devices if d.name == "front_camera")
depth_cam = next(d for d in world.robot.devices if d.name == "front_depth")
cameras = Cameras(0)
clean = cameras.render(cam, physics.model, physics.data, depth=False).astype(float)
noisy_spec = dataclasses.replace(cam, image_noise=NoiseSpec("gaussian", 0.0, 0.02))
noisy = cameras.render(noisy_spec, physics.model, physics.data, depth=False).astype(float)
sky = (noisy - clean)[5:40, :]  # grey 178: no noise clipped at 0 or 255
d_clean = cameras.render(depth_cam, physics.model, physics.data, depth=True)
d_noisy = cameras.render(dataclasses.replace(depth_cam, image_noise=NoiseSpec("gaussian", 0.0, 0.01)),
                         physics.model, physics.data, depth=True)
diff = (d_noisy - d_clean)[100:140, 130:190]
print(json.dumps({"rgb_std": float(sky.std()), "same_per_channel": bool((sky[..., 0] == sky[..., 2]).all()),
                  "depth_std": float(diff.std()), "sky_inf": bool(np.isposinf(d_noisy[:40]).all())}))
"""


def test_camera_and_depth_noise_follow_the_sdf_stddev() -> None:
    # In a fresh interpreter: MuJoCo picks its GL backend at import, and this one may have imported it already.
    env = {**os.environ, "MUJOCO_GL": "egl"}
    out = subprocess.run(
        [sys.executable, "-c", NOISE_SCRIPT, WORLD], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-2000:]
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["rgb_std"] == pytest.approx(255 * 0.02, rel=0.1)  # gz: in [0, 1] colour units
    assert stats["same_per_channel"]  # one value per pixel, added to each channel
    assert stats["depth_std"] == pytest.approx(0.01, rel=0.1) and stats["sky_inf"]


def test_sensor_faults_reach_the_imu(sim_factory: Callable[..., SimProcess]) -> None:
    """Faults apply to every sensor topic: IMU and cameras publish through the same node as odometry."""
    from sensor_msgs.msg import Imu

    sim = sim_factory(WORLD, "--paused", "--seed", "7", "--no-sensor", "camera")
    imu = sim.ros.subscribe("/imu", Imu)
    _stepped(sim, imu, imu.count + 5)
    t_fault = float(sim.control.state()["sim_time"])
    fault = sim.control.inject_fault({"kind": "blackout", "target": "/imu", "params": {}})
    sim.control.step(duration=0.5)  # 0.5 s at the IMU's rate would be dozens of messages
    t_end = float(sim.control.state()["sim_time"])
    sim.control.clear_fault(fault["id"])
    _stepped(sim, imu, imu.count + 5)
    # By stamp, not by count at a moment: messages of the chunk before the fault may still be in flight
    # when it is injected; the ones after the clear arrive after any sent during it (one reliable writer).
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in imu.messages()]
    assert not [t for t in stamps if t_fault + 1e-6 < t <= t_end], (t_fault, t_end, stamps[-40:])
    assert max(stamps) > t_end
    with pytest.raises(ControlError, match="no simulated sensor topic '/nope'"):
        sim.control.inject_fault({"kind": "blackout", "target": "/nope", "params": {}})
