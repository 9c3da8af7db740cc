"""Score a simulated run against a real one with the four twin metrics (docs/twin-metrics.md).

* ``position_error``: windowed (re-anchored) position error at the end of each ``window`` (1 s);
  "under 1 cm for 90 % of windows". RPE and ATE (evo) are reported beside it.
* ``velocity_tracking``: mean relative linear velocity error over moving samples after removing
  the response delay between the runs (reported separately); the angular one must pass too.
* ``sensor_latency``: real minus simulated command-to-response delay (cross-correlation).
* ``collision_detection``: where each run stopped against an obstacle while commanded forward.

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
import numpy.typing as npt
import tomllib

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.results.metrics import STANDARD_METRICS, MetricRecord, aggregate, pass_fraction
from pytest_simtwin.twin.align import Aligned, align
from pytest_simtwin.twin.data import Array, Trajectory
from pytest_simtwin.twin.openloop import (
    Latency,
    command_latency,
    delayed,
    response_delay,
    trajectory_errors,
    windowed_position_error,
)

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
    #: angular velocity tracking ignores samples turning slower than this (rad/s)
    min_yaw_rate: float = 0.2
    #: re-anchoring window of the position error (s), or a travelled distance (m) when set
    window: float = 1.0
    window_distance: float | None = None
    #: the recorded poses used as anchors and targets are smoothed over this span (s) to drop sensor noise
    anchor_smoothing: float = 0.2
    #: the largest response delay between the runs that velocity tracking removes (s)
    max_delay: float = 0.5
    #: RPE interval (s)
    rpe_interval: float = 1.0

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


_FLOAT_SETTINGS = ("min_speed", "min_yaw_rate", "window", "anchor_smoothing", "max_delay", "rpe_interval")
SETTINGS = ("offset", "align_pose", "rate", "window_distance", *_FLOAT_SETTINGS, "metrics")


def config_from_mapping(data: Mapping[str, Any], where: str) -> TwinConfig:
    """Parse ``{offset, align_pose, rate, window, ..., metrics: {name: {tolerance, aggregate, min_fraction, enabled}}}``."""
    unknown = set(data) - set(SETTINGS)
    if unknown:
        raise ConfigError(f"{where}: unknown twin settings {sorted(unknown)}; expected some of {', '.join(SETTINGS)}")
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
    base_cfg = TwinConfig()
    try:
        floats = {k: float(data.get(k, getattr(base_cfg, k))) for k in _FLOAT_SETTINGS}
        wd = data.get("window_distance")
        return TwinConfig(
            metrics=tuple(specs.values()),
            offset=offset if isinstance(offset, str) else float(offset),
            align_pose=bool(data.get("align_pose", True)),
            rate=None if data.get("rate") is None else float(data["rate"]),
            window_distance=None if wd is None else float(wd),
            **floats,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: twin settings must be numbers where numbers are expected ({exc})") from None


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


# -- collisions ---------------------------------------------------------------------------------
def _stop_position(a: dict[str, Array], min_speed: float, rate: float, settle: float = 0.5) -> Array | None:
    """Where the robot stopped while still commanded forward (an obstacle or contact), if it did.

    "Commanded" means one direction at >= ``min_speed`` for the last ``settle`` seconds: a real
    robot answers a command 0.1-0.3 s late (transport, motor lag), and a start, a reversal or a
    slow ramp must not look like an obstacle.
    """
    if "cmd_vx" not in a:
        return None
    hold = max(int(0.2 * rate), 2)
    cmd = a["cmd_vx"]
    n = max(int(settle * rate), 1)
    forward = np.convolve((cmd >= min_speed).astype(float), np.ones(n), "full")[: cmd.size] >= n
    backward = np.convolve((cmd <= -min_speed).astype(float), np.ones(n), "full")[: cmd.size] >= n
    blocked = (forward | backward) & (np.abs(a["vx"]) < 0.1 * min_speed)
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
    #: problems that fail the verdict on their own (e.g. the replay touched an obstacle)
    flags: list[str] = field(default_factory=list)
    #: RPE/ATE, delays, latencies and contacts: numbers reported beside the metrics
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.records) and all(r.passed for r in self.records) and not self.flags

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
            "trajectory_errors": self.info.get("trajectory_errors", {}),
            "latency": self.info.get("latency", {}),
            "contacts": self.info.get("contacts", []),
            "flags": self.flags,
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = []
        for r in self.records:
            frac = r.extra.get("pass_fraction")
            extra = ""
            if r.name == "position_error" and isinstance(frac, float) and not math.isnan(frac):
                extra = f"  ({frac:.1%} of {r.extra.get('window_s', 1.0):g} s windows within tolerance)"
            elif r.name == "velocity_tracking":
                extra = (
                    f"  (linear {r.extra.get('linear_error', math.nan):.1%}, angular "
                    f"{r.extra.get('angular_error', math.nan):.1%}, after removing a "
                    f"{r.extra.get('response_delay_s', 0.0) * 1000:.0f} ms response delay)"
                )
            elif r.name == "sensor_latency":
                extra = (
                    f"  (real {r.extra.get('real_latency', math.nan) * 1000:.0f} ms, "
                    f"sim {r.extra.get('sim_latency', math.nan) * 1000:.0f} ms)"
                )
            lines.append(
                f"  {'PASS' if r.passed else 'FAIL'}  {r.name:<20} {r.value:.4g} {r.unit} (tolerance {r.tolerance:g}){extra}"
            )
        te = self.info.get("trajectory_errors") or {}
        if te:
            lines.append(
                f"  info  ATE {te.get('ate_rmse_m', math.nan):.4g} m (SE(2)-aligned RMSE), RPE over "
                f"{te.get('rpe_interval_s', 1.0):g} s {te.get('rpe_trans_rmse_m', math.nan):.4g} m / "
                f"{te.get('rpe_rot_rmse_deg', math.nan):.3g} deg (RMSE)"
            )
        lines.extend(f"  FLAG  {f}" for f in self.flags)
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


def _relative(sim: Array, real: Array, mask: npt.NDArray[np.bool_]) -> Array:
    return np.asarray(np.abs(sim[mask] - real[mask]) / np.abs(real[mask]), dtype=float)


def _sim_time_constant(sim: Trajectory | None) -> float:
    """The simulated robot's response time constant when the run says (a twin model run), else 0."""
    model = (sim.meta.get("twin") or sim.meta.get("model") or {}) if sim is not None else {}
    values = [model.get("time_constant_linear"), model.get("time_constant_angular")]
    found = [float(v) for v in values if isinstance(v, (int, float))]
    return max(found) if found else 0.0


