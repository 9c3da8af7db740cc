"""Validation outputs: ``validation_report.png`` (matplotlib, Agg) and ``metrics.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.twin.scoring import TwinResult


def render_png(result: TwinResult, path: Path | None = None, dpi: int = 80) -> bytes:
    """Trajectories, position error over time with its tolerance, velocity tracking; PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    a = result.aligned
    fig = Figure(figsize=(12, 7.5), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(2, 2)
    ax = fig.add_subplot(grid[:, 0])
    ax.plot(a.real["x"], a.real["y"], label=f"real: {a.real_source}", color="tab:blue", lw=1.4)
    ax.plot(a.sim["x"], a.sim["y"], label=f"sim: {a.sim_source}", color="tab:orange", lw=1.2, ls="--")
    ax.plot(a.real["x"][:1], a.real["y"][:1], "ko", ms=5, label="start")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(f"Trajectories — verdict: {result.verdict.upper()}", color="green" if result.passed else "red")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)

    ax2 = fig.add_subplot(grid[0, 1])
    err = result.series.get("position_error")
    if err is not None:
        ax2.plot(a.t, err * 100, color="tab:red", lw=1, label="position error")
        try:
            rec = result.record("position_error")
            tol = (rec.tolerance or math.nan) * 100
            ax2.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g} cm")
            frac = rec.extra.get("pass_fraction", math.nan)
            ax2.set_title(f"Position error (within tolerance {frac:.1%} of steps)")
        except KeyError:
            ax2.set_title("Position error")
        ax2.legend(loc="upper left", fontsize=8)
    ax2.set_xlabel("time [s]")
    ax2.set_ylabel("error [cm]")
    ax2.grid(alpha=0.3)

    ax3 = fig.add_subplot(grid[1, 1])
    ax3.plot(a.t, a.real["vx"], color="tab:blue", lw=1, label="real vx")
    ax3.plot(a.t, a.sim["vx"], color="tab:orange", lw=1, ls="--", label="sim vx")
    if "cmd_vx" in a.real:
        ax3.step(a.t, a.real["cmd_vx"], where="post", color="0.5", lw=0.8, label="commanded vx")
    title = "Velocity tracking"
    try:
        rec = result.record("velocity_tracking")
        title += f": mean relative error {rec.value:.1%} (tolerance {rec.tolerance or 0:.0%})"
    except KeyError:
        pass
    ax3.set_title(title)
    ax3.set_xlabel("time [s]")
    ax3.set_ylabel("vx [m/s]")
    ax3.legend(loc="upper right", fontsize=8)
    ax3.grid(alpha=0.3)

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (and numpy scalars as Python numbers)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def metrics_document(result: TwinResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = result.to_json_dict()
    if extra:
        doc.update(extra)
    return dict(_clean(doc))


def write_outputs(
    result: TwinResult, out_dir: Path, *, png: bool = True, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write ``metrics.json`` (and ``validation_report.png``) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json"}
    paths["metrics"].write_text(json.dumps(metrics_document(result, extra), indent=2) + "\n")
    if png:
        paths["png"] = out_dir / "validation_report.png"
        render_png(result, paths["png"])
    return paths
