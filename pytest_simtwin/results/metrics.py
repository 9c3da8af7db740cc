"""Validation metrics: the four standard ones, their tolerances, and recorded metric values.

A metric has a *direction*: ``lower`` (an error: passes when value <= tolerance), ``higher`` (a
score: passes when value >= tolerance) or ``two-sided`` (a signed deviation: passes when
|value| <= tolerance). Baselines compare drift in the same direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_simtwin.errors import ConfigError

if TYPE_CHECKING:  # numpy is imported where it is used: the plugin loads this module at start-up
    import numpy as np
    import numpy.typing as npt

Direction = Literal["lower", "higher", "two-sided"]
DIRECTIONS: tuple[Direction, ...] = ("lower", "higher", "two-sided")
AGGREGATES = ("mean", "rmse", "max", "median", "p95", "final")


@dataclass(frozen=True)
class ValidationMetric:
    """A named metric with its tolerance, unit and direction."""

    name: str
    tolerance: float
    unit: str
    direction: Direction = "lower"
    description: str = ""

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError(
                f"metric {self.name!r}: direction must be one of {', '.join(DIRECTIONS)}, found {self.direction!r}"
            )

    def passes(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.direction == "lower":
            return value <= self.tolerance
        if self.direction == "higher":
            return value >= self.tolerance
        return abs(value) <= self.tolerance

    def with_tolerance(self, tolerance: float) -> ValidationMetric:
        return ValidationMetric(self.name, tolerance, self.unit, self.direction, self.description)


STANDARD_METRICS: dict[str, ValidationMetric] = {
    m.name: m
    for m in (
        ValidationMetric("position_error", 0.01, "m", "lower", "distance between simulated and reference positions"),
        ValidationMetric(
            "velocity_tracking",
            0.05,
            "ratio",
            "lower",
            "relative error of the measured vs the commanded velocity",
        ),
        ValidationMetric(
            "sensor_latency", 0.010, "s", "lower", "delay from a stimulus (command) to the sensed response"
        ),
        ValidationMetric(
            "collision_detection",
            0.02,
            "m",
            "lower",
            "error of the distance at which an obstacle is detected/stopped",
        ),
    )
}


def get_metric(name: str, tolerance: float | None = None) -> ValidationMetric:
    """A standard metric by name, optionally with another tolerance."""
    try:
        metric = STANDARD_METRICS[name]
    except KeyError:
        raise ConfigError(
            f"unknown metric {name!r}: expected one of {', '.join(STANDARD_METRICS)} or a ValidationMetric"
        ) from None
    return metric if tolerance is None else metric.with_tolerance(tolerance)


def _as_array(values: float | Sequence[float] | npt.ArrayLike) -> npt.NDArray[np.float64]:
    import numpy as np

    return np.atleast_1d(np.asarray(values, dtype=float))


def aggregate(values: npt.ArrayLike, how: str = "rmse") -> float:
    """Reduce per-step values to one number (mean, rmse, max, median, p95 or final)."""
    import numpy as np

    arr = _as_array(values)
    if arr.size == 0:
        return math.nan
    if how == "mean":
        return float(np.mean(arr))
    if how == "rmse":
        return float(np.sqrt(np.mean(arr**2)))
    if how == "max":
        return float(np.max(np.abs(arr)))
    if how == "median":
        return float(np.median(arr))
    if how == "p95":
        return float(np.percentile(np.abs(arr), 95))
    if how == "final":
        return float(arr[-1])
    raise ConfigError(f"unknown aggregate {how!r}: expected one of {', '.join(AGGREGATES)}")


def per_step_errors(name: str, actual: npt.ArrayLike, expected: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-sample errors of a standard metric (inputs already aligned on common timestamps).

    * position_error: ``actual``/``expected`` are (N, 2) or (N, 3) positions -> Euclidean distances.
    * velocity_tracking: measured and commanded speeds (N,) -> |measured - commanded| / max(|commanded|, 1e-3)
      (samples with |commanded| < 1e-3 are dropped: a relative error of standing still is undefined).
    * sensor_latency / collision_detection: |actual - expected| element-wise.
    """
    import numpy as np

    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    if a.shape != e.shape:
        raise ValueError(
            f"{name}: actual and expected must have the same shape after alignment, found {a.shape} and {e.shape}"
        )
    if name == "position_error":
        diff = np.abs(a - e) if a.ndim == 1 else np.linalg.norm(a - e, axis=-1)
        return np.asarray(diff, dtype=np.float64)
    if name == "velocity_tracking":
        mask = np.abs(e) >= 1e-3
        return np.asarray(np.abs(a[mask] - e[mask]) / np.abs(e[mask]), dtype=np.float64)
    if name in ("sensor_latency", "collision_detection"):
        return np.asarray(np.abs(a - e), dtype=np.float64)
    raise ConfigError(f"unknown metric {name!r}: expected one of {', '.join(STANDARD_METRICS)}")


def pass_fraction(errors: npt.ArrayLike, tolerance: float) -> float:
    """Fraction of steps whose error is within ``tolerance`` (e.g. "under 1 cm for 90 % of steps")."""
    import numpy as np

    arr = _as_array(errors)
    return float(np.mean(np.abs(arr) <= tolerance)) if arr.size else math.nan


@dataclass
class MetricRecord:
    """A metric value recorded during a test (reports, baselines and JUnit properties use it)."""

    name: str
    value: float
    unit: str = ""
    tolerance: float | None = None
    direction: Direction = "lower"
    passed: bool | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.passed is None and self.tolerance is not None:
            self.passed = ValidationMetric(self.name, self.tolerance, self.unit, self.direction).passes(self.value)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricRecord:
        known = {
            k: data[k]
            for k in ("name", "value", "unit", "tolerance", "direction", "passed", "description", "extra")
            if k in data
        }
        return cls(**known)
