"""Put a real and a simulated run on common timestamps, by time and never by index.

1. Time offset: the first non-zero command of each run (both carry commands), or the
   cross-correlation of the speed profiles (sub-sample), or none.
2. Resampling: both runs are interpolated onto one uniform grid over their overlap; angles are
   unwrapped first so a ±π wrap does not interpolate through zero.
3. Optional initial-pose alignment: the whole simulated trajectory is moved by the SE(2)
   transform that puts its first pose onto the real first pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pytest_simtwin.errors import DataError
from pytest_simtwin.twin.data import Array, Trajectory

OFFSET_METHODS = ("auto", "first_command", "xcorr", "none")


@dataclass
class Aligned:
    """Both runs sampled on ``t`` (seconds from the start of the overlap)."""

    t: Array
    real: dict[str, Array]  # x, y, theta, vx, vtheta (and cmd_vx, cmd_vtheta when known)
    sim: dict[str, Array]
    offset: float  # seconds added to the simulated timestamps
    offset_method: str
    real_source: str = "real"
    sim_source: str = "sim"
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def rate(self) -> float:
        return 1.0 / float(self.t[1] - self.t[0]) if self.t.size > 1 else 0.0


def resample(traj: Trajectory, t: Array) -> dict[str, Array]:
    """Odometry of ``traj`` linearly interpolated at times ``t`` (theta unwrapped)."""
    out = {k: np.interp(t, traj.t, getattr(traj, k)) for k in ("x", "y", "vx", "vtheta")}
    out["theta"] = np.interp(t, traj.t, np.unwrap(traj.theta))
    if traj.has_commands:
        # Commands are held until the next one (zero-order hold), not interpolated.
        idx = np.searchsorted(traj.cmd_t, t, side="right") - 1
        valid = idx >= 0
        safe = np.clip(idx, 0, None)
        out["cmd_vx"] = np.where(valid, traj.cmd_vx[safe], 0.0)
        out["cmd_vtheta"] = np.where(valid, traj.cmd_vtheta[safe], 0.0)
    return out


def uniform_grid(start: float, end: float, rate: float) -> Array:
    n = math.floor((end - start) * rate + 1e-9) + 1
    return start + np.arange(n) / rate


def speed_offset_xcorr(real: Trajectory, sim: Trajectory, rate: float = 100.0, max_lag: float | None = None) -> float:
    """Seconds to add to ``sim`` times so its speed profile best matches ``real`` (sub-sample peak).

    Each run is sampled on its own grid from its own start, so any clock epoch works; the lag
    search covers every shift that leaves a quarter of the shorter run overlapping.
    """
    a = np.abs(np.interp(uniform_grid(real.t[0], real.t[-1], rate), real.t, real.vx))
    b = np.abs(np.interp(uniform_grid(sim.t[0], sim.t[-1], rate), sim.t, sim.vx))
    limit = max(a.size, b.size) / rate if max_lag is None else max_lag
    return float(real.t[0] - sim.t[0]) + lag_xcorr(a, b, rate, limit)


def lag_xcorr(reference: Array, delayed: Array, rate: float, max_lag: float, min_overlap: float = 0.25) -> float:
    """Delay (s) of ``reference`` relative to ``delayed``: positive when ``reference`` happens later.

    The correlation at each lag is divided by the number of overlapping samples (else short lags
    win just by overlapping more); a parabola through the peak gives sub-sample resolution.
    """
    a = reference - reference.mean()
    b = delayed - delayed.mean()
    if not np.any(a) or not np.any(b):
        return 0.0
    na, nb = a.size, b.size
    nfft = 1 << (na + nb - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, nfft) * np.conj(np.fft.rfft(b, nfft)), nfft)
    lags = np.arange(-(nb - 1), na)  # a[n] ~ b[n - k]
    values = corr[lags % nfft]
    overlap = np.minimum(na, nb + lags) - np.maximum(0, lags)
    keep = (np.abs(lags) <= max_lag * rate) & (overlap >= max(min_overlap * min(na, nb), 2))
    if not keep.any():
        return 0.0
    score = np.where(keep, values / np.maximum(overlap, 1), -np.inf)
    k = float(lags[int(np.argmax(score))])
    # Sub-sample: minimise the mean squared difference of a and b shifted by k + f (b linearly
    # interpolated) over f in [-1, 1]; a parabola through the correlation peak is biased for ramps.
    n = np.arange(na, dtype=float)
    idx = np.arange(nb, dtype=float)

    def mismatch(f: float) -> float:
        pos = n - (k + f)
        ok = (pos >= 0) & (pos <= nb - 1)
        return float(np.mean((a[ok] - np.interp(pos[ok], idx, b)) ** 2)) if ok.sum() >= 2 else math.inf

    best_f = min(np.linspace(-1.0, 1.0, 21), key=mismatch)  # coarse, then fine around the best
    best_f = min(np.linspace(best_f - 0.1, best_f + 0.1, 21), key=mismatch)
    k += float(best_f)
    return k / rate


def time_offset(real: Trajectory, sim: Trajectory, method: str = "auto") -> tuple[float, str]:
    """Seconds to add to the simulated timestamps, and the method actually used."""
    if method not in OFFSET_METHODS:
        raise DataError(f"time offset method must be one of {', '.join(OFFSET_METHODS)}, found {method!r}")
    if method == "none":
        return 0.0, "none"
    if method in ("auto", "first_command"):
        a, b = real.first_command_time(), sim.first_command_time()
        if a is not None and b is not None:
            return a - b, "first_command"
        if method == "first_command":
            which = "real" if a is None else "simulated"
            raise DataError(
                f"time offset by first command: the {which} run has no non-zero /cmd_vel; record the commands "
                "or use offset method 'xcorr'"
            )
    return speed_offset_xcorr(real, sim), "xcorr"


def _rest_window(a: dict[str, Array], limit: int) -> int:
    """Number of leading samples during which the robot stands still (at least 1, at most ``limit``)."""
    moving = (np.abs(a["vx"]) > 0.02) | (np.abs(a["vtheta"]) > 0.05)
    first = int(np.argmax(moving)) if moving.any() else a["vx"].size
    return max(1, min(first, limit))


def se2_align(sim: dict[str, Array], real: dict[str, Array], rest_samples: int = 1) -> dict[str, Array]:
    """Move the whole simulated trajectory so its initial pose equals the real initial pose.

    The initial pose is the mean over the first ``rest_samples`` (the robot at rest before it
    moves): one noisy sample would tilt the whole trajectory by its heading noise.
    """
    n = max(rest_samples, 1)

    def start(a: dict[str, Array]) -> tuple[float, float, float]:
        th = a["theta"][:n]
        return (
            float(np.mean(a["x"][:n])),
            float(np.mean(a["y"][:n])),
            math.atan2(np.mean(np.sin(th)), np.mean(np.cos(th))),
        )

    rx, ry, rth = start(real)
    sx, sy, sth = start(sim)
    dth = rth - sth
    c, s = math.cos(dth), math.sin(dth)
    x0, y0 = sim["x"] - sx, sim["y"] - sy
    out = dict(sim)
    out["x"] = rx + c * x0 - s * y0
    out["y"] = ry + s * x0 + c * y0
    out["theta"] = sim["theta"] + dth
    return out


def align(
    real: Trajectory,
    sim: Trajectory,
    *,
    offset: str | float = "auto",
    rate: float | None = None,
    align_pose: bool = True,
) -> Aligned:
    """Time-align and resample ``sim`` onto ``real``; see the module docstring."""
    real.require_odometry()
    sim.require_odometry()
    if isinstance(offset, (int, float)):
        dt, method = float(offset), "given"
    else:
        dt, method = time_offset(real, sim, offset)
    shifted = sim.shifted(dt)
    start, end = max(real.t[0], shifted.t[0]), min(real.t[-1], shifted.t[-1])
    if end - start <= 0:
        raise DataError(
            f"the runs do not overlap in time after alignment ({method}, offset {dt:+.3f} s): real covers "
            f"[{real.t[0]:.3f}, {real.t[-1]:.3f}] s, simulated [{shifted.t[0]:.3f}, {shifted.t[-1]:.3f}] s. "
            "Check that both recordings use the same clock, or choose another offset method."
        )
    hz = rate or min(real.rate, shifted.rate) or 30.0
    t = uniform_grid(start, end, hz)
    if t.size < 2:
        raise DataError(f"the overlap of the runs is {end - start:.3f} s: too short to compare at {hz:.1f} Hz")
    r = resample(real, t)
    s = resample(shifted, t)
    if align_pose:
        s = se2_align(s, r, min(_rest_window(r, int(hz)), _rest_window(s, int(hz))))
    return Aligned(
        t=t - t[0],
        real=r,
        sim=s,
        offset=dt,
        offset_method=method,
        real_source=real.source,
        sim_source=sim.source,
        info={"start": float(start), "overlap": float(end - start), "rate": float(hz), "align_pose": align_pose},
    )
