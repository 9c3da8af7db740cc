"""Unit tests of the safety stop's decision (no ROS, no simulator): fast, run first."""

from __future__ import annotations

import math

import pytest
from safety_stop import gate, min_range_ahead

STEP = math.radians(1.0)


def scan(readings: dict[int, float], n: int = 360) -> list[float]:
    ranges = [math.inf] * n  # REP-117: nothing in range
    for index, value in readings.items():
        ranges[index % n] = value
    return ranges


def test_only_the_sector_ahead_counts():
    ranges = scan({0: 2.0, 15: 1.0, 30: 0.3, -10: 1.5, 180: 0.2})
    assert min_range_ahead(ranges, 0.0, STEP, math.radians(20)) == 1.0  # 30 deg and behind are outside
    assert min_range_ahead(ranges, 0.0, STEP, math.radians(35)) == 0.3


def test_invalid_readings_are_ignored_but_too_close_stops():
    assert min_range_ahead(scan({0: math.nan, 1: 0.05}), 0.0, STEP, 0.3, range_min=0.12) == math.inf
    assert min_range_ahead(scan({0: 9.0}), 0.0, STEP, 0.3, range_max=8.0) == math.inf
    assert min_range_ahead(scan({2: -math.inf}), 0.0, STEP, 0.3) == 0.0


def test_scan_starting_behind_the_robot():
    # angle_min = -pi: index 180 is straight ahead
    ranges = scan({180: 0.7, 0: 0.1})
    assert min_range_ahead(ranges, -math.pi, STEP, math.radians(10)) == 0.7


@pytest.mark.parametrize(
    ("linear", "angular", "distance", "expected"),
    [
        (0.4, 0.0, 2.0, (0.4, 0.0)),  # free: pass through
        (0.4, 0.3, 0.4, (0.0, 0.3)),  # blocked: forward zeroed, turning kept
        (-0.2, 0.0, 0.1, (-0.2, 0.0)),  # backing away is allowed
        (0.4, 0.0, 0.5, (0.4, 0.0)),  # exactly at the distance: not yet inside it
    ],
)
def test_gate(linear, angular, distance, expected):
    assert gate(linear, angular, distance, 0.5) == expected
