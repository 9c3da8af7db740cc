"""Score a simulated run against a real one with the standard validation metrics.

Each metric has a tolerance and either an aggregate (rmse, mean, max, p95, ...) or a per-step
criterion ``min_fraction`` ("position error under 1 cm for at least 90 % of steps"); with a
``min_fraction`` the reported value is that quantile of the per-step errors, so ``value <=
tolerance`` and the per-step criterion agree. RMSE, maximum and pass fraction are always kept in
``extra``. The metric set comes from ``[tool.simtwin.twin]`` in pyproject.toml or a YAML file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import tomllib

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.results.metrics import STANDARD_METRICS, MetricRecord, aggregate, pass_fraction, per_step_errors
from pytest_simtwin.twin.align import Aligned, align, lag_xcorr, uniform_grid
from pytest_simtwin.twin.data import Array, Trajectory

METRIC_KEYS = ("tolerance", "aggregate", "min_fraction", "enabled")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    tolerance: float
    aggregate: str = "rmse"
    min_fraction: float | None = None
    enabled: bool = True


DEFAULT_SPECS: dict[str, MetricSpec] = {
    "position_error": MetricSpec("position_error", 0.01, "rmse", 0.9),
    "velocity_tracking": MetricSpec("velocity_tracking", 0.05, "mean"),
    "sensor_latency": MetricSpec("sensor_latency", 0.010, "max"),
    "collision_detection": MetricSpec("collision_detection", 0.02, "max"),
}


@dataclass(frozen=True)
class TwinConfig:
    """How to align and which metrics to compute."""

    metrics: tuple[MetricSpec, ...] = tuple(DEFAULT_SPECS.values())
    offset: str | float = "auto"
    align_pose: bool = True
    rate: float | None = None
    #: velocity tracking ignores samples where the real robot moves slower than this (m/s):
    #: a relative error of standing still is undefined and dominated by noise
    min_speed: float = 0.05

    def with_metrics(self, names: Iterable[str | MetricSpec]) -> TwinConfig:
        specs = []
        by_name = {m.name: m for m in self.metrics}
        for n in names:
            if isinstance(n, MetricSpec):
                specs.append(n)
            elif n in by_name:
                specs.append(replace(by_name[n], enabled=True))
            else:
                raise ConfigError(f"unknown twin metric {n!r}: expected one of {', '.join(DEFAULT_SPECS)}")
        return replace(self, metrics=tuple(specs))


def config_from_mapping(data: Mapping[str, Any], where: str) -> TwinConfig:
    """Parse ``{offset, align_pose, rate, min_speed, metrics: {name: {tolerance, aggregate, min_fraction, enabled}}}``."""
    unknown = set(data) - {"offset", "align_pose", "rate", "min_speed", "metrics"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown twin settings {sorted(unknown)}; expected offset, align_pose, rate, min_speed, metrics"
        )
    specs = dict(DEFAULT_SPECS)
    raw_metrics = data.get("metrics", {})
    if isinstance(raw_metrics, list):  # a plain list of names selects those metrics with default settings
        raw_metrics = {str(n): {} for n in raw_metrics}
        specs = {}
    if not isinstance(raw_metrics, Mapping):
        raise ConfigError(f"{where}: 'metrics' must be a table of metric settings or a list of names")
    for name, settings in raw_metrics.items():
        if name not in DEFAULT_SPECS:
            raise ConfigError(f"{where}: unknown twin metric {name!r}; expected one of {', '.join(DEFAULT_SPECS)}")
        settings = settings or {}
        if not isinstance(settings, Mapping) or set(settings) - set(METRIC_KEYS):
            raise ConfigError(f"{where}: metrics.{name} accepts {', '.join(METRIC_KEYS)}, found {settings!r}")
        base = DEFAULT_SPECS[name]
        try:
            spec = MetricSpec(
                name,
                float(settings.get("tolerance", base.tolerance)),
                str(settings.get("aggregate", base.aggregate)),
                None
                if settings.get("min_fraction", base.min_fraction) is None
                else float(settings.get("min_fraction", base.min_fraction)),
                bool(settings.get("enabled", True)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: metrics.{name}: {exc}") from None
        if spec.min_fraction is not None and not 0.0 < spec.min_fraction <= 1.0:
            raise ConfigError(f"{where}: metrics.{name}.min_fraction must be in (0, 1], found {spec.min_fraction}")
        specs[name] = spec
    offset = data.get("offset", "auto")
    return TwinConfig(
        metrics=tuple(specs.values()),
        offset=offset if isinstance(offset, str) else float(offset),
        align_pose=bool(data.get("align_pose", True)),
        rate=None if data.get("rate") is None else float(data["rate"]),
        min_speed=float(data.get("min_speed", 0.05)),
    )


def load_config(path: Path | None = None, *, search_from: Path | None = None) -> TwinConfig:
    """Twin settings from a YAML/TOML file, or ``[tool.simtwin.twin]`` of the nearest pyproject.toml."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"twin config {path} does not exist; expected a YAML file or pyproject.toml")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: invalid YAML ({exc})") from None
            if not isinstance(data, Mapping):
                raise ConfigError(f"{path}: expected a mapping of twin settings, found {type(data).__name__}")
            return config_from_mapping(data.get("twin", data), str(path))
        return _from_pyproject(path) or TwinConfig()
    here = (search_from or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return _from_pyproject(candidate) or TwinConfig()
    return TwinConfig()


def _from_pyproject(path: Path) -> TwinConfig | None:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    section = data.get("tool", {}).get("simtwin", {}).get("twin")
    return None if section is None else config_from_mapping(section, f"{path} [tool.simtwin.twin]")


# -- latency ------------------------------------------------------------------------------------
def command_latency(traj: Trajectory, rate: float = 1000.0, max_lag: float = 1.0) -> float | None:
    """Command-to-response delay (s): cross-correlation of commanded vs measured linear velocity.

    None when the run has no commands or never moved. Acceleration limits add their own apparent
    delay; the twin metric compares real against simulated latency, so that part cancels.
    """
    if not traj.has_commands or traj.first_command_time() is None or len(traj) < 3:
        return None
    t = uniform_grid(max(traj.t[0], traj.cmd_t[0]), traj.t[-1], rate)
    idx = np.clip(np.searchsorted(traj.cmd_t, t, side="right") - 1, 0, None)
    cmd = traj.cmd_vx[idx]
    measured = np.interp(t, traj.t, traj.vx)
    if np.ptp(cmd) < 1e-6:
        cmd, measured = traj.cmd_vtheta[idx], np.interp(t, traj.t, traj.vtheta)
        if np.ptp(cmd) < 1e-6:
            return None
    return lag_xcorr(measured, cmd, rate, max_lag)


def _stop_position(a: dict[str, Array], min_speed: float, rate: float) -> Array | None:
    """Where the robot stopped while still commanded forward (an obstacle or contact), if it did."""
    if "cmd_vx" not in a:
        return None
    hold = max(int(0.2 * rate), 2)
    blocked = (np.abs(a["cmd_vx"]) >= min_speed) & (np.abs(a["vx"]) < 0.1 * min_speed)
    moved = np.maximum.accumulate(np.abs(a["vx"]) >= min_speed)
    run = 0
    for i in np.flatnonzero(blocked & moved):
        run = run + 1 if i and blocked[i - 1] else 1
        if run >= hold:
            return np.array([a["x"][i], a["y"][i]])
    return None


# -- scoring ------------------------------------------------------------------------------------
@dataclass
class TwinResult:
    records: list[MetricRecord]
    aligned: Aligned
    series: dict[str, Array] = field(default_factory=dict)  # per-step error series for plots
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.records) and all(r.passed for r in self.records)

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    def record(self, name: str) -> MetricRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_json_dict(self) -> dict[str, Any]:
        a = self.aligned
        return {
            "verdict": self.verdict,
            "passed": self.passed,
            "real": a.real_source,
            "sim": a.sim_source,
            "alignment": {"offset": a.offset, "method": a.offset_method, "samples": len(a), **a.info},
            "metrics": {r.name: {**r.to_dict(), "tolerance": r.tolerance, "pass": r.passed} for r in self.records},
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = []
        for r in self.records:
            frac = r.extra.get("pass_fraction")
            extra = (
                f"  ({frac:.1%} of steps within tolerance)" if isinstance(frac, float) and not math.isnan(frac) else ""
            )
            lines.append(
                f"  {'PASS' if r.passed else 'FAIL'}  {r.name:<20} {r.value:.4g} {r.unit} (tolerance {r.tolerance:g}){extra}"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(
            [
                f"twin validation: {self.verdict.upper()} ({self.aligned.sim_source} vs {self.aligned.real_source})",
                *lines,
            ]
        )


def _record(spec: MetricSpec, errors: Array, description: str = "", **extra: Any) -> MetricRecord:
    metric = STANDARD_METRICS[spec.name]
    frac = pass_fraction(errors, spec.tolerance)
    stats = {
        "rmse": aggregate(errors, "rmse"),
        "max": aggregate(errors, "max"),
        "mean": aggregate(errors, "mean"),
        "pass_fraction": frac,
        "samples": int(np.size(errors)),
        "aggregate": spec.aggregate,
        "min_fraction": spec.min_fraction,
    }
    if np.size(errors) == 0:
        value, passed = math.nan, False
    elif spec.min_fraction is not None:
        value = float(np.quantile(np.abs(errors), spec.min_fraction))
        passed = frac >= spec.min_fraction
    else:
        value = aggregate(errors, spec.aggregate)
        passed = metric.with_tolerance(spec.tolerance).passes(value)
    return MetricRecord(
        name=spec.name,
        value=value,
        unit=metric.unit,
        tolerance=spec.tolerance,
        direction=metric.direction,
        passed=passed,
        description=description or metric.description,
        extra={**stats, **extra},
    )


def score_aligned(
    a: Aligned, config: TwinConfig, real: Trajectory | None = None, sim: Trajectory | None = None
) -> TwinResult:
    records: list[MetricRecord] = []
    series: dict[str, Array] = {}
    notes: list[str] = []
    for spec in config.metrics:
        if not spec.enabled:
            continue
        if spec.name == "position_error":
            err = per_step_errors(
                "position_error", np.column_stack([a.sim["x"], a.sim["y"]]), np.column_stack([a.real["x"], a.real["y"]])
            )
            series["position_error"] = err
            records.append(_record(spec, err, "distance between simulated and real positions per step"))
        elif spec.name == "velocity_tracking":
            moving = np.abs(a.real["vx"]) >= config.min_speed
            err = per_step_errors("velocity_tracking", a.sim["vx"][moving], a.real["vx"][moving])
            series["velocity_tracking"] = np.where(
                moving, np.abs(a.sim["vx"] - a.real["vx"]) / np.maximum(np.abs(a.real["vx"]), 1e-9), np.nan
            )
            ang = aggregate(np.abs(a.sim["vtheta"] - a.real["vtheta"]), "rmse")
            records.append(
                _record(
                    spec,
                    err,
                    "relative error of the simulated vs the real linear velocity (moving samples)",
                    angular_rmse=ang,
                    min_speed=config.min_speed,
                )
            )
        elif spec.name == "sensor_latency":
            lr = command_latency(real) if real is not None else None
            ls = command_latency(sim) if sim is not None else None
            if lr is None or ls is None:
                notes.append("sensor_latency skipped: both runs need /cmd_vel commands and motion")
                continue
            records.append(
                _record(
                    spec,
                    np.array([lr - ls]),
                    "real minus simulated command-to-response delay",
                    real_latency=lr,
                    sim_latency=ls,
                )
            )
        elif spec.name == "collision_detection":
            pr, ps = _stop_position(a.real, config.min_speed, a.rate), _stop_position(a.sim, config.min_speed, a.rate)
            if pr is None and ps is None:
                notes.append(
                    "collision_detection skipped: neither run stopped against an obstacle while commanded forward"
                )
                continue
            err = np.array([math.inf if pr is None or ps is None else float(np.hypot(*(pr - ps)))])
            records.append(_record(spec, err, "distance between the real and simulated stop positions at an obstacle"))
    return TwinResult(records=records, aligned=a, series=series, notes=notes)


def validate(real: Trajectory, sim: Trajectory, config: TwinConfig | None = None) -> TwinResult:
    """Align ``sim`` onto ``real`` and score it."""
    cfg = config or TwinConfig()
    a = align(real, sim, offset=cfg.offset, rate=cfg.rate, align_pose=cfg.align_pose)
    return score_aligned(a, cfg, real, sim)
