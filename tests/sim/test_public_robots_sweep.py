"""More public robots used as shipped (tests/robots/*/SOURCE.md), through the real simulator process:
each drives 0.2 m/s for 2 s to 0.40 +/- 0.06 m of ground truth, turns 0.5 rad/s for 2 s to about 1 rad,
stays level, sees a spawned box with each of its lidars and publishes what its bridge / plugin names.

* gazebosim/ros_gz_project_template: `ros_gz_example_gazebo/worlds/diff_drive.sdf` (its robot an
  `<include merge="true">` of `package://ros_gz_example_description/models/diff_drive`, found through
  GZ_SIM_RESOURCE_PATH = the share folder as the package's env hook sets it) with its bridge file
  `ros_gz_example_bridge.yaml`, as `diff_drive.launch.py` starts them.
* gazebosim/docs (Harmonic): the tutorial worlds `moving_robot.sdf` and `sensor_tutorial.sdf`, run as
  `gz sim FILE`; `building_robot.sdf` has no drive (a clear error, not a robot added silently).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from public_robot_checks import drive_turn_and_look
from simproc import SimProcess
from test_sim_process import latest_at

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.topics import load_bridge
from pytest_simtwin.sim.world.sdf import load_world

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
TEMPLATE = ROBOTS / "ros_gz_project_template"
TUTORIALS = ROBOTS / "gazebo_docs_tutorials"


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
