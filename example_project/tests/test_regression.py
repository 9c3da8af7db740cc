"""Baseline regression: a fixed manoeuvre whose metrics are compared with simtwin_baselines/.

`pytest --simtwin-update-baseline` rewrites the baselines (review the diff like code);
`--simtwin-fail-on-regression` (set in pyproject.toml) fails the test when a metric got worse
than its baseline by more than the relative band (simtwin_baseline_rtol).
"""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_square_path(robot, record_metric):
    side, speed = 0.8, 0.4
    for _ in range(4):
        robot.send_velocity(speed, 0.0, side / speed)
        robot.send_velocity(0.0, 1.0, math.pi / 2)

    truth = robot.ground_truth
    odom = robot.pose
    record_metric(
        "closure_error",
        math.hypot(truth.x, truth.y),
        unit="m",
        tolerance=0.05,
        description="distance from the start after driving the square (ground truth)",
    )
    record_metric("heading_error", abs(math.remainder(truth.yaw, math.tau)), unit="rad", tolerance=0.05)
    record_metric(
        "odometry_drift",
        math.hypot(odom.x - truth.x, odom.y - truth.y),
        unit="m",
        tolerance=0.02,
        description="wheel odometry vs ground truth at the end",
    )
    record_metric(
        "path_length",
        robot.distance_travelled,
        unit="m",
        direction="two-sided",
        description="odometry path length (4 x 0.8 m expected)",
    )

    traj = robot.trajectory
    moving = np.abs(traj["vx"]) > 0.05
    assert moving.any(), "no odometry while driving"
    assert robot.distance_travelled == pytest.approx(4 * side, abs=0.05)
