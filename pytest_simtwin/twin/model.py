"""The twin model: a kinematic differential drive with the command path of a real robot.

The command path, in the order the simulator applies it (sim/engine/twin_model.py):

1. command delay ``command_latency`` (transport + controller),
2. the DiffDrive SpeedLimiter: velocity and acceleration limits,
3. the wheel speeds clamped at ``max_wheel_speed`` (a motor's top speed, per wheel, with the
   configured separation),
4. a first-order lag per axis (``time_constant_linear`` / ``time_constant_angular``: the motor
   and wheel-servo response),
5. gains: ``v_body = v * linear_gain * r / r0`` and ``w_body = w * angular_gain * (r / r0) * (s0 / s)``,
   where r0, s0 are the radius and separation the controller is *configured* with and r, s the
   *effective* physical ones.

From /cmd_vel and odometry alone, a gain and the effective radius are the same number (calibration
fits the radius and separation and keeps the gains at 1; see twin/calibrate.py). Commands are
piecewise constant, so the limited velocity is piecewise linear and is built from breakpoints; the
lag is an exact first-order recursion on a uniform grid (scipy.signal.lfilter): a 60 s run costs ~2 ms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from pytest_simtwin.twin.data import Array, Trajectory

INF = math.inf

#: The twin parameters beyond the DiffDrive plugin's own (what the simulator adds, sim/engine/twin_model.py).
TWIN_FIELDS = (
    "command_latency",
    "time_constant_linear",
    "time_constant_angular",
    "linear_gain",
    "angular_gain",
    "max_wheel_speed",
)


@dataclass(frozen=True)
class DiffDriveParams:
    wheel_radius: float = 0.033
    wheel_separation: float = 0.160
    max_linear_velocity: float = INF
    max_angular_velocity: float = INF
    max_linear_acceleration: float = INF
    max_angular_acceleration: float = INF
    command_latency: float = 0.0
    time_constant_linear: float = 0.0
    time_constant_angular: float = 0.0
    linear_gain: float = 1.0
    angular_gain: float = 1.0
    max_wheel_speed: float = INF  # m/s at the rim, per wheel (a motor's top speed; inf: none)

    def with_(self, **changes: Any) -> DiffDriveParams:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if math.isinf(v) else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DiffDriveParams:
        known = {f.name for f in fields(cls)}
        return cls(**{k: (INF if v is None else float(v)) for k, v in values.items() if k in known})


def _limited(cmd_t: Array, cmd: Array, t_end: float, vmax: float, accel: float) -> tuple[Array, Array]:
    """Breakpoints (t, value) of the rate-limited, clamped response to a zero-order-hold command."""
    if cmd_t.size > 1:  # a teleop repeats its command at 10 Hz: only the changes make breakpoints
        keep = np.concatenate([[True], np.diff(cmd) != 0])
        cmd_t, cmd = cmd_t[keep], cmd[keep]
    times = cmd_t.tolist()  # plain floats: this loop runs for every evaluation of a fit
    goals = np.clip(cmd, -vmax, vmax).tolist()
    ts = [times[0]]
    vs = [0.0]
    u = 0.0
    ends = [*times[1:], max(t_end, times[-1])]
    inf_accel = math.isinf(accel)
    for start, end, goal in zip(times, ends, goals, strict=True):
        span = end - start
        if span <= 0:
            continue
        if inf_accel:
            ts += [start, end]
            vs += [goal, goal]
            u = goal
            continue
        need = abs(goal - u) / accel
        if need <= span:
            ts += [start + need, end]
            vs += [goal, goal]
            u = goal
        else:
            u = u + math.copysign(accel * span, goal - u)
            ts.append(end)
            vs.append(u)
    return np.asarray(ts), np.asarray(vs)


def first_order_lag(u: Array, dt: float, tau: float, y0: float = 0.0) -> Array:
    """y' = (u - y) / tau on a uniform grid (exact recursion, input held at the interval means; tau 0: y = u)."""
    if tau <= 0 or u.size == 0:
        return u.copy()
    from scipy.signal import lfilter  # lazily: scipy is only needed by fits and replays

    a = math.exp(-dt / tau)
    # trapezoid-held input: y[k] = a y[k-1] + (1 - a) (u[k] + u[k-1]) / 2
    u_mid = np.concatenate([[u[0]], 0.5 * (u[1:] + u[:-1])])
    y, _ = lfilter([1.0 - a], [1.0, -a], u_mid, zi=[a * y0])
    return np.asarray(y, dtype=float)


