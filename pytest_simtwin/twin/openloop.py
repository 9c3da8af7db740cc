"""Error measures that mean something for an open-loop replay (formulas in docs/twin-metrics.md).

An open-loop replay accumulates every small heading difference into a position error that grows
without bound, so the absolute position error of a long replay says nothing about the twin. These
measures do not accumulate:

* windowed (re-anchored) position error: every ``window`` seconds the simulated robot is put back
  on the recorded pose and velocity; the error at the end of each window is scored;
* RPE / ATE (``evo``): relative pose error over a fixed interval and absolute trajectory error after
  an SE(2) Umeyama alignment, as the odometry community computes them;
* the response delay between the two runs' velocities, estimated first so a pure delay shows up
  as latency, not as a velocity error;
* the command-to-response latency of a run from cross-correlation, with a confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_simtwin.twin.align import lag_xcorr, uniform_grid
from pytest_simtwin.twin.data import Array, Trajectory


def smooth(values: Array, rate: float, span: float) -> Array:
    """Savitzky-Golay (quadratic) smoothing over ``span`` seconds: anchors and targets lose sensor noise, not curvature."""
    n = round(span * rate) | 1
    if span <= 0 or n < 5 or values.size < n:
        return values
    from scipy.signal import savgol_filter  # lazily: scipy is only needed when scoring

    return np.asarray(savgol_filter(values, n, 2, mode="interp"), dtype=float)


def window_starts(
    t: Array, window: float, distance: Array | None = None, window_distance: float | None = None
) -> list[int]:
    """Start indices of consecutive windows (by time, or by travelled distance when given)."""
    starts = [0]
    if window_distance is not None and distance is not None:
        for i in range(1, t.size):
            if distance[i] - distance[starts[-1]] >= window_distance:
                starts.append(i)
    else:
        step = max(round(window / float(t[1] - t[0])), 1) if t.size > 1 else 1
        starts = list(range(0, t.size, step))
    return starts


@dataclass
class WindowedError:
    t_end: Array  # seconds (the aligned grid's clock) at the end of each window
    error: Array  # m, position error at each window's end
    heading_error: Array  # rad
    windows: list[tuple[int, int]] = field(default_factory=list)
    sim_x: Array = field(default_factory=lambda: np.zeros(0))  # the re-anchored simulated path (NaN between windows)
    sim_y: Array = field(default_factory=lambda: np.zeros(0))


def windowed_position_error(
    t: Array,
    real: dict[str, Array],
    sim: dict[str, Array],
    window: float = 1.0,
    *,
    window_distance: float | None = None,
    smoothing: float = 0.2,
    relax: float = 0.0,
) -> WindowedError:
    """Re-anchored position error (see the module docstring).

    Re-anchoring: at each window start the simulated robot takes the recorded pose (smoothed over
    ``smoothing`` s) and then makes the motion the simulated run made in that window (its SE(2)
    pose increments). In an empty world a differential drive's body-frame response to its commands
    does not depend on where it is, so this equals restarting the simulator on the recorded pose;
    the simulated velocity is put on the recorded one at the start and relaxes back to the
    simulated response with the simulated robot's response time constant ``relax`` (the twin's
    lag; 0: at once, which adds nothing).
    """
    rate = 1.0 / float(t[1] - t[0])
    rx, ry = smooth(real["x"], rate, smoothing), smooth(real["y"], rate, smoothing)
    rth = smooth(real["theta"], rate, smoothing)
    dist = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(rx), np.diff(ry)))])
    starts = window_starts(t, window, dist, window_distance)
    ends, errs, herrs, spans = [], [], [], []
    path_x, path_y = np.full(t.size, np.nan), np.full(t.size, np.nan)
    real_v = smooth(real["vx"], rate, smoothing)
    real_w = smooth(real["vtheta"], rate, smoothing)
    for k, i0 in enumerate(starts):
        i1 = starts[k + 1] if k + 1 < len(starts) else t.size - 1
        if i1 - i0 < 2:
            continue
        tt = t[i0 : i1 + 1] - t[i0]
        # the simulated motion of the window in the frame of its start pose (its own pose increments)
        sx, sy, sth = sim["x"][i0 : i1 + 1], sim["y"][i0 : i1 + 1], sim["theta"][i0 : i1 + 1]
        c0, s0 = math.cos(sth[0]), math.sin(sth[0])
        bx = c0 * (sx - sx[0]) + s0 * (sy - sy[0])
        by = -s0 * (sx - sx[0]) + c0 * (sy - sy[0])
        bth = sth - sth[0]
        if relax > 0:  # velocity re-anchoring: the start-velocity mismatch decays with the twin's lag
            decay = np.exp(-tt / relax)
            dv, dw = (real_v[i0] - sim["vx"][i0]) * decay, (real_w[i0] - sim["vtheta"][i0]) * decay
            dt = np.diff(tt)
            bth = bth + np.concatenate([[0.0], np.cumsum(0.5 * (dw[1:] + dw[:-1]) * dt)])
            mid = 0.5 * (bth[1:] + bth[:-1])
            dvm = 0.5 * (dv[1:] + dv[:-1])
            bx = bx + np.concatenate([[0.0], np.cumsum(dvm * np.cos(mid) * dt)])
            by = by + np.concatenate([[0.0], np.cumsum(dvm * np.sin(mid) * dt)])
        ca, sa = math.cos(rth[i0]), math.sin(rth[i0])
        x = rx[i0] + ca * bx - sa * by
        y = ry[i0] + sa * bx + ca * by
        th = rth[i0] + bth
        path_x[i0 : i1 + 1], path_y[i0 : i1 + 1] = x, y
        ends.append(float(t[i1]))
        errs.append(float(math.hypot(x[-1] - rx[i1], y[-1] - ry[i1])))
        herrs.append(float(abs(math.remainder(th[-1] - rth[i1], math.tau))))
        spans.append((i0, i1))
    return WindowedError(np.asarray(ends), np.asarray(errs), np.asarray(herrs), spans, path_x, path_y)


def trajectory_errors(
    t: Array, real: dict[str, Array], sim: dict[str, Array], rpe_interval: float = 1.0
) -> dict[str, Any]:
    """ATE (after SE(2) Umeyama alignment) and RPE over ``rpe_interval`` s, computed by ``evo``."""
    from evo.core import metrics  # lazily: evo pulls pandas and matplotlib
    from evo.core.trajectory import PoseTrajectory3D

    def traj(d: dict[str, Array]) -> Any:
        th = d["theta"]
        xyz = np.column_stack([d["x"], d["y"], np.zeros_like(th)])
        quat = np.column_stack([np.cos(th / 2), np.zeros_like(th), np.zeros_like(th), np.sin(th / 2)])  # w x y z
        return PoseTrajectory3D(xyz, quat, t)

    ref, est = traj(real), traj(sim)
    est.align(ref, correct_scale=False)  # Umeyama; planar input keeps the rotation about z (SE(2))
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))
    delta = max(round(rpe_interval / float(t[1] - t[0])), 1)
    out: dict[str, Any] = {
        "ate_rmse_m": float(ape.get_statistic(metrics.StatisticsType.rmse)),
        "ate_max_m": float(ape.get_statistic(metrics.StatisticsType.max)),
        "rpe_interval_s": rpe_interval,
    }
    if t.size > delta + 1:
        ref, est = traj(real), traj(sim)  # RPE is alignment-free
        for key, relation in (
            ("rpe_trans_rmse_m", metrics.PoseRelation.translation_part),
            ("rpe_rot_rmse_deg", metrics.PoseRelation.rotation_angle_deg),
        ):
            rpe = metrics.RPE(relation, delta=delta, delta_unit=metrics.Unit.frames, all_pairs=False)
            rpe.process_data((ref, est))
            out[key] = float(rpe.get_statistic(metrics.StatisticsType.rmse))
    return out


def response_delay(real: Array, sim: Array, rate: float, max_lag: float = 0.5) -> float:
    """Seconds by which ``real`` responds later than ``sim`` (cross-correlation of the velocity profiles)."""
    if real.size < 10 or np.ptp(real) < 1e-6 or np.ptp(sim) < 1e-6:
        return 0.0
    return lag_xcorr(real, sim, rate, max_lag)


def delayed(values: Array, t: Array, delay: float) -> Array:
    """``values`` as they would be ``delay`` seconds later (value at t - delay), held at the ends."""
    return np.interp(t - delay, t, values)


@dataclass(frozen=True)
class Latency:
    """Command-to-response delay of one run."""

    value: float  # s
    stderr: float  # s, spread of the estimates over segments of the run / sqrt(segments)
    correlation: float  # peak normalised correlation of command and response, 0..1
    channel: str  # which axis carried it: linear, angular

    @property
    def confidence(self) -> str:
        if self.correlation >= 0.9 and self.stderr <= 0.01:
            return "high"
        if self.correlation >= 0.7 and self.stderr <= 0.03:
            return "medium"
        return "low"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value_s": self.value,
            "stderr_s": self.stderr,
            "correlation": self.correlation,
            "channel": self.channel,
            "confidence": self.confidence,
        }


def _corr_at(a: Array, b: Array, lag: float, rate: float) -> float:
    """Normalised correlation of ``a`` with ``b`` delayed by ``lag`` seconds."""
    n = np.arange(a.size, dtype=float)
    shifted = np.interp(n - lag * rate, n, b)
    a0, b0 = a - a.mean(), shifted - shifted.mean()
    denom = float(np.linalg.norm(a0) * np.linalg.norm(b0))
    return float(a0 @ b0 / denom) if denom > 0 else 0.0


def command_latency(traj: Trajectory, rate: float = 200.0, max_lag: float = 1.0, segments: int = 4) -> Latency | None:
    """Delay from the commands to the measured velocity (cross-correlation), with its confidence.

    The axis with the larger command variance carries the estimate. Acceleration limits and a
    response lag add their own apparent delay; validation compares real against simulated latency,
    so a twin that models them matches.
    """
    if not traj.has_commands or traj.first_command_time() is None or len(traj) < 3:
        return None
    t = uniform_grid(max(traj.t[0], traj.cmd_t[0]), traj.t[-1], rate)
    if t.size < 20:
        return None
    idx = np.clip(np.searchsorted(traj.cmd_t, t, side="right") - 1, 0, None)
    channels = {
        "linear": (traj.cmd_vx[idx], np.interp(t, traj.t, traj.vx)),
        "angular": (traj.cmd_vtheta[idx] * 0.2, np.interp(t, traj.t, traj.vtheta) * 0.2),  # 0.2 m lever arm
    }
    name = max(channels, key=lambda k: float(np.var(channels[k][0])))
    cmd, measured = channels[name]
    if np.ptp(cmd) < 1e-6:
        return None
    value = lag_xcorr(measured, cmd, rate, max_lag)
    parts = []
    n = t.size // segments
    for k in range(segments):
        c, m = cmd[k * n : (k + 1) * n], measured[k * n : (k + 1) * n]
        if np.ptp(c) > 1e-6 and np.ptp(m) > 1e-6:
            parts.append(lag_xcorr(m, c, rate, max_lag))
    stderr = float(np.std(parts, ddof=1) / math.sqrt(len(parts))) if len(parts) >= 2 else math.inf
    return Latency(value, stderr, _corr_at(measured, cmd, value, rate), name)
