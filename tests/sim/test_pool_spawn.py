"""SimPool(spawn_name=..., spawn_pose=...) as a batch user runs it: two simulators of turtlebot3_world, each
with a TurtleBot3 waffle named and placed as turtlebot3_gazebo's launch file spawns it (`ros_gz_sim create
-name NAME -x -2.0 -y -0.5 -z 0.01`, here with a yaw). Each member's ground truth starts at the spawn pose,
its Gazebo-scoped frame ids use the spawn name, and each robot drives from there on its own command."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_public_robots import TB3

from pytest_simtwin.batch.pool import SimPool
from pytest_simtwin.errors import ConfigError

WORLD = TB3 / "worlds" / "turtlebot3_world.world"
ROBOT = TB3 / "models" / "turtlebot3_waffle" / "model.sdf"
NAME = "my_waffle"
X, Y, Z, YAW = -2.0, -0.5, 0.01, 0.3


def test_every_member_starts_its_robot_at_the_spawn_pose_under_the_spawn_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TB3 / "models"))  # as turtlebot3_gazebo's launch files
    pool = SimPool(2, world=WORLD, robot=ROBOT, spawn_name=NAME, spawn_pose=[X, Y, Z, YAW],
                   artifacts=tmp_path, extra_args=("--no-sensor", "camera"))  # fmt: skip
    assert (pool.config.spawn_name, pool.config.spawn_pose) == (NAME, (X, Y, Z, 0.0, 0.0, YAW))
    with pool:
        starts = []
        for member in pool:
            assert member.control.state()["robot"] == NAME
            assert NAME in member.control.entities() and "turtlebot3_waffle" not in member.control.entities()
            robot = member.robot()
            robot.wait(0.3)  # falls 1 cm and settles
            pose = member.control.get_entity_state(NAME)["pose"]
            assert (pose["x"], pose["y"], pose["yaw"]) == (pytest.approx(X, abs=0.01), pytest.approx(Y, abs=0.01),
                                                           pytest.approx(YAW, abs=0.01)), (member.index, pose)
            assert 0.0 <= pose["z"] < Z, "spawned at z, then rests on the ground"
            truth = robot.ground_truth
            assert (truth.x, truth.y, truth.yaw) == (pytest.approx(X, abs=0.01), pytest.approx(Y, abs=0.01),
                                                     pytest.approx(YAW, abs=0.01))
            odom = robot.pose
            assert math.hypot(odom.x, odom.y) < 0.005, "odometry starts at zero in the odom frame (gz DiffDrive)"
            assert robot.wait_for_imu().frame_id == NAME + "/imu_link/tb3_imu"  # gz-sensors' scoped name
            starts.append(truth)
        speeds = (0.2, 0.1)  # a command of its own for each member: each answers on its own domain
        for member, speed in zip(pool, speeds, strict=True):
            member.robot().send_velocity(speed, 0.0, 2.0, stop=True)
        for member, start, speed in zip(pool, starts, speeds, strict=True):
            end = member.robot().ground_truth
            ahead = (end.x - start.x) * math.cos(YAW) + (end.y - start.y) * math.sin(YAW)
            aside = -(end.x - start.x) * math.sin(YAW) + (end.y - start.y) * math.cos(YAW)
            assert ahead == pytest.approx(2.0 * speed, abs=0.06) and abs(aside) < 0.03, (member.index, start, end)


def test_bad_spawn_arguments_name_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SimPool: spawn-name 'bot' names the robot added with robot=\.\.\., found no"):
        SimPool(2, spawn_name="bot")
    with pytest.raises(ConfigError, match=r"SimPool\(spawn_pose=\.\.\.\): expected 3 numbers X Y Z, 4 X Y Z YAW or 6"):
        SimPool(2, robot=ROBOT, spawn_pose=(1, 2))
    with pytest.raises(ConfigError, match=r"\('x' is not a number\)"):
        SimPool(2, robot=ROBOT, spawn_pose="1 2 x")
    with pytest.raises(ConfigError, match=r"SimPool\(spawn_name=\.\.\.\): expected a model name without spaces"):
        SimPool(2, robot=ROBOT, spawn_name="my bot")
    with pytest.raises(ConfigError, match="the process backend runs --simtwin-command as given"):
        SimPool(2, robot=ROBOT, spawn_name="bot", backend="process", command="my_sim --world {world}")
