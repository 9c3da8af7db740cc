"""The lidar sees what is there: a box spawned at a known place is measured at that distance."""

from __future__ import annotations

import math
import statistics

import pytest

from pytest_simtwin.helpers.assertions import assert_within_tolerance

LIDAR_X = 0.02  # the lidar sits 2 cm ahead of base_footprint (models/diffbot/model.sdf)
SIZE = 0.3  # spawned box edge (m)


def readings_near(scan, bearing_deg, half_width_deg):
    """Valid ranges (REP-117: finite, within [range_min, range_max]) of the beams near a bearing."""
    out = []
    for i, r in enumerate(scan.ranges):
        angle = math.degrees(math.remainder(scan.angle_min + i * scan.angle_increment, math.tau))
        if abs(math.remainder(angle - bearing_deg, 360.0)) <= half_width_deg and scan.range_min <= r <= scan.range_max:
            out.append(r)
    assert out, f"no valid lidar reading within {half_width_deg} deg of {bearing_deg} deg"
    return out


def stamp(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def scan_after(robot, sim, sim_time):
    """The first LaserScan taken after ``sim_time``. A scan still in flight when the box appeared
    arrives "new" but shows the room without it; so can one from before the reset that started this
    test (its stamp is later than the restarted clock), when the machine is busy."""
    for _ in range(10):
        scan = robot.wait_for_scan()
        if sim_time < stamp(scan) <= sim.sim_time:
            return scan
    raise AssertionError(f"no LaserScan stamped between {sim_time:.3f} s and now in 10 scans")


@pytest.mark.parametrize(
    ("x", "y", "bearing_deg"),
    [(1.5, 0.0, 0.0), (0.0, 1.2, 90.0), (-1.0, 0.0, 180.0), (1.0, -1.0, -45.0)],
    ids=["ahead", "left", "behind", "front-right"],
)
def test_spawned_box_is_seen_at_its_distance(robot, sim, record_metric, x, y, bearing_deg):
    sim.spawn_obstacle("probe", "box", (SIZE, SIZE, 0.5), x=x, y=y, yaw=math.radians(bearing_deg))
    spawned_at = sim.sim_time
    scan = scan_after(robot, sim, spawned_at)
    # the box is turned to face the robot, so the nearest point is its face centre
    centre = math.hypot(x - LIDAR_X, y)
    expected = centre - SIZE / 2
    # median of the beams within 2 degrees of the bearing: the face is flat there, and the median
    # of 5 readings has ~1/2 of one reading's noise (a minimum would be biased low)
    measured = statistics.median(readings_near(scan, bearing_deg, 2.0))

    metric = record_metric("lidar_range_error", abs(measured - expected), unit="m", tolerance=0.04)
    metric.extra["baseline_atol"] = 0.02  # sensor noise: only a change beyond 2 cm is a regression
    if abs(measured - expected) > 0.04:  # say whether the box was still there, for the report
        print(
            f"scan stamped {stamp(scan):.3f} s, spawned at sim time <= {spawned_at:.3f} s; entities now: {sim.entities()}"
        )
    assert_within_tolerance(measured, expected, 0.04, unit="m")  # noise sigma 0.01 m


def test_nothing_is_seen_where_nothing_is(robot):
    # behind-left quadrant towards the pillar at (-2, 2): only walls and the pillar, nothing within 2 m
    assert robot.min_range((100.0, 170.0)) > 2.0
    # straight ahead: the crate 2.8 m away (its face), within the 8 m range
    assert robot.min_range((-3.0, 3.0)) == pytest.approx(2.8 - LIDAR_X, abs=0.04)
