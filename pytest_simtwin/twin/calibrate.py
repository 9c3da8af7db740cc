"""Fit the twin model to a real recording (``simtwin calibrate``), honestly.

The model (twin/model.py) is driven by the recording's ``/cmd_vel``; the fit (scipy
``least_squares``, see docs/twin-metrics.md for why not ``mujoco.sysid``) minimises the
difference between its body velocities and the recorded ones: velocities pin the delay, lags,
limits, radius and separation without the drift of an open-loop pose.

What the data determines is checked, not assumed: the formal covariance of the fit (residual
variance x (JᵀJ)⁻¹) gives each parameter a standard error and the correlations between them; a
parameter whose error is too large, or that trades off against another (|correlation| > 0.995,
e.g. a velocity gain against the wheel radius), is *not identified*: it keeps its nominal value and
the fit is repeated without it. The fit uses part of the recording; held-out segments then compare
the calibrated twin with the nominal one on every metric, and a calibration that is worse on any
of them is refused (``accepted`` False: the CLI exits 1 and writes no file).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.twin.align import uniform_grid
from pytest_simtwin.twin.data import Array, Trajectory
from pytest_simtwin.twin.model import TWIN_FIELDS, DiffDriveParams, predict, simulate
from pytest_simtwin.twin.openloop import command_latency, smooth
from pytest_simtwin.twin.robotfile import (
    nominal_from_sdf,
    read_overrides,
    twin_from_sdf,
    twin_plugin_xml,
    write_overrides,
    write_sdf_copy,
)
from pytest_simtwin.twin.scoring import TwinConfig, validate

#: the robot-file functions are re-exported: ``from pytest_simtwin.twin.calibrate import write_sdf_copy``
__all__ = [
    "CalibrationResult",
    "calibrate",
    "nominal_from_sdf",
    "read_overrides",
    "twin_from_sdf",
    "twin_plugin_xml",
    "write_overrides",
    "write_sdf_copy",
]

FITTABLE = (
    "wheel_radius",
    "wheel_separation",
    "command_latency",
    "time_constant_linear",
    "time_constant_angular",
    "max_linear_acceleration",
    "max_angular_acceleration",
    "linear_gain",
    "angular_gain",
    "max_wheel_speed",
)
#: fitted unless --fit says otherwise: the gains are the radius/separation again (see twin/model.py)
DEFAULT_FIT = (
    "wheel_radius",
    "wheel_separation",
    "command_latency",
    "time_constant_linear",
    "time_constant_angular",
    "max_wheel_speed",
)
#: residual scales: 1 cm/s, 0.02 rad/s
SCALES = {"vx": 0.01, "vtheta": 0.02}
#: a parameter is identified when its standard error is below this (relative to its value where "%")
IDENTIFIED_BELOW: dict[str, tuple[float, str]] = {
    "wheel_radius": (0.01, "%"),
    "wheel_separation": (0.02, "%"),
    "command_latency": (0.01, "s"),
    "time_constant_linear": (0.02, "s"),
    "time_constant_angular": (0.02, "s"),
    "max_linear_acceleration": (0.25, "%"),
    "max_angular_acceleration": (0.25, "%"),
    "linear_gain": (0.01, "%"),
    "angular_gain": (0.02, "%"),
    "max_wheel_speed": (0.03, "%"),
}
MAX_CORRELATION = 0.995
#: held-out check: "no worse" allows this relative margin (plus 1e-4 of the metric's unit) for noise
NO_WORSE_MARGIN = 0.02


@dataclass
class ParameterEstimate:
    name: str
    nominal: float
    value: float
    stderr: float
    identified: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        def f(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "nominal": f(self.nominal),
            "fitted": f(self.value),
            "stderr": f(self.stderr),
            "identified": self.identified,
            "note": self.note,
        }


@dataclass
class CalibrationResult:
    nominal: DiffDriveParams
    fitted: DiffDriveParams
    fitted_names: tuple[str, ...]
    parameters: dict[str, ParameterEstimate]
    before: dict[str, float]  # held-out metric values of the nominal twin
    after: dict[str, float]  # ... and of the calibrated one
    worse: list[str]  # metrics on which the calibrated twin is worse on the held-out segments
    cost: float
    success: bool
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.success and not self.worse

    @property
    def identified(self) -> tuple[str, ...]:
        return tuple(n for n, p in self.parameters.items() if p.identified)

    def summary(self) -> str:
        lines = [
            f"calibration on {self.extra.get('fit_fraction', 0):.0%} of the recording "
            f"({self.extra.get('fit_segments')} fit / {self.extra.get('held_out_segments')} held-out segments):",
            f"  {'parameter':<26} {'nominal':>10}  {'fitted':>10}  {'1-sigma':>9}",
        ]
        for name, p in self.parameters.items():
            change = f" ({(p.value / p.nominal - 1) * 100:+.2f} %)" if p.nominal and math.isfinite(p.nominal) else ""
            state = "" if p.identified else f"  NOT IDENTIFIED: {p.note}"
            lines.append(f"  {name:<26} {p.nominal:>10.5g}  {p.value:>10.5g}  {p.stderr:>9.2g}{change}{state}")
        lines.append(f"  held-out check ({'metric':<18}) {'nominal':>10}  {'calibrated':>10}")
        for key in self.before:
            mark = "  WORSE" if key in self.worse else ""
            lines.append(f"  {'':<15}{key:<20} {self.before[key]:>10.4g}  {self.after[key]:>10.4g}{mark}")
        if self.worse:
            lines.append(
                f"  REFUSED: the calibrated twin is worse than the nominal one on held-out data ({', '.join(self.worse)})"
            )
        return "\n".join(lines)

    def overrides(self) -> dict[str, Any]:
        """The YAML overrides document (``SIMTWIN_TWIN_OVERRIDES`` / ``simtwin calibrate --out``)."""
        f = self.fitted
        dd = {
            k: getattr(f, k)
            for k in ("wheel_radius", "wheel_separation", "max_linear_acceleration", "max_angular_acceleration")
            if math.isfinite(getattr(f, k))
        }
        return {
            "robot": {
                "diff_drive": dd,
                "twin": {k: float(getattr(f, k)) for k in TWIN_FIELDS if math.isfinite(getattr(f, k))},
            },
            "calibration": {
                "parameters": {n: p.to_dict() for n, p in self.parameters.items()},
                "nominal": self.nominal.to_dict(),
                "held_out": {"nominal": self.before, "calibrated": self.after},
                "note": "wheel_radius/wheel_separation are the effective physical values; the controller keeps "
                "its configured ones and the simulator applies the ratio (sim/engine/twin_model.py)",
            },
        }


def segments_of(real: Trajectory, count: int) -> list[tuple[float, float]]:
    edges = np.linspace(float(real.t[0]), float(real.t[-1]), count + 1)
    return [(float(a), float(b)) for a, b in itertools.pairwise(edges)]


def _slice(traj: Trajectory, t0: float, t1: float) -> Trajectory:
    keep = (traj.t >= t0) & (traj.t <= t1)
    ck = (traj.cmd_t >= t0 - 5.0) & (traj.cmd_t <= t1)  # the commands just before still act (delay, lag)
    return traj.replace(
        t=traj.t[keep], x=traj.x[keep], y=traj.y[keep], theta=traj.theta[keep], vx=traj.vx[keep],
        vtheta=traj.vtheta[keep], cmd_t=traj.cmd_t[ck], cmd_vx=traj.cmd_vx[ck], cmd_vtheta=traj.cmd_vtheta[ck],
        joint_t=np.zeros(0), joint_names=[], joint_position=np.zeros((0, 0)), joint_velocity=np.zeros((0, 0)),
    )  # fmt: skip


def held_out_scores(
    real: Trajectory, params: DiffDriveParams, nominal: DiffDriveParams, spans: list[tuple[float, float]],
    config: TwinConfig,
) -> dict[str, float]:  # fmt: skip
    """Mean value of each metric over the held-out spans (the model run over the whole recording, then cut)."""
    pred = predict(real, params, nominal, source="model")
    pred.meta["twin"] = params.to_dict()
    values: dict[str, list[float]] = {}
    for t0, t1 in spans:
        r, p = _slice(real, t0, t1), _slice(pred, t0, t1)
        if len(r) < 10:
            continue
        res = validate(r, p.replace(meta=pred.meta), config)
        for rec in res.records:
            values.setdefault(rec.name, []).append(abs(rec.value))
    return {k: float(np.mean(v)) for k, v in values.items()}


def calibrate(
    real: Trajectory,
    nominal: DiffDriveParams,
    fit: tuple[str, ...] | None = None,
    *,
    initial: DiffDriveParams | None = None,
    segments: int = 5,
    held_out: tuple[int, ...] = (1, 3),
    config: TwinConfig | None = None,
) -> CalibrationResult:
    """Fit ``fit`` parameters to ``real`` (which must carry its /cmd_vel) on all but the ``held_out`` segments.

    ``fit`` None: the default set, and the default set with the linear acceleration limit (a motor's
    torque limit); the held-out segments choose (see :data:`RICHER_GAIN`).
    """
    if fit is not None:
        return _calibrate_set(real, nominal, fit, initial, segments, held_out, config)
    simple = _calibrate_set(real, nominal, DEFAULT_FIT, initial, segments, held_out, config)
    if not simple.success:
        return simple
    richer = _calibrate_set(real, nominal, (*DEFAULT_FIT, *RICHER), initial, segments, held_out, config)
    key = "velocity_tracking"
    better = (
        richer.accepted
        and key in richer.after
        and key in simple.after
        and (not simple.accepted or richer.after[key] < simple.after[key] * (1 - RICHER_GAIN))
    )
    chosen, other = (richer, simple) if better else (simple, richer)
    chosen.extra["model_selection"] = {
        "chosen": list(chosen.parameters),
        "alternative": list(other.parameters),
        "held_out_velocity_tracking": {"chosen": chosen.after.get(key), "alternative": other.after.get(key)},
        "alternative_accepted": other.accepted,
    }
    return chosen


#: tried beside the default set; kept only when it tracks held-out velocities this much better
RICHER = ("max_linear_acceleration",)
RICHER_GAIN = 0.05


def _calibrate_set(
    real: Trajectory,
    nominal: DiffDriveParams,
    fit: tuple[str, ...],
    initial: DiffDriveParams | None,
    segments: int,
    held_out: tuple[int, ...],
    config: TwinConfig | None,
) -> CalibrationResult:
    real.require_odometry(10)
    if not real.has_commands or real.first_command_time() is None:
        raise DataError(
            f"{real.source}: calibration needs the commands the robot received: expected a /cmd_vel topic "
            "(geometry_msgs Twist or TwistStamped) with non-zero commands in the recording"
            + (f"; topics present: {real.meta['bag_topics']}" if real.meta.get("bag_topics") else "")
            + " (pass its name with --cmd-vel-topic, or record it: `simtwin record` does by default)"
        )
    unknown = [n for n in fit if n not in FITTABLE]
    if unknown:
        raise ConfigError(f"cannot fit {unknown}: expected some of {', '.join(FITTABLE)}")
    cfg = config or TwinConfig()
    spans = segments_of(real, segments)
    held = [spans[i] for i in held_out if i < len(spans)]
    mask = np.ones(real.t.size, dtype=bool)
    for t0, t1 in held:
        mask &= ~((real.t >= t0) & (real.t <= t1))
    start = initial or nominal
    if initial is None and "command_latency" in fit:
        # Start the delay at the cross-correlation estimate (less a lag's share): from zero the fit barely feels it.
        lr, lm = command_latency(real), command_latency(predict(real, nominal, nominal))
        if lr is not None and lm is not None:
            share = 0.5 if any(n.startswith("time_constant") for n in fit) else 0.0
            start = start.with_(command_latency=min(max((lr.value - lm.value) * (1 - share), 0.0), 0.5))
            for n in ("time_constant_linear", "time_constant_angular"):
                if n in fit:
                    start = start.with_(**{n: min(max((lr.value - lm.value) * share, 0.01), 1.0)})
    if "max_wheel_speed" in fit and not math.isfinite(start.max_wheel_speed):
        start = start.with_(max_wheel_speed=_top_wheel_speed(real, nominal))
    if initial is None:  # an acceleration limit started at the nominal one rarely binds: the lag absorbs it
        for name, key in (("max_linear_acceleration", "vx"), ("max_angular_acceleration", "vtheta")):
            if name in fit:
                start = start.with_(**{name: _top_acceleration(real, key)})
    names = list(fit)
    notes: dict[str, str] = {}
    stderr: dict[str, float] = {}
    # a second start with the whole delay in command_latency: delay and lag are easy to confuse
    starts = [start]
    if "command_latency" in names and any(n.startswith("time_constant") for n in names):
        total = start.command_latency + start.time_constant_linear
        taus = {n: 0.01 for n in ("time_constant_linear", "time_constant_angular") if n in names}
        starts.append(start.with_(command_latency=total, **taus))
    sol: Any = None
    for _attempt in range(len(names) + 1):  # drop what the data does not identify, fit again
        fits = [_fit(real, mask, nominal, s0, tuple(names)) for s0 in starts]
        sol, stderr, corr = min(fits, key=lambda f: float(f[0].cost))
        bad = _unidentified(names, _params_of(start, names, sol.x), stderr, corr, notes)
        if not bad:
            break
        names = [n for n in names if n not in bad]
        start = start.with_(**{n: getattr(nominal, n) for n in bad})
        starts = [start]
        sol = None
        if not names:
            break
    fitted = _params_of(start, names, sol.x) if sol is not None else start
    parameters = {
        n: ParameterEstimate(
            n, getattr(nominal, n), getattr(fitted, n), stderr.get(n, math.inf) if n in names else math.inf,
            n in names, notes.get(n, ""),
        )
        for n in fit
    }  # fmt: skip
    before = held_out_scores(real, nominal, nominal, held, cfg)
    after = held_out_scores(real, fitted, nominal, held, cfg)
    worse = [k for k in before if k in after and after[k] > before[k] * (1 + NO_WORSE_MARGIN) + 1e-4]
    return CalibrationResult(
        nominal=nominal,
        fitted=fitted,
        fitted_names=tuple(names),
        parameters=parameters,
        before=before,
        after=after,
        worse=worse,
        cost=float(sol.cost) if sol is not None else math.nan,
        success=bool(sol.success) if sol is not None else False,
        message=str(sol.message) if sol is not None else "nothing identifiable to fit",
        extra={
            "nfev": int(sol.nfev) if sol is not None else 0,
            "fit_fraction": float(mask.mean()),
            "fit_segments": segments - len(held),
            "held_out_segments": len(held),
            "held_out_spans": held,
        },
    )


def _top_wheel_speed(real: Trajectory, nominal: DiffDriveParams) -> float:
    """The fastest wheel rim speed the recording shows (a start for ``max_wheel_speed``)."""
    wheel = np.abs(real.vx) + 0.5 * nominal.wheel_separation * np.abs(real.vtheta)
    return float(max(np.quantile(wheel, 0.995), 0.06)) if wheel.size else 1.0


def _top_acceleration(real: Trajectory, key: str) -> float:
    """The largest acceleration the recording shows (98th percentile, 0.2 s smoothing): a start for a limit."""
    rate = 50.0
    t = uniform_grid(float(real.t[0]), float(real.t[-1]), rate)
    if t.size < 20:
        return 2.0
    v = smooth(np.interp(t, real.t, getattr(real, key)), rate, 0.2)
    return float(max(np.quantile(np.abs(np.gradient(v, t)), 0.98), 0.1))


def _params_of(start: DiffDriveParams, names: list[str] | tuple[str, ...], x: Array) -> DiffDriveParams:
    return start.with_(**{n: float(v) for n, v in zip(names, x, strict=True)})


def _fit(
    real: Trajectory, mask: Array, nominal: DiffDriveParams, start: DiffDriveParams, names: tuple[str, ...]
) -> tuple[Any, dict[str, float], Array]:
    """One least-squares fit on the ``mask``ed samples; (solution, standard errors, correlation matrix)."""
    from scipy.optimize import least_squares  # lazily: scipy is only needed to calibrate

    guesses = {"max_linear_acceleration": 2.0, "max_angular_acceleration": 5.0}
    p0 = np.array([getattr(start, n) if math.isfinite(getattr(start, n)) else guesses[n] for n in names], dtype=float)
    typical = np.array([_typical(n, nominal) for n in names])
    lower = np.array([_bounds(n, nominal)[0] for n in names])
    upper = np.array([_bounds(n, nominal)[1] for n in names])
    x0 = np.clip(p0, lower + 1e-9 * typical, upper - 1e-9 * typical)
    # Optimise z = x / typical + 1: scipy's finite-difference step is relative to z, so a delay near
    # zero still gets a step of 1e-3 x typical (a step relative to x itself would vanish there).
    z0, zlo, zhi = x0 / typical + 1.0, lower / typical + 1.0, upper / typical + 1.0
    epoch = float(real.t[0])  # times from the start: at a 1.7e9 s epoch a float resolves only 0.2 us
    t = real.t - epoch
    cmd = (real.cmd_t - epoch, real.cmd_vx, real.cmd_vtheta)
    rv, rw = real.vx[mask], real.vtheta[mask]

    def residuals(z: Array) -> Array:
        out = simulate(*cmd, t, _params_of(start, names, (z - 1.0) * typical), nominal, dt=0.005, poses=False)
        return np.concatenate([(out["vx"][mask] - rv) / SCALES["vx"], (out["vtheta"][mask] - rw) / SCALES["vtheta"]])

    sol = least_squares(residuals, z0, bounds=(zlo, zhi), diff_step=1e-3, max_nfev=300)
    sol.x = (sol.x - 1.0) * typical  # back to parameter units; sol.jac stays per unit of z (= per typical)
    m, n = sol.fun.size, len(names)
    s2 = float(sol.fun @ sol.fun) / max(m - n, 1)
    # covariance in scaled units (radius in m and delays in s differ by orders of magnitude), by SVD:
    # directions the data does not constrain get an infinite variance instead of numerical noise
    js = sol.jac
    _, sv, vt = np.linalg.svd(js, full_matrices=False)
    keep = sv > 1e-8 * sv[0] if sv.size and sv[0] > 0 else np.zeros(sv.shape, dtype=bool)
    inv = np.where(keep, 1.0 / np.where(keep, sv, 1.0) ** 2, 0.0)
    cov_s = s2 * (vt.T * inv) @ vt
    free = np.abs(vt[~keep]).max(axis=0) > 1e-6 if (~keep).any() else np.zeros(n, dtype=bool)
    std = np.sqrt(np.clip(np.diag(cov_s), 0.0, None)) * typical
    std[free] = math.inf
    d = np.sqrt(np.clip(np.diag(cov_s), 1e-300, None))
    corr = np.clip(cov_s / np.outer(d, d), -1.0, 1.0)
    corr[free, :] = corr[:, free] = 0.0
    np.fill_diagonal(corr, 1.0)
    return sol, {name: float(v) for name, v in zip(names, std, strict=True)}, np.nan_to_num(corr)


def _unidentified(
    names: list[str], fitted: DiffDriveParams, stderr: dict[str, float], corr: Array, notes: dict[str, str]
) -> set[str]:
    """What this fit does not identify, one cause at a time (the caller refits without it)."""
    free = [n for n in names if not math.isfinite(stderr[n])]
    if len(free) > 1:
        # an exact trade-off (e.g. a gain and the radius): the last one keeps its nominal value
        last = free[-1]
        notes[last] = (
            f"trades off exactly against {', '.join(free[:-1])}: the data cannot tell them apart; kept at nominal"
        )
        return {last}
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            if abs(corr[i, j]) > MAX_CORRELATION:
                b = names[j]  # the later one keeps its nominal value; the earlier one absorbs what they share
                notes[b] = (
                    f"trades off against {a} (correlation {corr[i, j]:+.3f}): the data cannot tell them apart; "
                    f"kept at nominal, {a} absorbs it"
                )
                return {b}
    bad: set[str] = set()
    for a in names:
        limit, kind = IDENTIFIED_BELOW[a]
        size = abs(getattr(fitted, a)) if kind == "%" else 1.0
        if a.startswith("time_constant"):  # a long lag known to 10 % is known: 20 ms or a tenth of it
            limit = max(limit, 0.1 * abs(getattr(fitted, a)))
        if not math.isfinite(stderr[a]) or stderr[a] > limit * size:
            notes[a] = (
                f"standard error {stderr[a]:.3g} exceeds {limit * size:.3g}: the recording does not excite it "
                "(no turning for the separation, no hard acceleration for the limits, ...); kept at nominal"
            )
            bad.add(a)
    return bad


def _typical(name: str, nominal: DiffDriveParams) -> float:
    if name in ("wheel_radius", "wheel_separation"):
        return float(getattr(nominal, name))
    if name.startswith("time_constant") or name == "command_latency":
        return 0.05
    if name == "max_wheel_speed":
        return 0.2
    if name.endswith("gain"):
        return 1.0
    value = float(getattr(nominal, name))
    return value if math.isfinite(value) else 2.0


def _bounds(name: str, nominal: DiffDriveParams) -> tuple[float, float]:
    if name == "wheel_radius":
        return 0.5 * nominal.wheel_radius, 2.0 * nominal.wheel_radius
    if name == "wheel_separation":
        return 0.5 * nominal.wheel_separation, 2.0 * nominal.wheel_separation
    if name == "command_latency":
        return 0.0, 0.5
    if name.startswith("time_constant"):
        return 0.0, 1.0
    if name.endswith("gain"):
        return 0.5, 2.0
    return 0.05, 100.0
