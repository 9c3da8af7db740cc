"""Synthetic "real robot" data made from a simulator recording, for tests and examples.

There is no real-world data in this project; this generator perturbs a simulated run the way a
real robot differs from its model: wheel radius / separation errors (the body moves r/r0 faster
than commanded), command latency, a first-order response lag, a yaw-rate bias, wheel slip episodes, gaussian sensor noise, a
different odometry rate and another clock epoch. Perturbations of the motion are applied as the
*difference* between the integrated perturbed and unperturbed velocities, added to the recorded
pose, so a run with no perturbation stays the recorded run exactly (plus noise).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from pytest_simtwin.errors import DataError
from pytest_simtwin.twin.align import uniform_grid
from pytest_simtwin.twin.data import Array, Trajectory
from pytest_simtwin.twin.model import first_order_lag


@dataclass(frozen=True)
class SynthParams:
    position_noise: float = 0.005  # m, RMS of the 2-D position error (per axis sigma / sqrt 2)
    heading_noise: float = 0.002  # rad, sigma
    velocity_noise: float = 0.003  # m/s, sigma on vx
    angular_velocity_noise: float = 0.01  # rad/s, sigma on vtheta
    wheel_radius_scale: float = 1.0  # physical / configured radius (1.03 = 3 % larger wheels)
    wheel_separation_scale: float = 1.0  # physical / configured separation
    latency: float = 0.0  # s, extra command-to-motion delay of the real robot
    time_constant: float = 0.0  # s, extra first-order lag of the real robot's response (linear)
    time_constant_angular: float | None = None  # s, the same for the yaw rate (None: as linear)
    yaw_rate_bias: float = 0.0  # rad/s added to the true rotation
    slip_fraction: float = 0.0  # fraction of the run spent in slip episodes
    slip_amount: float = 0.3  # speed lost during a slip episode (0.3 = 30 %)
    rate: float | None = None  # odometry rate of the result (Hz); None keeps the recording's times
    time_offset: float = 0.0  # s added to every timestamp (another clock epoch)
    seed: int = 0

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def scenario_commands(
    duration: float = 60.0, rate: float = 10.0, seed: int = 0, max_speed: float = 0.4
) -> tuple[Array, Array, Array]:
    """A varied drive: straights, arcs, turns in place and stops, commanded at ``rate`` Hz."""
    rng = np.random.default_rng(seed)
    t_list: list[float] = []
    v_list: list[float] = []
    w_list: list[float] = []
    t = 1.0  # a real recording starts with the robot at rest
    t_list.append(0.0)
    v_list.append(0.0)
    w_list.append(0.0)
    kinds = ("straight", "arc", "turn", "stop", "reverse")
    while t < duration:
        kind = kinds[int(rng.choice(len(kinds), p=[0.35, 0.3, 0.15, 0.1, 0.1]))]
        span = float(rng.uniform(1.5, 4.0))
        v = {
            "straight": rng.uniform(0.2, max_speed),
            "arc": rng.uniform(0.15, max_speed),
            "turn": 0.0,
            "stop": 0.0,
            "reverse": -rng.uniform(0.1, 0.2),
        }[kind]
        w = {
            "straight": 0.0,
            "arc": rng.uniform(-0.8, 0.8),
            "turn": rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2),
            "stop": 0.0,
            "reverse": 0.0,
        }[kind]
        for _k in range(int(span * rate)):
            if t >= duration:
                break
            t_list.append(t)
            v_list.append(float(v))
            w_list.append(float(w))
            t = round(t + 1.0 / rate, 9)
    # leave the robot commanded to stop at the end, as a real recording would
    t_list.append(duration)
    v_list.append(0.0)
    w_list.append(0.0)
    return np.asarray(t_list), np.asarray(v_list), np.asarray(w_list)


def scenario_trajectory(duration: float = 60.0, seed: int = 0, rate: float = 10.0) -> Trajectory:
    """The scenario's commands as a run to replay (two odometry samples at rest bracket it)."""
    ct, cv, cw = scenario_commands(duration, rate, seed)
    zero = np.zeros(2)
    return Trajectory(
        source=f"scenario {duration:g} s (seed {seed})",
        t=np.array([0.0, duration]),
        x=zero,
        y=zero,
        theta=zero,
        vx=zero,
        vtheta=zero,
        cmd_t=ct,
        cmd_vx=cv,
        cmd_vtheta=cw,
    )


