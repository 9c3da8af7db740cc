"""Fit simulator parameters to real data by least squares (``simtwin calibrate``).

The model (twin/model.py) is driven by the real ``/cmd_vel`` sequence; the fit minimises the
weighted difference between its velocities and pose and the real odometry. Velocities carry most
of the weight: they pin wheel radius, separation, acceleration limits and latency without the
drift of an open-loop pose, which only breaks ties. The fitted values are written as a YAML
overrides file (``robot.diff_drive.*``) and, when a robot SDF is given, into a copy of it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.twin.data import Array, Trajectory
from pytest_simtwin.twin.model import DiffDriveParams, predict, simulate
from pytest_simtwin.twin.scoring import command_latency

FITTABLE = (
    "wheel_radius",
    "wheel_separation",
    "max_linear_acceleration",
    "max_angular_acceleration",
    "command_latency",
)
#: residual scales: 1 cm/s, 0.02 rad/s, 5 cm, 0.05 rad
SCALES = {"vx": 0.01, "vtheta": 0.02, "xy": 0.05, "theta": 0.05}


@dataclass
class CalibrationResult:
    nominal: DiffDriveParams
    fitted: DiffDriveParams
    fitted_names: tuple[str, ...]
    before: dict[str, float]
    after: dict[str, float]
    cost: float
    success: bool
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        lines = ["calibration (least squares on velocities and pose):"]
        for name in self.fitted_names:
            a, b = getattr(self.nominal, name), getattr(self.fitted, name)
            change = f" ({(b / a - 1) * 100:+.2f} %)" if a and math.isfinite(a) else ""
            lines.append(f"  {name:<26} {a:>10.5g} -> {b:.5g}{change}")
        lines.append("  error                      before      after")
        for key in self.before:
            lines.append(f"  {key:<26} {self.before[key]:>10.4g}  {self.after[key]:>9.4g}")
        return "\n".join(lines)

    def overrides(self) -> dict[str, Any]:
        """The YAML overrides document (``simtwin-sim --robot-overrides`` / the robot description)."""
        dd = {k: v for k, v in self.fitted.to_dict().items() if k != "command_latency" and v is not None}
        return {
            "robot": {"diff_drive": dd, "command_latency": float(self.fitted.command_latency)},
            "calibration": {
                "fitted": list(self.fitted_names),
                "nominal": self.nominal.to_dict(),
                "before": self.before,
                "after": self.after,
                "note": "wheel_radius/wheel_separation are the physical values; the controller keeps the nominal ones",
            },
        }


def errors_of(real: Trajectory, params: DiffDriveParams, nominal: DiffDriveParams) -> dict[str, float]:
    pred = predict(real, params, nominal)
    pos = np.hypot(pred.x - real.x, pred.y - real.y)
    moving = np.abs(real.vx) >= 0.05
    vel = np.abs(pred.vx[moving] - real.vx[moving]) / np.abs(real.vx[moving]) if moving.any() else np.array([math.nan])
    return {
        "position_rmse_m": float(np.sqrt(np.mean(pos**2))),
        "position_max_m": float(np.max(pos)),
        "velocity_rel_error": float(np.mean(vel)),
        "yaw_rate_rmse": float(np.sqrt(np.mean((pred.vtheta - real.vtheta) ** 2))),
    }


def calibrate(
    real: Trajectory,
    nominal: DiffDriveParams,
    fit: tuple[str, ...] = FITTABLE,
    *,
    initial: DiffDriveParams | None = None,
) -> CalibrationResult:
    """Fit ``fit`` parameters of the model to ``real`` (which must carry its /cmd_vel commands)."""
    from scipy.optimize import least_squares

    real.require_odometry(10)
    if not real.has_commands or real.first_command_time() is None:
        raise DataError(
            f"{real.source}: calibration needs the commands the robot received: expected a /cmd_vel topic "
            "with non-zero commands in the recording (record it with `simtwin record --cmd-vel`)"
        )
    unknown = [n for n in fit if n not in FITTABLE]
    if unknown:
        raise ConfigError(f"cannot fit {unknown}: expected some of {', '.join(FITTABLE)}")
    start = initial or nominal
    if initial is None and "command_latency" in fit:
        # Start the latency at the cross-correlation estimate: from zero the fit barely feels it.

        lr, lm = command_latency(real), command_latency(predict(real, nominal, nominal))
        if lr is not None and lm is not None:
            start = start.with_(command_latency=min(max(lr - lm, 0.0), 0.5))
    # Infinite limits cannot be optimised: start from a value the data can move.
    guesses = {"max_linear_acceleration": 2.0, "max_angular_acceleration": 5.0}
    p0 = np.array([getattr(start, n) if math.isfinite(getattr(start, n)) else guesses[n] for n in fit], dtype=float)
    # Optimise dimensionless values (parameter / typical size): radius in m and latency in s
    # differ by orders of magnitude, and finite-difference steps must suit each.
    typical = np.array([max(abs(v), 0.01) for v in p0])
    lower = np.array([_bounds(n, nominal)[0] for n in fit]) / typical
    upper = np.array([_bounds(n, nominal)[1] for n in fit]) / typical
    x0 = np.clip(p0 / typical, lower + 1e-9, upper - 1e-9)
    t, cmd = real.t, (real.cmd_t, real.cmd_vx, real.cmd_vtheta)
    start_pose = (float(real.x[0]), float(real.y[0]), float(real.theta[0]))
    theta_real = np.unwrap(real.theta)

    def params_of(x: Array) -> DiffDriveParams:
        return start.with_(**{n: float(v) for n, v in zip(fit, x * typical, strict=True)})

    def residuals(x: Array) -> Array:
        out = simulate(*cmd, t, params_of(x), nominal, start_pose=start_pose)
        return np.concatenate(
            [
                (out["vx"] - real.vx) / SCALES["vx"],
                (out["vtheta"] - real.vtheta) / SCALES["vtheta"],
                (out["x"] - real.x) / SCALES["xy"],
                (out["y"] - real.y) / SCALES["xy"],
                (out["theta"] - theta_real) / SCALES["theta"],
            ]
        ) / math.sqrt(t.size)

    sol = least_squares(residuals, x0, bounds=(lower, upper), diff_step=1e-3, max_nfev=200)
    fitted = params_of(sol.x)
    return CalibrationResult(
        nominal=nominal,
        fitted=fitted,
        fitted_names=tuple(fit),
        before=errors_of(real, nominal, nominal),
        after=errors_of(real, fitted, nominal),
        cost=float(sol.cost),
        success=bool(sol.success),
        message=str(sol.message),
        extra={"nfev": int(sol.nfev)},
    )


def _bounds(name: str, nominal: DiffDriveParams) -> tuple[float, float]:
    if name == "wheel_radius":
        return 0.5 * nominal.wheel_radius, 2.0 * nominal.wheel_radius
    if name == "wheel_separation":
        return 0.5 * nominal.wheel_separation, 2.0 * nominal.wheel_separation
    if name == "command_latency":
        return 0.0, 0.5
    return 0.05, 100.0


def write_overrides(result: CalibrationResult, path: Path, source: str = "") -> Path:
    import yaml

    doc = result.overrides()
    if source:
        doc["calibration"]["data"] = source
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by `simtwin calibrate`\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def read_overrides(path: Path) -> DiffDriveParams:
    """The model parameters of an overrides file (the inverse of :func:`write_overrides`)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        robot = doc["robot"]
        dd = dict(robot.get("diff_drive") or {})
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: expected a simtwin overrides YAML with robot.diff_drive, ({exc})") from None
    known = set(DiffDriveParams.__dataclass_fields__)
    values = {k: float(v) for k, v in dd.items() if k in known and v is not None}
    values["command_latency"] = float(robot.get("command_latency", 0.0) or 0.0)
    return DiffDriveParams(**values)


