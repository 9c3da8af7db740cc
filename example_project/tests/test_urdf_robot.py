"""The same robot from its URDF/xacro description behaves like the SDF model."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.simtwin(world="worlds/empty_room.sdf", robot="urdf/robot.urdf.xacro")


def test_xacro_robot_drives_and_turns_like_the_sdf_one(robot):
    robot.send_velocity(0.5, 0.0, 2.0)
    assert robot.ground_truth.x == pytest.approx(1.0, abs=0.02)
    robot.send_velocity(0.0, 0.5, 3.0)
    assert robot.ground_truth.yaw == pytest.approx(1.5, abs=0.03)


def test_xacro_robot_has_the_lidar(robot):
    scan = robot.wait_for_scan()
    assert len(scan.ranges) == 360
    assert scan.range_max == pytest.approx(8.0)
    # the east wall's inner face is at x = 4.0; the lidar sits 2 cm ahead of the base
    assert robot.min_range((-2.0, 2.0), scan=scan) == pytest.approx(4.0 - 0.02, abs=0.04)
