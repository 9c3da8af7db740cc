"""The robot / robots fixtures in a multi-robot world: real pytest runs against the real simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

WORLD = Path(__file__).resolve().parents[1] / "robots" / "gz_sim" / "examples" / "worlds" / "diff_drive.sdf"

TESTS = f"""
import math
import pytest

WORLD = {str(WORLD)!r}

@pytest.mark.simtwin(world=WORLD, robot_name="vehicle_green")
def test_green_by_marker(robot, sim):
    assert robot.cmd_vel_topic == "/model/vehicle_green/cmd_vel"
    start = robot.ground_truth
    assert start.y == pytest.approx(-2.0, abs=0.05)
    robot.send_velocity(0.4, 0.0, 2.0)
    end = robot.ground_truth
    assert end.x - start.x > 0.4
    blue = sim.control.get_entity_state("vehicle_blue")["pose"]
    assert abs(blue["x"]) < 0.02  # the other vehicle did not move

@pytest.mark.simtwin(world=WORLD)
def test_blue_by_ini(robot):
    assert robot.cmd_vel_topic == "/model/vehicle_blue/cmd_vel"
    assert robot.ground_truth.y == pytest.approx(2.0, abs=0.05)

@pytest.mark.simtwin(world=WORLD)
def test_robots_fixture(robots):
    assert sorted(robots) == ["vehicle_blue", "vehicle_green"]
    robots["vehicle_blue"].send_velocity(-0.3, 0.0, 1.5)
    assert robots["vehicle_blue"].ground_truth.x < -0.2
    assert abs(robots["vehicle_green"].ground_truth.x) < 0.02
"""

UNNAMED = f"""
import pytest

@pytest.mark.simtwin(world={str(WORLD)!r})
def test_unnamed(robot):
    pass
"""


def test_robot_fixture_picks_the_named_robot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_multi=TESTS)
    pytester.makeini("[pytest]\nsimtwin_robot_name = vehicle_blue\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--simtwin-rtf=0", timeout=240)
    result.assert_outcomes(passed=3)


def test_several_robots_and_no_name_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_unnamed=UNNAMED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the world has 2 robots (vehicle_blue, vehicle_green)*robot_name=*"])


DEMOS = Path(__file__).resolve().parents[1] / "robots" / "gz_ros2_control_demos"
ROS2_CONTROL = """
import pytest


def test_drives_through_its_controller(robot):
    # the robot fixture sends what diff_drive_controller takes: TwistStamped on its ~/cmd_vel
    assert robot.cmd_vel_topic == "/diff_drive_base_controller/cmd_vel"
    assert robot.cmd_vel_type == "twist_stamped"
    start = robot.ground_truth
    robot.send_velocity(0.5, 0.0, 2.0)
    end = robot.ground_truth
    assert 0.75 < end.x - start.x < 1.0  # 0.5 m/s for 2 s with the controller's 1 m/s^2 ramp: 0.875 m
    assert robot.pose.x > 0.8  # open_loop odometry on /diff_drive_base_controller/odom
"""


def test_ros2_control_robot_with_the_robot_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rc=ROS2_CONTROL)
    pytester.path.joinpath("empty.sdf").write_text(
        '<?xml version="1.0"?><sdf version="1.9"><world name="empty"><model name="ground_plane"><static>true'
        '</static><link name="l"><collision name="c"><geometry><plane><normal>0 0 1</normal></plane></geometry>'
        "</collision></link></model></world></sdf>\n"
    )
    robot = DEMOS / "urdf" / "test_diff_drive.xacro.urdf"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--simtwin-world=empty.sdf", f"--simtwin-robot={robot}", timeout=240
    )
    result.assert_outcomes(passed=1)
