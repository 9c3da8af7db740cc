"""Assertions for simulation tests: tolerances, metrics, robot state.

Every helper sets ``__tracebackhide__`` so a failure points at the user's line, and every message
names the expected value, the actual value, the tolerance, the unit and by how much it missed.
``assert_metric`` and ``record_metric`` write a :class:`MetricRecord` into the running test's
:class:`TestRecord` (the plugin binds it to the running test, :func:`~pytest_simtwin.results.records.bind_record`), where reports and
baselines pick it up.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from pytest_simtwin.errors import ConfigError, WaitTimeout
from pytest_simtwin.results.metrics import DIRECTIONS, Direction, MetricRecord, ValidationMetric, get_metric
from pytest_simtwin.results.records import current_record

if TYPE_CHECKING:
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.results.records import TestRecord





def _fmt(value: float, unit: str | None) -> str:
    text = str(value) if isinstance(value, float) and not math.isfinite(value) else f"{value:.6g}"
    return f"{text} {unit}" if unit else text


# -- metrics ---------------------------------------------------------------------------------------
def record_metric(
    name: str,
    value: float,
    unit: str = "",
    tolerance: float | None = None,
    direction: Direction = "lower",
    description: str = "",
    *,
    record: TestRecord | None = None,
) -> MetricRecord:
    """Record a metric value of the running test (no assertion); returns the stored record."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"metric {name!r}: direction must be one of {', '.join(DIRECTIONS)}, found {direction!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"metric {name!r}: expected a number, found {value!r}") from None
    metric = MetricRecord(
        name=name, value=number, unit=unit, tolerance=tolerance, direction=direction, description=description
    )
    target = record if record is not None else current_record()
    if target is not None:
        target.add_metric(metric)
    return metric


class MetricRecorder:
    """The ``record_metric`` fixture: records into one test's record."""

    def __init__(self, record: TestRecord | None) -> None:
        self.record = record

    def __call__(
        self,
        name: str,
        value: float,
        unit: str = "",
        tolerance: float | None = None,
        direction: Direction = "lower",
        description: str = "",
    ) -> MetricRecord:
        return record_metric(name, value, unit, tolerance, direction, description, record=self.record)


def _describe_metric_failure(metric: ValidationMetric, value: float) -> str:
    unit = metric.unit
    if math.isnan(value):
        return f"metric {metric.name} is NaN (no valid samples?); expected {_bound(metric)}"
    if metric.direction == "lower":
        margin = value - metric.tolerance
    elif metric.direction == "higher":
        margin = metric.tolerance - value
    else:
        margin = abs(value) - metric.tolerance
    return (
        f"metric {metric.name}: actual {_fmt(value, unit)}, expected {_bound(metric)} "
        f"(tolerance {_fmt(metric.tolerance, unit)}); misses by {_fmt(margin, unit)}"
    )


def _bound(metric: ValidationMetric) -> str:
    op = {"lower": "<=", "higher": ">=", "two-sided": "|value| <="}[metric.direction]
    return f"{op} {_fmt(metric.tolerance, metric.unit)}"


def assert_metric(
    name: str | ValidationMetric,
    value: float,
    tolerance: float | None = None,
    *,
    unit: str | None = None,
    direction: Direction | None = None,
    record: TestRecord | None = None,
) -> MetricRecord:
    """Record ``value`` for a standard metric (or a :class:`ValidationMetric`) and assert it passes.

    Standard metrics: position_error 0.01 m, velocity_tracking 0.05 (5 %), sensor_latency 0.010 s,
    collision_detection 0.02 m. ``tolerance`` overrides the default. The value is recorded even
    when the assertion fails, so the report shows what was measured.
    """
    __tracebackhide__ = True
    if isinstance(name, ValidationMetric):
        metric = name if tolerance is None else name.with_tolerance(tolerance)
    elif tolerance is not None and unit is not None:
        metric = ValidationMetric(name, tolerance, unit, direction or "lower")
    else:
        metric = get_metric(name, tolerance)
    if direction is not None and direction != metric.direction:
        metric = ValidationMetric(metric.name, metric.tolerance, metric.unit, direction, metric.description)
    rec = record_metric(
        metric.name, value, metric.unit, metric.tolerance, metric.direction, metric.description, record=record
    )
    if not rec.passed:
        raise AssertionError(_describe_metric_failure(metric, rec.value))
    return rec