def score_aligned(
    a: Aligned, config: TwinConfig, real: Trajectory | None = None, sim: Trajectory | None = None
) -> TwinResult:
    records: list[MetricRecord] = []
    series: dict[str, Array] = {}
    notes: list[str] = []
    flags: list[str] = []
    info: dict[str, Any] = {}
    rate = a.rate
    # The response delay between the runs: estimated once, removed from velocity tracking, reported.
    lin_delay = response_delay(a.real["vx"], a.sim["vx"], rate, config.max_delay)
    ang_delay = response_delay(a.real["vtheta"], a.sim["vtheta"], rate, config.max_delay)
    info["response_delay"] = {"linear_s": lin_delay, "angular_s": ang_delay}
    series["sim_vx_delayed"] = delayed(a.sim["vx"], a.t, lin_delay)
    series["sim_vtheta_delayed"] = delayed(a.sim["vtheta"], a.t, ang_delay)
    if len(a) > 10:
        try:
            info["trajectory_errors"] = trajectory_errors(a.t, a.real, a.sim, config.rpe_interval)
        except Exception as exc:  # evo refuses degenerate input (a run standing still): say so, score the rest
            notes.append(f"RPE/ATE not computed: {exc}")
    for spec in config.metrics:
        if not spec.enabled:
            continue
        if spec.name == "position_error":
            w = windowed_position_error(
                a.t,
                a.real,
                a.sim,
                config.window,
                window_distance=config.window_distance,
                smoothing=config.anchor_smoothing,
                relax=_sim_time_constant(sim),
            )
            series["position_error"] = w.error
            series["position_error_t"] = w.t_end
            series["anchored_x"], series["anchored_y"] = w.sim_x, w.sim_y
            records.append(
                _record(
                    spec,
                    w.error,
                    "position error at the end of each re-anchored window (the simulated robot put back on the "
                    f"recorded pose and velocity every {config.window:g} s"
                    + (f" / {config.window_distance:g} m" if config.window_distance else "")
                    + ")",
                    window_s=config.window,
                    window_distance_m=config.window_distance,
                    windows=int(w.error.size),
                    median=float(np.median(w.error)) if w.error.size else math.nan,
                    heading_error_p90_rad=float(np.quantile(w.heading_error, 0.9)) if w.error.size else math.nan,
                    **info.get("trajectory_errors", {}),
                )
            )
        elif spec.name == "velocity_tracking":
            moving = np.abs(a.real["vx"]) >= config.min_speed
            turning = np.abs(a.real["vtheta"]) >= config.min_yaw_rate
            lin = _relative(series["sim_vx_delayed"], a.real["vx"], moving)
            ang = _relative(series["sim_vtheta_delayed"], a.real["vtheta"], turning)
            series["velocity_tracking"] = np.where(
                moving,
                np.abs(series["sim_vx_delayed"] - a.real["vx"]) / np.maximum(np.abs(a.real["vx"]), 1e-9),
                np.nan,
            )
            lin_mean = float(np.mean(lin)) if lin.size else math.nan
            ang_mean = float(np.mean(ang)) if ang.size else math.nan
            rec = _record(
                spec,
                lin,
                "mean relative linear velocity error over moving samples after removing the response delay "
                "(the seed's definition); the angular error must meet the same tolerance",
                linear_error=lin_mean,
                angular_error=ang_mean,
                angular_passed=bool(ang.size == 0 or ang_mean <= spec.tolerance),
                response_delay_s=lin_delay,
                angular_response_delay_s=ang_delay,
                min_speed=config.min_speed,
                min_yaw_rate=config.min_yaw_rate,
                linear_samples=int(lin.size),
                angular_samples=int(ang.size),
            )
            rec.passed = rec.passed and bool(rec.extra["angular_passed"])  # both axes must track
            records.append(rec)
        elif spec.name == "sensor_latency":
            lr = command_latency(real) if real is not None else None
            ls = command_latency(sim) if sim is not None else None
            if lr is None or ls is None:
                notes.append("sensor_latency skipped: both runs need /cmd_vel commands and motion")
                continue
            info["latency"] = {"real": lr.to_dict(), "sim": ls.to_dict()}
            records.append(
                _record(
                    spec,
                    np.array([lr.value - ls.value]),
                    "real minus simulated command-to-response delay (cross-correlation of /cmd_vel and odometry)",
                    real_latency=lr.value,
                    sim_latency=ls.value,
                    real_latency_stderr=lr.stderr,
                    sim_latency_stderr=ls.stderr,
                    real_correlation=lr.correlation,
                    sim_correlation=ls.correlation,
                    confidence=_worse(lr, ls),
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
    contacts = list(sim.meta.get("contacts") or []) if sim is not None else []
    if contacts:
        info["contacts"] = contacts
        first = contacts[0]
        flags.append(
            f"the replay touched {first.get('entity')!r} at t = {float(first.get('t', math.nan)):.2f} s "
            f"({len(contacts)} contact(s) with something other than the ground): the replayed robot was not free, "
            "so its motion says nothing about the twin; replay in an empty world"
        )
    return TwinResult(records=records, aligned=a, series=series, notes=notes, flags=flags, info=info)


def _worse(*estimates: Latency) -> str:
    order = ("low", "medium", "high")
    return min((e.confidence for e in estimates), key=order.index)


def validate(real: Trajectory, sim: Trajectory, config: TwinConfig | None = None) -> TwinResult:
    """Align ``sim`` onto ``real`` and score it."""
    cfg = config or TwinConfig()
    a = align(real, sim, offset=cfg.offset, rate=cfg.rate, align_pose=cfg.align_pose)
    return score_aligned(a, cfg, real, sim)
