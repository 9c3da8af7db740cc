"""Headless matplotlib figures for reports: trajectory (x-y) and commanded vs measured velocity.

matplotlib is imported lazily and only through ``Figure`` + the Agg canvas (no pyplot): no
display is needed, nothing global is touched, and it is safe in any thread.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_simtwin.results.faultmarks import FAULT_COLOUR, position_at, spans
from pytest_simtwin.results.records import TestRecord

DPI = 90


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    # fixed margins: constrained/tight layout costs more than drawing the plot itself
    fig.subplots_adjust(left=0.14, right=0.97, top=0.92, bottom=0.12, hspace=0.3)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _draw_obstacle(ax: Any, ob: Mapping[str, Any]) -> None:
    from matplotlib.patches import Circle, Polygon

    x, y, yaw = float(ob.get("x", 0.0)), float(ob.get("y", 0.0)), float(ob.get("yaw", 0.0))
    size = [float(s) for s in ob.get("size", [0.1])]
    style = {"facecolor": "0.75", "edgecolor": "0.35", "zorder": 1}
    if ob.get("shape") == "box":
        hx, hy = size[0] / 2, (size[1] if len(size) > 1 else size[0]) / 2
        c, s = math.cos(yaw), math.sin(yaw)
        corners = [
            (x + c * dx - s * dy, y + s * dx + c * dy) for dx, dy in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))
        ]
        ax.add_patch(Polygon(corners, closed=True, **style))
    else:  # cylinder / sphere: size[0] is the radius
        ax.add_patch(Circle((x, y), size[0], **style))
    if ob.get("name"):
        ax.annotate(str(ob["name"]), (x, y), fontsize=7, ha="center", va="center", color="0.2", zorder=2)


def trajectory_png(
    rec: TestRecord, baseline: Mapping[str, Sequence[float]] | None = None, title: str | None = None
) -> bytes | None:
    """x-y path (odometry solid, ground truth dashed, baseline grey below), obstacles, start and end."""
    traj = rec.trajectory
    xs, ys = list(traj.get("x", [])), list(traj.get("y", []))
    gx, gy = list(traj.get("gt_x", [])), list(traj.get("gt_y", []))
    if not (xs or gx) and not rec.obstacles:
        return None
    fig = _figure(5.0, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for ob in rec.obstacles:
        _draw_obstacle(ax, ob)
    if baseline and baseline.get("x") and baseline.get("y"):
        ax.plot(baseline["x"], baseline["y"], color="0.6", lw=4, alpha=0.6, label="baseline", zorder=2)
    if gx and gy:
        ax.plot(gx, gy, "--", color="tab:green", lw=1.2, label="ground truth", zorder=3)
    if xs and ys:
        ax.plot(xs, ys, color="tab:blue", lw=1.6, label="odometry", zorder=4)
    px, py = (xs, ys) if xs else (gx, gy)
    if px:
        ax.plot(px[0], py[0], "o", color="tab:green", ms=8, label="start", zorder=5)
        ax.plot(px[-1], py[-1], "X", color="tab:red", ms=9, label="end", zorder=5)
    t = list(traj.get("t", []))
    for i, f in enumerate(spans(rec.faults, t[-1] if t else None)):
        inside = [(x, y) for ti, x, y in zip(t, px, py, strict=False) if f.start <= ti <= f.end]
        if len(inside) > 1:
            ax.plot(*zip(*inside, strict=True), color=FAULT_COLOUR, lw=6, alpha=0.35, zorder=3,
                    label="under fault" if i == 0 else None)  # fmt: skip
        where = position_at(t, px, py, f.start)
        if where is not None:
            ax.plot(*where, "D", color=FAULT_COLOUR, ms=7, zorder=6)
            ax.annotate(f.label, where, xytext=(6, 6 + 9 * (i % 3)), textcoords="offset points", fontsize=7,
                        color=FAULT_COLOUR, zorder=6)  # fmt: skip
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.7)
    ax.set_title(title or "trajectory", fontsize=9)
    return _png(fig)


def velocity_png(rec: TestRecord) -> bytes | None:
    """Commanded (step) vs measured linear and angular velocity over time."""
    traj = rec.trajectory
    t, vx, wz = traj.get("t", []), traj.get("vx", []), traj.get("wz", [])
    ct, cvx, cwz = traj.get("cmd_t", []), traj.get("cmd_vx", []), traj.get("cmd_wz", [])
    if not (t and (vx or wz)) and not ct:
        return None
    fig = _figure(5.6, 4.2)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    faults = spans(rec.faults, t[-1] if t else None)
    for ax in (ax1, ax2):
        for i, f in enumerate(faults):
            if f.end > f.start:
                ax.axvspan(f.start, f.end, color=FAULT_COLOUR, alpha=0.15, label="fault" if i == 0 else None)
            else:
                ax.axvline(f.start, color=FAULT_COLOUR, lw=1, label="fault" if i == 0 else None)
            if ax is ax1:
                ax.annotate(f.label, (f.start, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -9 - 9 * (i % 3)),
                            textcoords="offset points", fontsize=7, color=FAULT_COLOUR)  # fmt: skip
    for ax, meas, cmd, label, unit in ((ax1, vx, cvx, "linear", "m/s"), (ax2, wz, cwz, "angular", "rad/s")):
        if ct and cmd:
            cx, cy = list(ct[: len(cmd)]), list(cmd[: len(ct)])
            if t and t[-1] > cx[-1]:  # the last command holds until the end of the recording
                cx, cy = [*cx, t[-1]], [*cy, cy[-1]]
            ax.step(cx, cy, where="post", color="tab:orange", lw=1.4, label="commanded")
        if t and meas:
            n = min(len(t), len(meas))
            ax.plot(t[:n], meas[:n], color="tab:blue", lw=1.2, label="measured")
        lo, hi = ax.get_ylim()
        if hi - lo < 1e-3:  # a constant series: show it on a readable scale, not as 1e-17 noise
            mid = round((hi + lo) / 2, 3)
            ax.set_ylim(mid - 0.05, mid + 0.05)
        ax.set_ylabel(f"{label} [{unit}]", fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", framealpha=0.7)
    ax2.set_xlabel("sim time [s]")
    ax1.set_title("commanded vs measured velocity", fontsize=9)
    return _png(fig)


def figures(rec: TestRecord, baseline_trajectory: Mapping[str, Sequence[float]] | None = None) -> dict[str, bytes]:
    """All figures of a record by file stem ("trajectory", "velocity"); empty without data or matplotlib."""
    if not available():
        return {}
    out: dict[str, bytes] = {}
    traj = trajectory_png(rec, baseline_trajectory)
    if traj:
        out["trajectory"] = traj
    vel = velocity_png(rec)
    if vel:
        out["velocity"] = vel
    return out