def wheel_saturation(v: Array, w: Array, separation: float, limit: float) -> tuple[Array, Array]:
    """Each wheel's speed clamped at ``limit`` (as a firmware clamps the motor goals, e.g. TurtleBot3's
    ``constrain`` in turtlebot3_motor_driver.cpp; a motor at its top speed does the same): turning at
    full speed slows the robot and bends its path less."""
    half = 0.5 * separation * w
    left, right = np.clip(v - half, -limit, limit), np.clip(v + half, -limit, limit)
    return 0.5 * (left + right), (right - left) / separation


def scales(params: DiffDriveParams, nominal: DiffDriveParams) -> tuple[float, float]:
    """(linear, angular) factors from commanded to body velocity."""
    k = params.wheel_radius / nominal.wheel_radius
    return (
        k * params.linear_gain,
        k * params.angular_gain * nominal.wheel_separation / params.wheel_separation,
    )


def velocities(
    cmd_t: Array, cmd_vx: Array, cmd_wz: Array, grid: Array, params: DiffDriveParams, nominal: DiffDriveParams
) -> tuple[Array, Array]:
    """Body velocities (v, w) of the model on a uniform ``grid`` for the command sequence."""
    if not cmd_t.size:
        return np.zeros_like(grid), np.zeros_like(grid)
    dt = float(grid[1] - grid[0]) if grid.size > 1 else 0.002
    t1 = float(grid[-1])
    shifted = cmd_t + params.command_latency
    bt, bv = _limited(shifted, cmd_vx, t1 + dt, params.max_linear_velocity, params.max_linear_acceleration)
    wt, wv = _limited(shifted, cmd_wz, t1 + dt, params.max_angular_velocity, params.max_angular_acceleration)
    v, w = np.interp(grid, bt, bv, left=0.0), np.interp(grid, wt, wv, left=0.0)
    if math.isfinite(params.max_wheel_speed):
        v, w = wheel_saturation(v, w, nominal.wheel_separation, params.max_wheel_speed)
    v = first_order_lag(v, dt, params.time_constant_linear)
    w = first_order_lag(w, dt, params.time_constant_angular)
    kv, kw = scales(params, nominal)
    return v * kv, w * kw


def integrate(grid: Array, v: Array, w: Array, start: tuple[float, float, float]) -> tuple[Array, Array, Array]:
    """Planar pose from body velocities (midpoint rule)."""
    dt = np.diff(grid)
    x0, y0, th0 = start
    theta = th0 + np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * dt)])
    mid = 0.5 * (theta[1:] + theta[:-1])
    vm = 0.5 * (v[1:] + v[:-1])
    x = x0 + np.concatenate([[0.0], np.cumsum(vm * np.cos(mid) * dt)])
    y = y0 + np.concatenate([[0.0], np.cumsum(vm * np.sin(mid) * dt)])
    return x, y, theta


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
    poses: bool = True,
) -> dict[str, Array]:
    """Pose and velocity of the model at ``t_out`` for the command sequence (times in seconds).

    ``poses`` False: velocities only (what a fit compares; skips the integration)."""
    nom = nominal or params
    t0 = float(min(t_out[0], cmd_t[0])) if cmd_t.size else float(t_out[0])
    t1 = float(t_out[-1])
    grid: Array = t0 + np.arange(math.ceil((t1 - t0) / dt) + 2, dtype=float) * dt
    v, w = velocities(cmd_t, cmd_vx, cmd_wz, grid, params, nom)
    if not poses:
        return {"vx": np.interp(t_out, grid, v), "vtheta": np.interp(t_out, grid, w)}
    x, y, theta = integrate(grid, v, w, start_pose)
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
