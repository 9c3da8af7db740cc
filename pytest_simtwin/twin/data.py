"""The in-memory form of a recorded run (real robot or simulator) and its simple JSON format.

JSON format (``simtwin-trajectory/1``), written by ``simtwin record --json`` and ``simtwin synth``::

    {"format": "simtwin-trajectory/1", "source": "real robot 3",
     "samples": [{"timestamp": 12.30, "odom": {"x", "y", "theta", "vx", "vtheta"},
                  "joint_states": {"name": [..], "position": [..], "velocity": [..]}}, ...],
     "cmd_vel": [{"timestamp": 12.29, "vx": 0.5, "vtheta": 0.0}, ...]}

``joint_states`` and ``cmd_vel`` are optional. A bare list of samples (each may carry its own
``source``) and JSON Lines with one sample per line are accepted too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pytest_simtwin.errors import DataError

FORMAT = "simtwin-trajectory/1"
Array = npt.NDArray[np.float64]


def as_array(values: Any) -> Array:
    """Any sequence of numbers as a flat float64 array."""
    return np.asarray(values, dtype=float).reshape(-1)


_arr = as_array


@dataclass
class Trajectory:
    """Odometry samples (``t`` in seconds, any epoch) plus optional commands and joint states."""

    source: str
    t: Array
    x: Array
    y: Array
    theta: Array
    vx: Array
    vtheta: Array
    cmd_t: Array = field(default_factory=lambda: np.zeros(0))
    cmd_vx: Array = field(default_factory=lambda: np.zeros(0))
    cmd_vtheta: Array = field(default_factory=lambda: np.zeros(0))
    joint_t: Array = field(default_factory=lambda: np.zeros(0))
    joint_names: list[str] = field(default_factory=list)
    joint_position: Array = field(default_factory=lambda: np.zeros((0, 0)))
    joint_velocity: Array = field(default_factory=lambda: np.zeros((0, 0)))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("t", "x", "y", "theta", "vx", "vtheta", "cmd_t", "cmd_vx", "cmd_vtheta", "joint_t"):
            setattr(self, name, _arr(getattr(self, name)))
        n = self.t.size
        for name in ("x", "y", "theta", "vx", "vtheta"):
            if getattr(self, name).size != n:
                raise DataError(
                    f"{self.source}: odometry field {name!r} has {getattr(self, name).size} values, expected {n}"
                )
        if not (self.cmd_t.size == self.cmd_vx.size == self.cmd_vtheta.size):
            raise DataError(f"{self.source}: cmd_vel timestamps and values differ in length")
        if n > 1 and np.any(np.diff(self.t) < 0):
            order = np.argsort(self.t, kind="stable")
            for name in ("t", "x", "y", "theta", "vx", "vtheta"):
                setattr(self, name, getattr(self, name)[order])
        if self.cmd_t.size > 1 and np.any(np.diff(self.cmd_t) < 0):
            order = np.argsort(self.cmd_t, kind="stable")
            self.cmd_t, self.cmd_vx, self.cmd_vtheta = self.cmd_t[order], self.cmd_vx[order], self.cmd_vtheta[order]

    # -- properties ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def duration(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    @property
    def rate(self) -> float:
        """Median odometry rate in Hz."""
        if self.t.size < 2:
            return 0.0
        dt = float(np.median(np.diff(self.t)))
        return 1.0 / dt if dt > 0 else 0.0

    @property
    def has_commands(self) -> bool:
        return self.cmd_t.size > 0

    @property
    def positions(self) -> Array:
        return np.column_stack([self.x, self.y])

    def first_command_time(self, threshold: float = 1e-3) -> float | None:
        """Time of the first non-zero velocity command (alignment anchor)."""
        moving = np.flatnonzero((np.abs(self.cmd_vx) > threshold) | (np.abs(self.cmd_vtheta) > threshold))
        return float(self.cmd_t[moving[0]]) if moving.size else None

    def shifted(self, dt: float) -> Trajectory:
        """The same run with every timestamp moved by ``dt`` seconds."""
        return self.replace(t=self.t + dt, cmd_t=self.cmd_t + dt, joint_t=self.joint_t + dt)

    def replace(self, **changes: Any) -> Trajectory:
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values.update(changes)
        values["meta"] = dict(values["meta"])
        return Trajectory(**values)

    def require_odometry(self, min_samples: int = 2) -> None:
        if len(self) < min_samples:
            raise DataError(
                f"{self.source}: expected at least {min_samples} odometry samples, found {len(self)}; "
                "check the odometry topic name and that the robot published while recording"
            )

    # -- JSON ------------------------------------------------------------------------------------
    def to_json_dict(self, digits: int = 6) -> dict[str, Any]:
        def r(v: float) -> float:
            return round(float(v), digits)

        samples: list[dict[str, Any]] = []
        joint_index = _nearest_indices(self.joint_t, self.t, tolerance=0.5 / max(self.rate, 1.0))
        for i in range(len(self)):
            sample: dict[str, Any] = {
                "timestamp": round(float(self.t[i]), 9),
                "odom": {
                    "x": r(self.x[i]),
                    "y": r(self.y[i]),
                    "theta": r(self.theta[i]),
                    "vx": r(self.vx[i]),
                    "vtheta": r(self.vtheta[i]),
                },
            }
            j = joint_index[i]
            if j >= 0:
                sample["joint_states"] = {
                    "name": self.joint_names,
                    "position": [r(v) for v in self.joint_position[j]],
                    "velocity": [r(v) for v in self.joint_velocity[j]] if self.joint_velocity.size else [],
                }
            samples.append(sample)
        out: dict[str, Any] = {"format": FORMAT, "source": self.source, "samples": samples}
        if self.has_commands:
            out["cmd_vel"] = [
                {"timestamp": round(float(t), 9), "vx": r(v), "vtheta": r(w)}
                for t, v, w in zip(self.cmd_t, self.cmd_vx, self.cmd_vtheta, strict=False)
            ]
        if self.meta:
            out["meta"] = self.meta
        return out

    def save_json(self, path: Path, digits: int = 6) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json_dict(digits), separators=(",", ":")) + "\n")
        return path


def matrix(rows: Sequence[Sequence[float]]) -> Array:
    """Rows of equal length as a 2-D float array; (0, 0) when there are none."""
    return np.asarray(rows, dtype=float).reshape(len(rows), -1) if rows and len(rows[0]) else np.zeros((0, 0))


def _nearest_indices(src_t: Array, dst_t: Array, tolerance: float) -> npt.NDArray[np.int64]:
    """For each ``dst_t`` the index of the nearest ``src_t`` within ``tolerance``, else -1."""
    out = np.full(dst_t.size, -1, dtype=np.int64)
    if src_t.size == 0:
        return out
    idx = np.clip(np.searchsorted(src_t, dst_t), 1, max(src_t.size - 1, 1))
    left = np.clip(idx - 1, 0, src_t.size - 1)
    right = np.clip(idx, 0, src_t.size - 1)
    pick = np.where(np.abs(src_t[left] - dst_t) <= np.abs(src_t[right] - dst_t), left, right)
    ok = np.abs(src_t[pick] - dst_t) <= tolerance
    out[ok] = pick[ok]
    return out


def _num(value: Any, where: str, key: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: expected a number for {key!r}, found {value!r}") from None


def from_json_dict(data: Any, where: str, source: str | None = None) -> Trajectory:
    """Build a Trajectory from the JSON format (object with ``samples``, or a bare list of samples)."""
    meta: dict[str, Any] = {}
    commands: Sequence[Any] = ()
    if isinstance(data, Mapping):
        if "samples" not in data:
            raise DataError(
                f"{where}: expected a JSON object with a 'samples' list (format {FORMAT}) or a list of samples, "
                f"found keys {sorted(data)[:10]}"
            )
        samples = data["samples"]
        commands = data.get("cmd_vel") or ()
        meta = dict(data.get("meta") or {})
        name = source or str(data.get("source") or where)
    elif isinstance(data, list):
        samples = data
        first_source = data[0].get("source") if data and isinstance(data[0], Mapping) else None
        name = source or str(first_source or where)
    else:
        raise DataError(f"{where}: expected a JSON object or list, found {type(data).__name__}")
    if not isinstance(samples, list) or not samples:
        raise DataError(f"{where}: the 'samples' list is empty; expected odometry samples with timestamp and odom")
    cols: dict[str, list[float]] = {k: [] for k in ("t", "x", "y", "theta", "vx", "vtheta")}
    joint_t: list[float] = []
    joint_names: list[str] = []
    joint_pos: list[list[float]] = []
    joint_vel: list[list[float]] = []
    for i, s in enumerate(samples):
        here = f"{where}: sample {i}"
        if not isinstance(s, Mapping) or "timestamp" not in s or not isinstance(s.get("odom"), Mapping):
            raise DataError(
                f"{here}: expected an object with 'timestamp' and 'odom' {{x, y, theta, vx, vtheta}}, found {s!r:.200}"
            )
        odom = s["odom"]
        cols["t"].append(_num(s["timestamp"], here, "timestamp"))
        for key in ("x", "y", "theta", "vx", "vtheta"):
            if key not in odom and key in ("x", "y", "theta"):
                raise DataError(f"{here}: odom lacks {key!r}; expected x, y, theta (vx, vtheta optional)")
            cols[key].append(_num(odom.get(key, math.nan), here, key))
        js = s.get("joint_states")
        if isinstance(js, Mapping) and js.get("position") is not None:
            names = [str(n) for n in js.get("name", [])]
            if not joint_names:
                joint_names = names
            if names == joint_names:
                joint_t.append(cols["t"][-1])
                joint_pos.append([_num(v, here, "joint position") for v in js["position"]])
                joint_vel.append([_num(v, here, "joint velocity") for v in js.get("velocity") or []])
    cmd_cols: dict[str, list[float]] = {"t": [], "vx": [], "vtheta": []}
    for i, c in enumerate(commands):
        here = f"{where}: cmd_vel {i}"
        if not isinstance(c, Mapping) or "timestamp" not in c:
            raise DataError(f"{here}: expected an object with timestamp, vx, vtheta, found {c!r:.200}")
        cmd_cols["t"].append(_num(c["timestamp"], here, "timestamp"))
        cmd_cols["vx"].append(_num(c.get("vx", 0.0), here, "vx"))
        cmd_cols["vtheta"].append(_num(c.get("vtheta", 0.0), here, "vtheta"))
    traj = Trajectory(
        source=name,
        t=as_array(cols["t"]),
        x=as_array(cols["x"]),
        y=as_array(cols["y"]),
        theta=as_array(np.unwrap(np.asarray(cols["theta"]))),
        vx=as_array(cols["vx"]),
        vtheta=as_array(cols["vtheta"]),
        cmd_t=as_array(cmd_cols["t"]),
        cmd_vx=as_array(cmd_cols["vx"]),
        cmd_vtheta=as_array(cmd_cols["vtheta"]),
        joint_t=as_array(joint_t),
        joint_names=joint_names,
        joint_position=matrix(joint_pos),
        joint_velocity=matrix(joint_vel) if joint_vel and all(joint_vel) else np.zeros((0, 0)),
        meta=meta,
    )
    fill_missing_velocities(traj)
    return traj


def fill_missing_velocities(traj: Trajectory) -> None:
    """Replace NaN velocities by finite differences of the pose (some sources publish no twist)."""
    if len(traj) < 2:
        return
    if np.isnan(traj.vx).any():
        dx, dy, dt = np.gradient(traj.x), np.gradient(traj.y), np.gradient(traj.t)
        speed = np.hypot(dx, dy) / np.where(dt > 0, dt, np.inf)
        heading = np.cos(np.arctan2(dy, dx) - traj.theta)
        traj.vx = np.where(np.isnan(traj.vx), speed * np.sign(heading), traj.vx)
    if np.isnan(traj.vtheta).any():
        dth, dt = np.gradient(np.unwrap(traj.theta)), np.gradient(traj.t)
        traj.vtheta = np.where(np.isnan(traj.vtheta), dth / np.where(dt > 0, dt, np.inf), traj.vtheta)