# -- SDF -------------------------------------------------------------------------------------------
_DD_TAGS = {
    "max_linear_acceleration": ("max_linear_acceleration", "max_acceleration"),
    "max_angular_acceleration": ("max_angular_acceleration",),
}


def nominal_from_sdf(path: Path) -> DiffDriveParams:
    """Wheel radius, separation and limits from the DiffDrive plugin of an SDF robot."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read the robot SDF ({exc})") from None
    plugin = next(
        (p for p in root.iter("plugin") if "diff" in (p.get("filename", "") + p.get("name", "")).lower()), None
    )
    if plugin is None:
        raise ConfigError(f"{path}: no DiffDrive <plugin> found; pass --wheel-radius and --wheel-separation instead")

    def num(tag: str) -> float | None:
        el = plugin.find(tag)
        return float(el.text) if el is not None and el.text else None

    values: dict[str, float] = {}
    for key in ("wheel_radius", "wheel_separation", "max_linear_velocity", "max_angular_velocity"):
        v = num(key)
        if v is not None:
            values[key] = v
    for key, tags in _DD_TAGS.items():
        for tag in tags:
            v = num(tag)
            if v is not None:
                values[key] = v
                break
    if "wheel_radius" not in values or "wheel_separation" not in values:
        raise ConfigError(f"{path}: the DiffDrive plugin lacks <wheel_radius> or <wheel_separation>")
    return DiffDriveParams(**values)


def write_sdf_copy(src: Path, dst: Path, result: CalibrationResult) -> Path:
    """A copy of the robot SDF with the fitted acceleration limits in the DiffDrive plugin and the
    wheel collision radius scaled to the fitted physical radius (text edits keep the file's layout).
    """
    text = Path(src).read_text()
    fitted = result.fitted
    for key, tags in _DD_TAGS.items():
        if key in result.fitted_names:
            for tag in tags:
                text = re.sub(rf"<{tag}>\s*[^<]*</{tag}>", f"<{tag}>{getattr(fitted, key):.6g}</{tag}>", text)
    if "wheel_radius" in result.fitted_names:
        r0, r1 = result.nominal.wheel_radius, fitted.wheel_radius
        # wheel collision geometry: <radius> elements equal to the nominal wheel radius
        text = re.sub(
            r"<radius>\s*([0-9.eE+-]+)\s*</radius>",
            lambda m: f"<radius>{r1:.6g}</radius>" if math.isclose(float(m.group(1)), r0, rel_tol=1e-6) else m.group(0),
            text,
        )
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return dst
