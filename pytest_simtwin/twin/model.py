"""A kinematic differential-drive model with the DiffDrive system's limits, for calibration fits.

The robot's controller converts a command (v, w) to wheel speeds with its *configured* wheel
radius r0 and separation s0; the body then moves with the *physical* r and s:
``v_body = v * r / r0`` and ``w_body = w * (r / r0) * (s0 / s)``. Before that, the command is
delayed by the command latency and rate-limited by the acceleration limits (as gz DiffDrive
does). Commands are piecewise constant, so the limited velocity is piecewise linear and is built
from breakpoints (one Python step per command, numpy for the rest): a 60 s run costs ~1 ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from pytest_simtwin.twin.data import Array, Trajectory

INF = math.inf


@dataclass(frozen=True)
class DiffDriveParams:
    wheel_radius: float = 0.033
    wheel_separation: float = 0.160
    max_linear_velocity: float = INF
    max_angular_velocity: float = INF
    max_linear_acceleration: float = INF
    max_angular_acceleration: float = INF
    command_latency: float = 0.0

    def with_(self, **changes: Any) -> DiffDriveParams:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isinf(v) else float(v)) for k, v in asdict(self).items()}


def _limited(cmd_t: Array, cmd: Array, t_end: float, vmax: float, accel: float) -> tuple[Array, Array]:
    """Breakpoints (t, value) of the rate-limited, clamped response to a zero-order-hold command."""
    ts = [float(cmd_t[0])]
    vs = [0.0]
    u = 0.0
    ends = np.append(cmd_t[1:], max(t_end, float(cmd_t[-1])))
    for start, end, raw in zip(cmd_t, ends, cmd, strict=False):
        goal = min(max(float(raw), -vmax), vmax)
        span = float(end - start)
        if span <= 0:
            continue
        if math.isinf(accel):
            ts += [float(start), float(end)]
            vs += [goal, goal]
            u = goal
            continue
        need = abs(goal - u) / accel
        if need <= span:
            ts += [float(start) + need, float(end)]
            vs += [goal, goal]
            u = goal
        else:
            u = u + math.copysign(accel * span, goal - u)
            ts.append(float(end))
            vs.append(u)
    return np.asarray(ts), np.asarray(vs)


def simulate(
    cmd_t: Array,
    cmd_vx: Array,
    cmd_wz: Array,
    t_out: Array,
    params: DiffDriveParams,
    nominal: DiffDriveParams | None = None,
    *,
    start_pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    dt: float = 0.002,
) -> dict[str, Array]:
    """Pose and velocity of the model at ``t_out`` for the command sequence (times in seconds)."""
    nom = nominal or params
    t0 = float(min(t_out[0], cmd_t[0])) if cmd_t.size else float(t_out[0])
    t1 = float(t_out[-1])
    grid = t0 + np.arange(math.ceil((t1 - t0) / dt) + 2) * dt
    if cmd_t.size:
        shifted = cmd_t + params.command_latency
        bt, bv = _limited(shifted, cmd_vx, t1 + dt, params.max_linear_velocity, params.max_linear_acceleration)
        wt, wv = _limited(shifted, cmd_wz, t1 + dt, params.max_angular_velocity, params.max_angular_acceleration)
        v = np.interp(grid, bt, bv, left=0.0)
        w = np.interp(grid, wt, wv, left=0.0)
    else:
        v = w = np.zeros_like(grid)
    scale = params.wheel_radius / nom.wheel_radius
    v = v * scale
    w = w * scale * nom.wheel_separation / params.wheel_separation
    x0, y0, th0 = start_pose
    theta = th0 + np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * dt)])
    mid = 0.5 * (theta[1:] + theta[:-1])
    vm = 0.5 * (v[1:] + v[:-1])
    x = x0 + np.concatenate([[0.0], np.cumsum(vm * np.cos(mid) * dt)])
    y = y0 + np.concatenate([[0.0], np.cumsum(vm * np.sin(mid) * dt)])
    return {
        k: np.interp(t_out, grid, arr) for k, arr in (("x", x), ("y", y), ("theta", theta), ("vx", v), ("vtheta", w))
    }


def predict(
    real: Trajectory, params: DiffDriveParams, nominal: DiffDriveParams | None = None, source: str = "model"
) -> Trajectory:
    """The model's run for ``real``'s commands, sampled at ``real``'s odometry times, from its first pose."""
    out = simulate(
        real.cmd_t,
        real.cmd_vx,
        real.cmd_vtheta,
        real.t,
        params,
        nominal,
        start_pose=(float(real.x[0]), float(real.y[0]), float(real.theta[0])),
    )
    return Trajectory(
        source=source,
        t=real.t.copy(),
        cmd_t=real.cmd_t.copy(),
        cmd_vx=real.cmd_vx.copy(),
        cmd_vtheta=real.cmd_vtheta.copy(),
        x=out["x"],
        y=out["y"],
        theta=out["theta"],
        vx=out["vx"],
        vtheta=out["vtheta"],
        meta={"model": params.to_dict()},
    )
