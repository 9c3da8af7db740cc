"""Public robots and worlds, used as shipped: TurtleBot3 burger / waffle / waffle_pi (turtlebot3_gazebo,
vendored under tests/robots/turtlebot3) in turtlebot3_world, turtlebot3_house and empty_world, driven by
the real simulator process over real ROS topics (/cmd_vel in, /odom and /scan out).

The robot is placed as the turtlebot3_gazebo launch files spawn it (x -2.0, y -0.5, z 0.01 in
turtlebot3_world and turtlebot3_house, the origin in empty_world), with GZ_SIM_RESOURCE_PATH on the
package's models folder like those launch files set it. Three combinations (each model once, each world
once) run by default; the full 3 x 3 matrix is marked slow.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess
from test_sim_process import command, latest_at, truth

from pytest_simtwin.sim.world.model import Pose
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


@pytest.mark.parametrize(("model", "world"), MATRIX)
def test_turtlebot3_drives_turns_stays_level_and_sees_a_box(
    sim_factory: Any, monkeypatch: pytest.MonkeyPatch, model: str, world: str
) -> None:
    from sensor_msgs.msg import LaserScan

    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TB3 / "models"))
    world_file, robot_file = TB3 / "worlds" / f"{world}.world", TB3 / "models" / f"turtlebot3_{model}" / "model.sdf"
    x, y = SPAWN[world]
    sim: SimProcess = sim_factory(
        str(world_file), "--robot", str(robot_file), f"--robot-pose={x},{y},0.01,0,0,0", "--paused"
    )
    sim.control.step(duration=0.3)  # settle on the ground
    start = truth(sim)["pose"]
    assert start["x"] == pytest.approx(x, abs=0.01) and start["y"] == pytest.approx(y, abs=0.01)

    command(sim, 0.2)
    sim.control.step(duration=2.0)
    command(sim, 0.0)
    st = sim.control.step(duration=1.0)
    after_drive = truth(sim)["pose"]
    distance = math.hypot(after_drive["x"] - start["x"], after_drive["y"] - start["y"])
    # max_linear_acceleration 1.0 in the model: 0.2 m/s is reached after 0.2 s -> 0.38 m in 2 s
    assert distance == pytest.approx(0.40, abs=0.06)
    odom = latest_at(sim, "/odom", st)
    assert odom.pose.pose.position.x == pytest.approx(distance, abs=0.02), "wheels grip: odometry = ground truth"
    assert _tilt(after_drive) < 0.03, after_drive

    # lidar (index 0 = straight ahead, min_angle 0): a box 1 m ahead of the sensor
    robot = load_world(world_file, robot_file, Pose(x, y, 0.01)).robot
    lidar = robot.lidars[0]
    sensor = robot.link(lidar.link).pose * lidar.pose
    yaw = after_drive["yaw"]
    sx = after_drive["x"] + sensor.x * math.cos(yaw) - sensor.y * math.sin(yaw)
    sy = after_drive["y"] + sensor.x * math.sin(yaw) + sensor.y * math.cos(yaw)
    depth = 0.1
    centre = 1.0 + depth / 2
    pose = {"x": sx + centre * math.cos(yaw), "y": sy + centre * math.sin(yaw), "z": 0.25, "yaw": yaw}
    sim.control.spawn("target", "box", [depth, 0.6, 0.5], pose)
    st = sim.control.step(duration=0.4)  # two scan periods at 5 Hz
    scan = latest_at(sim, "/scan", st, LaserScan, rate=lidar.update_rate)
    assert scan.header.frame_id == "base_scan"
    assert scan.ranges[0] == pytest.approx(1.0, abs=0.05), scan.ranges[:3]
    sim.control.delete("target")

    command(sim, 0.0, 0.5)
    sim.control.step(duration=2.0)
    command(sim, 0.0, 0.0)
    sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    turned = math.remainder(end["yaw"] - after_drive["yaw"], 2 * math.pi)
    assert turned == pytest.approx(1.0, abs=0.15)
    assert math.hypot(end["x"] - after_drive["x"], end["y"] - after_drive["y"]) < 0.03, "turns in place"
    assert _tilt(end) < 0.03, end


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
