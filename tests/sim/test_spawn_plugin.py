"""The spawn options as a user gives them (pytester, -n 2, the real simulator): a TurtleBot3 waffle in
turtlebot3_world, named and placed as turtlebot3_gazebo's launch file spawns it (`ros_gz_sim create -name
NAME -x -2.0 -y -0.5 -z 0.01`). Ground truth starts at the spawn pose, odometry at zero in the odom frame
(gz DiffDrive), the robot drives from there, its Gazebo-scoped frame ids use the spawn name, and a marker
starts one test's robot elsewhere (a separate simulator)."""

from __future__ import annotations

import pytest
from test_public_robots import TB3

pytest_plugins = ["pytester"]

WORLD = TB3 / "worlds" / "turtlebot3_world.world"
ROBOT = TB3 / "models" / "turtlebot3_waffle" / "model.sdf"

PLUGIN_TESTS = """
import math
import pytest

NAME = "my_waffle"
X, Y, Z = -2.0, -0.5, 0.01  # turtlebot3_world.launch.py's x_pose, y_pose and create's -z


def test_starts_at_the_spawn_pose_with_odometry_at_zero_and_drives_from_there(robot, sim):
    assert sim.robot_name() == NAME
    robot.wait(0.3)  # settle on the ground
    pose = sim.get_pose()
    assert (pose["x"], pose["y"], pose["yaw"]) == (pytest.approx(X, abs=0.01), pytest.approx(Y, abs=0.01),
                                                   pytest.approx(0.0, abs=0.01))
    assert 0.0 <= pose["z"] < Z, "spawned at z, then rests on the ground"
    odom = robot.pose
    assert math.hypot(odom.x, odom.y) < 0.005 and abs(odom.yaw) < 0.005, odom
    assert robot.wait_for_odom().header.frame_id == "odom"
    assert robot.wait_for_imu().frame_id == NAME + "/imu_link/tb3_imu"  # gz-sensors' scoped name
    start = robot.ground_truth
    robot.send_velocity(0.2, 0.0, 2.0)
    robot.stop()
    end, odom = robot.ground_truth, robot.pose
    assert end.x - start.x == pytest.approx(0.40, abs=0.06) and abs(end.y - start.y) < 0.03
    assert odom.x == pytest.approx(end.x - start.x, abs=0.02), "odometry: distance from the spawn pose"
    sim.reset()
    robot.wait(0.3)
    back, odom = robot.ground_truth, robot.pose
    assert (back.x, back.y) == (pytest.approx(X, abs=0.01), pytest.approx(Y, abs=0.01)), "reset: the spawn pose"
    assert math.hypot(odom.x, odom.y) < 0.005, odom


@pytest.mark.simtwin(spawn_pose=(0.55, -0.55, 0.05, 0, 0, math.pi / 2))
def test_a_marker_starts_the_robot_elsewhere(robot, sim):
    robot.wait(0.5)  # falls 5 cm and settles
    pose = sim.get_pose()
    assert (pose["x"], pose["y"], pose["yaw"]) == (pytest.approx(0.55, abs=0.01), pytest.approx(-0.55, abs=0.01),
                                                   pytest.approx(math.pi / 2, abs=0.01))
    assert pose["z"] < 0.01 and abs(pose["roll"]) < 0.02 and abs(pose["pitch"]) < 0.02, pose
    assert sim.robot_name() == NAME  # the option's name, the marker's pose
    start = robot.ground_truth
    robot.send_velocity(0.2, 0.0, 2.0)
    robot.stop()
    end, odom = robot.ground_truth, robot.pose
    assert end.y - start.y == pytest.approx(0.40, abs=0.06) and abs(end.x - start.x) < 0.03, "drives north"
    # the odom frame starts at the spawn pose: forward is its +x, whatever the heading in the world
    assert odom.x == pytest.approx(end.y - start.y, abs=0.02) and abs(odom.y) < 0.03, odom
"""


def test_spawn_name_and_pose_with_the_plugin_as_a_user_runs_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(TB3 / "models"))  # as turtlebot3_gazebo's launch files
    pytester.makepyfile(test_spawn=PLUGIN_TESTS)
    options = (f"--simtwin-world={WORLD}", f"--simtwin-robot={ROBOT}", "--simtwin-spawn-name=my_waffle",
               "--simtwin-spawn-pose=-2.0 -0.5 0.01 0", "--simtwin-sensors-off=camera")  # fmt: skip
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *options, timeout=300)
    result.assert_outcomes(passed=2)
    # one worker for both: the marker's pose restarts the simulator after the option's pose
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0", *options, timeout=300).assert_outcomes(passed=2)


def test_a_bad_spawn_value_under_xdist_names_the_option_and_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="import pytest\n\n@pytest.mark.simtwin(spawn_pose=(1, 2))\ndef test_marked(sim):\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", timeout=120)
    out = result.stdout.str() + result.stderr.str()
    assert "test_bad.py::test_marked: @pytest.mark.simtwin(spawn_pose=...): expected 3 numbers X Y Z" in out, out
    assert result.ret != 0
    bad = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--simtwin-spawn-pose=1,2", timeout=120)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--simtwin-spawn-pose: expected 3 numbers X Y Z, 4 X Y Z YAW or 6" in bad.stderr.str()