def _cumtrapz(values: Array, t: Array) -> Array:
    return np.concatenate([[0.0], np.cumsum(0.5 * (values[1:] + values[:-1]) * np.diff(t))])


def synthesize(sim: Trajectory, params: SynthParams | None = None, source: str = "synthetic real robot") -> Trajectory:
    """A "real robot" run from a simulated one (see the module docstring)."""
    p = params or SynthParams()
    sim.require_odometry(3)
    rng = np.random.default_rng(p.seed)
    # Work on a fine grid so the integration of the perturbations is accurate.
    dt = min(0.005, 0.5 / max(sim.rate, 1.0))
    grid = uniform_grid(float(sim.t[0]), float(sim.t[-1]), 1.0 / dt)
    v0 = np.interp(grid, sim.t, sim.vx)
    w0 = np.interp(grid, sim.t, sim.vtheta)
    th0 = np.interp(grid, sim.t, np.unwrap(sim.theta))
    # Latency: the real robot does what the simulated one did ``latency`` seconds earlier.
    v = np.interp(grid - p.latency, sim.t, sim.vx, left=0.0)
    w = np.interp(grid - p.latency, sim.t, sim.vtheta, left=0.0)
    # Lag: the real robot responds through an extra first-order lag (motor, wheel servo).
    tau_w = p.time_constant if p.time_constant_angular is None else p.time_constant_angular
    v = first_order_lag(v, dt, p.time_constant)
    w = first_order_lag(w, dt, tau_w)
    if p.slip_fraction > 0:
        slip = np.zeros_like(grid)
        n_ep = max(round(p.slip_fraction * (grid[-1] - grid[0]) / 0.5), 1)
        for start in rng.uniform(grid[0], grid[-1] - 0.5, n_ep):
            slip[(grid >= start) & (grid < start + 0.5)] = p.slip_amount
        v = v * (1.0 - slip)
        w = w * (1.0 - slip)
    v = v * p.wheel_radius_scale
    w = w * p.wheel_radius_scale / p.wheel_separation_scale + p.yaw_rate_bias
    theta_pert = _cumtrapz(w, grid)
    theta_orig = _cumtrapz(w0, grid)
    theta = th0 + (theta_pert - theta_orig)
    dx = _cumtrapz(v * np.cos(theta), grid) - _cumtrapz(v0 * np.cos(th0), grid)
    dy = _cumtrapz(v * np.sin(theta), grid) - _cumtrapz(v0 * np.sin(th0), grid)
    x = np.interp(grid, sim.t, sim.x) + dx
    y = np.interp(grid, sim.t, sim.y) + dy
    out_t = sim.t if p.rate is None else uniform_grid(float(sim.t[0]), float(sim.t[-1]), p.rate)
    if out_t.size < 3:
        raise DataError(f"synthesize: rate {p.rate} Hz leaves fewer than 3 samples of {sim.duration:.2f} s")
    n = out_t.size
    sigma_xy = p.position_noise / math.sqrt(2.0)
    res = {
        "x": np.interp(out_t, grid, x) + rng.normal(0.0, sigma_xy, n),
        "y": np.interp(out_t, grid, y) + rng.normal(0.0, sigma_xy, n),
        "theta": np.interp(out_t, grid, theta) + rng.normal(0.0, p.heading_noise, n),
        "vx": np.interp(out_t, grid, v) + rng.normal(0.0, p.velocity_noise, n),
        "vtheta": np.interp(out_t, grid, w) + rng.normal(0.0, p.angular_velocity_noise, n),
    }
    # The wheels turn as commanded (the controller uses the configured radius); the delay applies.
    jt = sim.joint_t

    def delayed(cols: Array, left: float | None = None) -> Array:
        if not cols.size or not jt.size:
            return np.zeros((0, 0))
        return np.column_stack([np.interp(jt - p.latency, jt, c, left=left) for c in cols.T])

    return Trajectory(
        source=source,
        t=out_t + p.time_offset,
        x=res["x"],
        y=res["y"],
        theta=res["theta"],
        vx=res["vx"],
        vtheta=res["vtheta"],
        cmd_t=sim.cmd_t + p.time_offset,
        cmd_vx=sim.cmd_vx.copy(),
        cmd_vtheta=sim.cmd_vtheta.copy(),
        joint_t=jt + p.time_offset,
        joint_names=list(sim.joint_names),
        joint_position=delayed(sim.joint_position),
        joint_velocity=delayed(sim.joint_velocity, 0.0),
        meta={"synthetic": True, "from": sim.source, "synth": p.to_dict()},
    )