# -- tolerances ------------------------------------------------------------------------------------
def assert_within_tolerance(
    actual: float | npt.ArrayLike,
    expected: float | npt.ArrayLike,
    tolerance: float,
    *,
    metric: str | None = None,
    unit: str | None = None,
    relative: bool = False,
) -> None:
    """Assert ``|actual - expected| <= tolerance`` (scalars or element-wise arrays).

    ``relative=True``: ``tolerance`` is a fraction of ``|expected|``. With ``metric`` the deviation
    (the worst one for arrays) is also recorded as that metric of the running test. NaN never passes.
    """
    __tracebackhide__ = True
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and math.isfinite(tolerance)):
        raise ConfigError(f"tolerance must be a finite number >= 0, found {tolerance!r}")
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    try:
        a_b, e_b = np.broadcast_arrays(a, e)
    except ValueError:
        raise AssertionError(
            f"{metric or 'value'}: shapes differ, actual {a.shape} vs expected {e.shape}; expected the same shape "
            f"(or a scalar expected value)"
        ) from None
    deviation = np.abs(a_b - e_b)
    allowed = tolerance * np.abs(e_b) if relative else np.full(e_b.shape, float(tolerance))
    bad = ~(deviation <= allowed)  # NaN compares False: counted as out of tolerance
    worst_dev = float(np.nanmax(deviation)) if deviation.size and not np.all(np.isnan(deviation)) else math.nan
    if metric is not None:
        rel_worst = worst_dev
        if relative and deviation.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = deviation / np.abs(e_b)
            rel_worst = float(np.nanmax(ratios)) if not np.all(np.isnan(ratios)) else math.nan
        record_metric(
            metric,
            rel_worst if relative else worst_dev,
            "ratio" if relative else (unit or ""),
            float(tolerance),
            "lower",
        )
    if not bad.any():
        return
    name = metric or "value"
    tol_text = f"{tolerance:.6g} × |expected|" if relative else _fmt(float(tolerance), unit)
    if a_b.ndim == 0:
        dev = float(deviation)
        margin = dev - float(allowed)
        raise AssertionError(
            f"{name}: actual {_fmt(float(a_b), unit)}, expected {_fmt(float(e_b), unit)} ± {tol_text}"
            + ("" if relative else f" ({_fmt(float(e_b) - tolerance, unit)} .. {_fmt(float(e_b) + tolerance, unit)})")
            + (
                "; actual is NaN"
                if math.isnan(dev)
                else f"; off by {_fmt(dev, unit)}, {_fmt(margin, unit)} beyond tolerance"
            )
        )
    # Arrays: the worst element decides the message; NaN elements are the worst of all.
    excess = np.where(np.isnan(deviation), np.inf, deviation - allowed)
    flat = int(np.argmax(excess))
    index = np.unravel_index(flat, a_b.shape)
    idx = tuple(int(i) for i in index)
    idx_text = str(idx[0]) if len(idx) == 1 else str(idx)
    dev = float(deviation[index])
    n_bad = int(bad.sum())
    detail = (
        "actual is NaN"
        if math.isnan(dev)
        else f"off by {_fmt(dev, unit)}, {_fmt(dev - float(allowed[index]), unit)} beyond tolerance"
    )
    raise AssertionError(
        f"{name}: {n_bad} of {bad.size} elements out of tolerance ± {tol_text}; worst at index {idx_text}: "
        f"actual {_fmt(float(a_b[index]), unit)}, expected {_fmt(float(e_b[index]), unit)}, {detail}"
    )


# -- robot state -----------------------------------------------------------------------------------
def assert_robot_stopped(
    robot: Robot, linear_tol: float = 0.05, angular_tol: float = 0.1, *, within: float = 0.0
) -> None:
    """Assert |vx| < ``linear_tol`` m/s and |wz| < ``angular_tol`` rad/s (odometry).

    ``within`` (sim seconds) lets the robot come to rest first; 0 checks the current odometry.
    """
    __tracebackhide__ = True

    def stopped() -> bool:
        vx, wz = robot.velocity
        return abs(vx) < linear_tol and abs(wz) < angular_tol

    if within > 0:
        # On timeout the assertion below reports the measured velocities.
        with contextlib.suppress(WaitTimeout):
            robot.wait_for_condition(stopped, within, what="the robot to stop")
    elif robot.latest_odom() is None:
        robot.wait_for_odom()
    vx, wz = robot.velocity
    if not stopped():
        raise AssertionError(
            f"robot is not stopped: vx {_fmt(vx, 'm/s')} (expected |vx| < {_fmt(linear_tol, 'm/s')}), "
            f"wz {_fmt(wz, 'rad/s')} (expected |wz| < {_fmt(angular_tol, 'rad/s')})"
            + (f" after waiting {within:g} s sim time" if within > 0 else "")
        )


def assert_reaches(
    robot: Robot,
    x: float,
    y: float,
    tolerance: float = 0.1,
    timeout: float = 10.0,
    *,
    ground_truth: bool = False,
) -> None:
    """Wait up to ``timeout`` sim seconds for the robot to be within ``tolerance`` m of (x, y).

    Every pose since the last velocity command counts (odometry; ``ground_truth=True``: the
    simulator's true pose), so a robot that passed the point while the test process was stalled
    still passes. Fails with the closest approach and the final pose.
    """
    __tracebackhide__ = True
    closest: list[float] = [math.inf]
    source: Callable[[], Any] = (lambda: robot.ground_truth) if ground_truth else (lambda: robot.pose)
    # From the command on, not from this call: free-running at 5x, a 0.4 s hiccup of a loaded CI
    # runner between `send_velocity(..., stop=False)` and this call is 1 m of motion not looked at.
    now = time.monotonic()
    since = min(now, robot.commanded_at) if robot.commanded_at is not None else now

    def near() -> bool:
        # Every pose received since the start, not only the latest: a fast robot may pass through.
        poses = robot.poses_since(since, ground_truth=ground_truth) or [source()]
        d = min(math.hypot(p.x - x, p.y - y) for p in poses)
        closest[0] = min(closest[0], d)
        return d <= tolerance

    if robot.latest_odom() is None:
        robot.wait_for_odom()
    try:
        robot.wait_for_condition(near, timeout, what=f"the robot within {tolerance:g} m of ({x:g}, {y:g})")
    except WaitTimeout:
        p = source()
        raise AssertionError(
            f"robot did not reach ({x:.3f}, {y:.3f}) m ± {tolerance:g} m within {timeout:g} s sim time: "
            f"closest approach {closest[0]:.3f} m, final {'true ' if ground_truth else ''}pose "
            f"({p.x:.3f}, {p.y:.3f}) m yaw {p.yaw:.3f} rad"
        ) from None
