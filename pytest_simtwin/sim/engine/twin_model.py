"""The calibrated twin's command path, applied by the DiffDrive controller in every run.

Read from the robot file (a ``<plugin name="simtwin::TwinModel">`` element beside the DiffDrive
plugin, written by ``simtwin calibrate --sdf-out``) and then from an overrides YAML named by
``SIMTWIN_TWIN_OVERRIDES`` (``simtwin calibrate --out``; ``robot.twin`` and the effective
``robot.diff_drive.wheel_radius`` / ``wheel_separation``). Same order as twin/model.py:

1. ``command_latency``: the target reaches the SpeedLimiter this many seconds late;
2. (the DiffDrive's SpeedLimiter);
3. each wheel's speed clamped at ``max_wheel_speed`` (m/s at the rim, with the configured separation);
4. a first-order lag per axis on the limited velocity (``time_constant_linear`` / ``_angular``);
5. gains: ``linear_gain * r / r0`` and ``angular_gain * (r / r0) * (s0 / s)`` with the effective r, s
   and the controller's configured r0, s0.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_simtwin.errors import ModelError

ENV = "SIMTWIN_TWIN_OVERRIDES"
PLUGIN = "simtwin::TwinModel"
KEYS = (
    "wheel_radius",
    "wheel_separation",
    "command_latency",
    "time_constant_linear",
    "time_constant_angular",
    "linear_gain",
    "angular_gain",
    "max_wheel_speed",
)


@dataclass(frozen=True)
class TwinParams:
    wheel_radius: float  # effective (physical) values; the controller is configured with r0, s0
    wheel_separation: float
    command_latency: float = 0.0
    time_constant_linear: float = 0.0
    time_constant_angular: float = 0.0
    linear_gain: float = 1.0
    angular_gain: float = 1.0
    max_wheel_speed: float = math.inf  # m/s at the rim (a motor's top speed); inf: none

    def is_identity(self, r0: float, s0: float) -> bool:
        return (
            self.command_latency == 0
            and self.time_constant_linear == 0
            and self.time_constant_angular == 0
            and math.isinf(self.max_wheel_speed)
            and math.isclose(self.linear_gain * self.wheel_radius / r0, 1.0, rel_tol=1e-12)
            and math.isclose(
                self.angular_gain * self.wheel_radius / r0 * s0 / self.wheel_separation, 1.0, rel_tol=1e-12
            )
        )


def _numbers(values: dict[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in KEYS:
        if values.get(k) is None:
            continue
        try:
            out[k] = float(values[k])
        except (TypeError, ValueError):
            raise ModelError(f"{where}: twin parameter {k} must be a number, found {values[k]!r}") from None
        if (
            not math.isfinite(out[k])
            or out[k] < 0
            or (k in ("wheel_radius", "wheel_separation", "max_wheel_speed") and out[k] == 0)
        ):
            raise ModelError(f"{where}: twin parameter {k} must be a finite non-negative number, found {out[k]}")
    return out


def from_robot_file(path: Path | None) -> dict[str, float]:
    """Values of the robot file's ``simtwin::TwinModel`` plugin (empty when it has none)."""
    if path is None or not Path(path).is_file() or Path(path).suffix not in (".sdf", ".world", ".xml"):
        return {}
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}  # the world loader reports unreadable files itself
    plugin = next((p for p in root.iter("plugin") if p.get("name") == PLUGIN), None)
    if plugin is None:
        return {}
    return _numbers({el.tag: (el.text or "").strip() for el in plugin}, f"{path}: <plugin name={PLUGIN!r}>")


def from_overrides(path: Path) -> dict[str, float]:
    """``robot.twin`` and the effective radius/separation of ``robot.diff_drive`` in an overrides YAML."""
    import yaml  # lazily: only when an overrides file is named

    where = f"{path} (${ENV})"
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        robot = doc.get("robot") or {}
        dd = robot.get("diff_drive") or {}
        twin = robot.get("twin") or {}
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise ModelError(
            f"{where}: expected a simtwin overrides YAML with robot.twin (from `simtwin calibrate --out`): {exc}"
        ) from None
    values = {k: dd[k] for k in ("wheel_radius", "wheel_separation") if k in dd}
    values.update(twin)
    return _numbers(values, where)


def load(robot_file: Path | None, r0: float, s0: float, env: dict[str, str] | None = None) -> TwinParams | None:
    """The twin for a robot whose DiffDrive is configured with r0, s0; None when nothing changes it."""
    values = {"wheel_radius": r0, "wheel_separation": s0, **from_robot_file(robot_file)}
    overrides = (env if env is not None else os.environ).get(ENV)
    if overrides:
        values.update(from_overrides(Path(overrides)))
    params = TwinParams(**values)
    return None if params.is_identity(r0, s0) else params


class CommandPath:
    """Delay before the SpeedLimiter, lag and gains after it (state reset with the controller)."""

    def __init__(self, params: TwinParams, r0: float, s0: float) -> None:
        self.params = params
        self.s0 = s0
        k = params.wheel_radius / r0
        self.scale = (k * params.linear_gain, k * params.angular_gain * s0 / params.wheel_separation)
        self.reset()

    def reset(self) -> None:
        self._pending: deque[tuple[float, tuple[float, float]]] = deque()
        self._last: tuple[float, float] = (0.0, 0.0)
        self._current: tuple[float, float] = (0.0, 0.0)
        self._y = (0.0, 0.0)

    def target(self, target: tuple[float, float], now: float) -> tuple[float, float]:
        """The target the SpeedLimiter sees at sim time ``now``: the one set ``command_latency`` ago."""
        if target != self._last:
            self._pending.append((now, target))
            self._last = target
        due = now - self.params.command_latency + 1e-12
        while self._pending and self._pending[0][0] <= due:
            self._current = self._pending.popleft()[1]
        return self._current

    def response(self, v: float, w: float, dt: float) -> tuple[float, float]:
        """Wheel-speed clamp, lag and gains on the limited velocity."""
        p = self.params
        if math.isfinite(p.max_wheel_speed):  # the firmware clamps each wheel's goal (as twin/model.py)
            half, lim = 0.5 * self.s0 * w, p.max_wheel_speed
            left, right = min(max(v - half, -lim), lim), min(max(v + half, -lim), lim)
            v, w = 0.5 * (left + right), (right - left) / self.s0
        yv, yw = self._y
        yv = v if p.time_constant_linear <= 0 else yv + (v - yv) * (1.0 - math.exp(-dt / p.time_constant_linear))
        yw = w if p.time_constant_angular <= 0 else yw + (w - yw) * (1.0 - math.exp(-dt / p.time_constant_angular))
        self._y = (yv, yw)
        return yv * self.scale[0], yw * self.scale[1]

    @property
    def settled(self) -> bool:
        """No delayed target pending (the controller may skip work when nothing changes)."""
        return not self._pending
