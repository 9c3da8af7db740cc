"""Collision avoidance through the node under test (src/safety_stop), launched on the test's domain.

The test drives the robot toward the crate through /cmd_vel_in; only the safety stop publishes the
robot's /cmd_vel. Without it the commanded 2 m would end inside the crate.
"""

from __future__ import annotations

import pytest

from pytest_simtwin import faults
from pytest_simtwin.helpers.assertions import assert_robot_stopped

STOP_DISTANCE = 0.5  # m
LIDAR_X = 0.02  # lidar ahead of base_footprint (m)
CHASSIS_FRONT = 0.08  # chassis front ahead of base_footprint (m)
CRATE_FACE = 2.8  # near face of crate_ahead (worlds/test_arena.sdf)


# The node reacts in wall-clock time. On a CI machine shared by 8 simulators and their nodes it can
# be starved of CPU for a few hundred milliseconds; at half of real time that costs a few
# centimetres of simulated travel instead of 20 cm, so the test measures the node's logic, not the
# machine's load. (On the robot, the node has its own CPU.)
@pytest.mark.simtwin(rtf=0.5)
def test_stops_short_of_the_crate(robot, sim, safety_stop, record_metric):
    sim.set_pose(x=1.0, y=0.0, yaw=0.0)  # 1.8 m from the crate
    safety_stop(stop_distance=STOP_DISTANCE)

    robot.send_velocity(0.4, 0.0, 5.0, topic="/cmd_vel_in")  # 2 m if nothing stops it
    assert_robot_stopped(robot, within=1.0)

    truth = robot.ground_truth
    gap = CRATE_FACE - (truth.x + LIDAR_X)  # lidar to crate face, from the true pose
    # collision_detection: how far from the configured distance the robot actually stopped
    metric = record_metric(
        "collision_detection",
        abs(gap - STOP_DISTANCE),
        unit="m",
        tolerance=0.10,
        description="|stop gap - stop_distance| (lidar 10 Hz at 0.4 m/s + 4 cm braking)",
    )
    # The gap depends on where between two scans (10 Hz) the robot crosses the limit and on how fast
    # the node gets the CPU: 4-10 cm from run to run on a busy machine. Only a change beyond that
    # spread is a regression against the baseline (the tolerance still applies to every run).
    metric.extra["baseline_atol"] = 0.06
    assert truth.x + CHASSIS_FRONT < CRATE_FACE, "the robot touched the crate"
    assert gap <= STOP_DISTANCE + 0.01, f"stopped {gap:.3f} m from the crate: before the obstacle was in range"
    assert metric.passed, f"stopped {gap:.3f} m from the crate, expected {STOP_DISTANCE} m - 0.10 m at most"
    assert robot.min_range((-5.0, 5.0)) == pytest.approx(gap, abs=0.04)  # the lidar agrees


@pytest.mark.simtwin(rtf=0.5)
def test_turning_away_is_still_allowed(robot, sim, safety_stop):
    sim.set_pose(x=2.0, y=0.0, yaw=0.0)  # 0.78 m from lidar to crate: inside 1 m, blocked from the start
    safety_stop(stop_distance=1.0)

    robot.send_velocity(0.3, 0.0, 1.0, topic="/cmd_vel_in")
    assert robot.ground_truth.x == pytest.approx(2.0, abs=0.01), "drove forward while blocked"

    robot.send_velocity(0.0, 1.0, 1.0, topic="/cmd_vel_in")  # turning passes through
    truth = robot.ground_truth
    # ~1 rad; the exact angle depends on how fast the node relays the final zero (wall-clock latency)
    assert 0.6 < truth.yaw < 1.6, f"turned {truth.yaw:.2f} rad for a 1 rad turn command"
    assert truth.x == pytest.approx(2.0, abs=0.02), "turning in place moved the robot"


@pytest.mark.simtwin(rtf=0.5)
@pytest.mark.parametrize(
    "scan_timeout",
    [0.3, pytest.param(0.0, marks=pytest.mark.xfail(strict=True, reason="a node without a watchdog drives on blind"))],
    ids=["watchdog", "naive"],
)
def test_stops_when_the_scans_stop(robot, sim, safety_stop, scan_timeout):
    """Robustness: the lidar goes silent 1 s into a 3 s drive; the node must stop the robot within 0.5 s."""
    sim.set_pose(x=-2.0, y=0.0, yaw=0.0)  # open floor ahead: only the fault can stop it
    safety_stop(stop_distance=STOP_DISTANCE, scan_timeout=scan_timeout)
    t0 = robot.sim_time()
    sim.inject(faults.sensor_blackout("/scan", at=t0 + 1.0))
    robot.send_velocity(0.4, 0.0, 3.0, topic="/cmd_vel_in")  # 1.2 m if nothing stops it
    travelled = robot.ground_truth.x + 2.0
    # 1 s at 0.4 m/s before the blackout, then at most 0.5 s (watchdog 0.3 s + relay) and braking
    assert travelled < 0.4 * 1.5 + 0.1, f"drove {travelled:.2f} m: the robot went on without scans"
    assert travelled > 0.3, "it should have driven until the scans stopped"


@pytest.mark.simtwin(rtf=0.5, faults=[faults.lidar_sector(-15.0, 15.0)])
@pytest.mark.parametrize(
    "half_angle",
    [20.0, pytest.param(2.0, marks=pytest.mark.xfail(strict=True, reason="a node that reads only the front rays is blind"))],
    ids=["cone", "naive"],
)
def test_stops_with_a_blind_sector_ahead(robot, sim, safety_stop, half_angle):
    """Robustness: the lidar reads inf over 30 degrees straight ahead (dirt on the window, a broken
    segment). A node taking the nearest return over a wider cone still sees the crate's edges
    (15-20 degrees off-axis within ~0.75 m of the 0.4 m crate) and stops; one reading only the front
    rays drives into it."""
    sim.set_pose(x=1.0, y=0.0, yaw=0.0)  # 1.8 m from the crate, as in test_stops_short_of_the_crate
    safety_stop(stop_distance=STOP_DISTANCE, sector_half_angle=half_angle)
    robot.send_velocity(0.4, 0.0, 5.0, topic="/cmd_vel_in")  # 2 m if nothing stops it
    assert_robot_stopped(robot, within=1.0)
    gap = CRATE_FACE - (robot.ground_truth.x + LIDAR_X)
    # the slant range off-axis reads longer than the gap: it stops a few cm later than with a clear view
    assert gap > STOP_DISTANCE - 0.15, f"stopped {gap:.3f} m from the crate: the blind sector hid it"
    assert gap <= STOP_DISTANCE + 0.01, f"stopped {gap:.3f} m from the crate: before it was in range"
