"""The three basic motion tests: drive forward, rotate in place, stop."""

from __future__ import annotations

import math

import pytest

from pytest_simtwin.helpers.assertions import assert_robot_stopped, assert_within_tolerance


def test_drives_forward_one_metre(robot):
    robot.send_velocity(0.5, 0.0, 2.0)  # 2 s of sim time, then stop

    truth = robot.ground_truth
    assert_within_tolerance(truth.x, 1.0, 0.02, metric="position_error", unit="m")
    assert abs(truth.y) < 0.01, f"drifted sideways: y = {truth.y:.4f} m"
    assert abs(truth.yaw) < 0.02, f"heading changed: yaw = {truth.yaw:.4f} rad"
    # wheel odometry agrees with the truth on flat ground
    assert robot.pose.x == pytest.approx(truth.x, abs=0.01)
    assert robot.distance_travelled == pytest.approx(1.0, abs=0.03)


def test_rotates_in_place(robot):
    robot.send_velocity(0.0, 0.5, 3.0)  # 0.5 rad/s for 3 s = 1.5 rad counter-clockwise

    truth = robot.ground_truth
    assert_within_tolerance(truth.yaw, 1.5, 0.03, unit="rad")
    assert robot.yaw == pytest.approx(1.5, abs=0.03)  # odometry yaw from the full quaternion
    assert math.hypot(truth.x, truth.y) < 0.02, "rotating in place moved the robot"


def test_rotation_direction_and_wraparound(robot):
    robot.send_velocity(0.0, -1.0, 2.0)  # clockwise 2 rad
    assert robot.ground_truth.yaw == pytest.approx(-2.0, abs=0.04)
    robot.send_velocity(0.0, -1.0, 2.0)  # 4 rad clockwise in total: yaw wraps to 2*pi - 4
    assert robot.ground_truth.yaw == pytest.approx(2 * math.pi - 4.0, abs=0.06)


def test_stops_when_commanded(robot):
    robot.send_velocity(0.5, 0.0, 1.0)  # 1 s at 0.5 m/s, then a zero command; returns once at rest
    assert_robot_stopped(robot, linear_tol=0.01, angular_tol=0.02)
    braked_at = robot.ground_truth.x
    # speed-up and braking ramps are symmetric (2 m/s^2): 0.5 m/s for 1 s still covers 0.5 m
    assert braked_at == pytest.approx(0.5, abs=0.02)

    robot.wait(1.0)  # one more second of sim time: nothing creeps
    assert robot.ground_truth.x == pytest.approx(braked_at, abs=0.002)
    assert_robot_stopped(robot, linear_tol=0.005, angular_tol=0.01)
