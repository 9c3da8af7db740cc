"""The decision, free of ROS so it can be unit-tested: what to let through given the latest scan."""

from __future__ import annotations

import math
from collections.abc import Sequence


def min_range_ahead(
    ranges: Sequence[float],
    angle_min: float,
    angle_increment: float,
    half_angle: float,
    range_min: float = 0.0,
    range_max: float = math.inf,
) -> float:
    """Closest valid reading (m) within +/- ``half_angle`` (rad) of straight ahead; inf if none.

    REP-117: +inf (nothing in range), -inf (too close to measure), NaN and values outside
    [range_min, range_max] are not distances. A -inf reading ahead means "something is touching the
    sensor", so it counts as 0 m: stopping is the safe reading of it.
    """
    best = math.inf
    for i, r in enumerate(ranges):
        angle = math.remainder(angle_min + i * angle_increment, math.tau)
        if abs(angle) > half_angle:
            continue
        if r == -math.inf:
            return 0.0
        if math.isnan(r) or r < range_min or r > range_max:
            continue
        best = min(best, r)
    return best


def gate(linear: float, angular: float, distance_ahead: float, stop_distance: float) -> tuple[float, float]:
    """The command to send on: forward motion stops inside ``stop_distance``; turning/reversing pass."""
    if linear > 0.0 and distance_ahead < stop_distance:
        return 0.0, angular
    return linear, angular
