"""Validation outputs: ``validation_report.png`` (matplotlib, Agg), a self-contained
``validation_report.html`` and ``metrics.json``."""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.twin.scoring import TwinResult

#: what each metric means, with its formula (docs/twin-metrics.md has the long form)
DEFINITIONS = {
    "position_error": "Windowed (re-anchored) position error: every T s the simulated robot is put on the recorded "
    "pose and velocity; e_k = |p_sim(t_k + T) - p_real(t_k + T)| at the end of window k. Pass: e_k < tolerance "
    "for at least min_fraction of the windows; the value is that quantile of e_k.",
    "velocity_tracking": "Mean relative velocity error over moving samples after removing the response delay d "
    "between the runs: mean |v_sim(t - d) - v_real(t)| / |v_real(t)| over |v_real| >= min_speed, and the same for "
    "the yaw rate over |w_real| >= min_yaw_rate; the value is the linear one, and both must be within tolerance.",
    "sensor_latency": "Command-to-response delay of each run, L = argmax_tau corr(cmd(t - tau), v(t)) (sub-sample); "
    "value = L_real - L_sim. The confidence combines the peak correlation and the spread over 4 segments.",
    "collision_detection": "Distance between where the real and the simulated robot stopped against an obstacle "
    "while commanded forward.",
}


def render_png(result: TwinResult, path: Path | None = None, dpi: int = 80) -> bytes:
    """Trajectories, windowed error over time, velocity and yaw-rate overlays after delay compensation; PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    a = result.aligned
    fig = Figure(figsize=(14, 8), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[1.0, 1.3])
    ax = fig.add_subplot(grid[:, 0])
    ax.plot(a.real["x"], a.real["y"], label=f"real: {a.real_source}", color="tab:blue", lw=1.4)
    ax.plot(a.sim["x"], a.sim["y"], label=f"sim (open loop): {a.sim_source}", color="tab:orange", lw=1.0, ls="--")
    if "anchored_x" in result.series:
        ax.plot(result.series["anchored_x"], result.series["anchored_y"], color="tab:green", lw=0.9,
                label="sim re-anchored per window")  # fmt: skip
    ax.plot(a.real["x"][:1], a.real["y"][:1], "ko", ms=5, label="start")
    for c in result.info.get("contacts", []):
        if c.get("x") is not None:
            ax.plot([c["x"]], [c["y"]], "rX", ms=10)
            ax.annotate(f"touched {c['entity']} at {c['t']:.1f} s", (c["x"], c["y"]), color="red", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title(f"Trajectories — verdict: {result.verdict.upper()}", color="green" if result.passed else "red")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)

    ax2 = fig.add_subplot(grid[0, 1])
    err = result.series.get("position_error")
    if err is not None:
        te = result.series.get("position_error_t", a.t[: err.size])
        ax2.plot(te, err * 100, "o-", color="tab:red", lw=1, ms=3, label="error at window end")
        try:
            rec = result.record("position_error")
            tol = (rec.tolerance or math.nan) * 100
            ax2.axhline(tol, color="k", ls="--", lw=1, label=f"tolerance {tol:g} cm")
            frac = rec.extra.get("pass_fraction", math.nan)
            ax2.set_title(
                f"Windowed position error ({rec.extra.get('window_s', 1):g} s windows, "
                f"{frac:.0%} within tolerance, need {rec.extra.get('min_fraction') or 0:.0%})"
            )
        except KeyError:
            ax2.set_title("Windowed position error")
        ax2.legend(loc="upper left", fontsize=8)
    ax2.set_ylabel("error [cm]")
    ax2.grid(alpha=0.3)

    delay = result.info.get("response_delay", {})
    for row, (key, cmd, label, unit) in enumerate(
        (("vx", "cmd_vx", "linear velocity", "m/s"), ("vtheta", "cmd_vtheta", "yaw rate", "rad/s")), start=1
    ):
        axv = fig.add_subplot(grid[row, 1], sharex=ax2)
        d = delay.get("linear_s" if key == "vx" else "angular_s", 0.0)
        axv.plot(a.t, a.real[key], color="tab:blue", lw=1, label=f"real {key}")
        axv.plot(a.t, result.series.get(f"sim_{key}_delayed", a.sim[key]), color="tab:orange", lw=1, ls="--",
                 label=f"sim {key}, delayed {d * 1000:.0f} ms")  # fmt: skip
        if cmd in a.real:
            axv.step(a.t, a.real[cmd], where="post", color="0.6", lw=0.7, label=f"commanded {key}")
        title = f"{label.capitalize()} after delay compensation"
        try:
            rec = result.record("velocity_tracking")
            e = rec.extra.get("linear_error" if key == "vx" else "angular_error", math.nan)
            title += f": mean relative error {e:.1%} (tolerance {rec.tolerance or 0:.0%})"
        except KeyError:
            pass
        axv.set_title(title)
        axv.set_ylabel(f"{key} [{unit}]")
        axv.legend(loc="upper right", fontsize=7)
        axv.grid(alpha=0.3)
    axv.set_xlabel("time [s]")

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
    return data


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        return "—" if not math.isfinite(v) else f"{v:.{digits}g}"
    return "—" if v is None else html.escape(str(v))


def parameters_table(parameters: dict[str, dict[str, Any]]) -> str:
    """Rows: parameter, nominal, fitted, 1-sigma, identified (from a calibration's ``parameters``)."""
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{_fmt(p.get('nominal'))}</td><td>{_fmt(p.get('fitted'))}</td>"
        f"<td>{_fmt(p.get('stderr'), 2)}</td><td class={'pass' if p.get('identified') else 'fail'}>"
        f"{'yes' if p.get('identified') else 'no'}</td><td>{html.escape(str(p.get('note') or ''))}</td></tr>"
        for n, p in parameters.items()
    )
    return (
        "<table><tr><th>parameter</th><th>before (nominal)</th><th>after (calibrated)</th><th>1-sigma</th>"
        f"<th>identified</th><th>note</th></tr>{rows}</table>"
    )


STYLE = (
    "body{font-family:sans-serif;margin:1.5em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}.pass{color:#080}"
    ".fail{color:#b00;font-weight:bold}img{max-width:100%}.def{font-size:90%;color:#444}"
)


def render_html(result: TwinResult, png: bytes | None, calibration: dict[str, Any] | None = None) -> str:
    """One self-contained page: verdict per metric with its definition, latency, RPE/ATE, plots, parameters."""
    a = result.aligned
    rows = []
    for r in result.records:
        cls = "pass" if r.passed else "fail"
        rows.append(
            f"<tr><td>{r.name}</td><td class={cls}>{'PASS' if r.passed else 'FAIL'}</td><td>{_fmt(r.value)} {r.unit}"
            f"</td><td>{_fmt(r.tolerance)}</td><td class=def>{html.escape(DEFINITIONS.get(r.name, r.description))}"
            "</td></tr>"
        )
    lat = result.info.get("latency", {})
    lat_rows = "".join(
        f"<tr><td>{k}</td><td>{_fmt(v.get('value_s', math.nan) * 1000)} ms</td>"
        f"<td>± {_fmt(v.get('stderr_s', math.nan) * 1000, 2)} ms</td><td>{_fmt(v.get('correlation'), 3)}</td>"
        f"<td>{v.get('confidence')}</td><td>{v.get('channel')}</td></tr>"
        for k, v in lat.items()
    )
    delay = result.info.get("response_delay", {})
    te = result.info.get("trajectory_errors", {})
    te_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in te.items())
    flags = "".join(f"<li class=fail>{html.escape(f)}</li>" for f in result.flags)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.notes)
    img = f'<img alt="validation report" src="data:image/png;base64,{base64.b64encode(png).decode()}">' if png else ""
    cal = f"<h2>Twin parameters</h2>{parameters_table(calibration)}" if calibration else ""
    verdict_cls = "pass" if result.passed else "fail"
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>twin validation: {result.verdict}</title>"
        f"<style>{STYLE}</style></head><body><h1>Twin validation: <span class={verdict_cls}>"
        f"{result.verdict.upper()}</span></h1><p>{html.escape(a.sim_source)} vs {html.escape(a.real_source)}; "
        f"{len(a)} samples at {a.rate:.1f} Hz, time offset {a.offset:+.3f} s ({a.offset_method})</p>"
        + (f"<ul>{flags}</ul>" if flags else "")
        + "<h2>Metrics</h2><table><tr><th>metric</th><th>verdict</th><th>value</th><th>tolerance</th>"
        f"<th>definition</th></tr>{''.join(rows)}</table>"
        f"<h2>Latency</h2><p>Response delay between the runs (removed before velocity tracking): linear "
        f"{_fmt(delay.get('linear_s', math.nan) * 1000)} ms, angular {_fmt(delay.get('angular_s', math.nan) * 1000)}"
        " ms.</p><table><tr><th>run</th><th>command-to-response</th><th>standard error</th><th>correlation</th>"
        f"<th>confidence</th><th>axis</th></tr>{lat_rows}</table>"
        f"<h2>Trajectory errors (evo)</h2><p class=def>ATE: RMSE of the positions after an SE(2) Umeyama alignment "
        "of the simulated onto the real trajectory. RPE: RMSE of the relative pose error over the interval "
        f"(translation, rotation), alignment-free.</p><table>{te_rows}</table>{cal}"
        f"<h2>Plots</h2>{img}" + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "") + "</body></html>\n"
    )


def calibration_html(result: Any, data: str = "") -> str:
    """A self-contained page for a calibration: parameters before/after with uncertainties, the held-out check."""
    params = {n: p.to_dict() for n, p in result.parameters.items()}
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(result.before[k])}</td><td>{_fmt(result.after.get(k, math.nan))}</td>"
        f"<td class={'fail' if k in result.worse else 'pass'}>{'worse' if k in result.worse else 'no worse'}</td></tr>"
        for k in result.before
    )
    verdict = "accepted" if result.accepted else "REFUSED"
    return (
        f"<!DOCTYPE html><html><head><meta charset=utf-8><title>twin calibration: {verdict}</title>"
        f"<style>{STYLE}</style></head><body><h1>Twin calibration: <span class={'pass' if result.accepted else 'fail'}>"
        f"{verdict}</span></h1><p>{html.escape(data)}: fitted on {result.extra.get('fit_fraction', 0):.0%} of the "
        f"recording, checked on {result.extra.get('held_out_segments')} held-out segments.</p>"
        f"<h2>Parameters</h2>{parameters_table(params)}<h2>Held-out check (mean metric value)</h2>"
        f"<table><tr><th>metric</th><th>nominal twin</th><th>calibrated twin</th><th></th></tr>{rows}</table>"
        "</body></html>\n"
    )


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
    result: TwinResult,
    out_dir: Path,
    *,
    png: bool = True,
    extra: dict[str, Any] | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``metrics.json`` (and ``validation_report.png`` + ``validation_report.html``) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json"}
    doc = metrics_document(result, {**(extra or {}), **({"twin_parameters": calibration} if calibration else {})})
    paths["metrics"].write_text(json.dumps(_clean(doc), indent=2) + "\n")
    if png:
        paths["png"] = out_dir / "validation_report.png"
        data = render_png(result, paths["png"])
        paths["html"] = out_dir / "validation_report.html"
        paths["html"].write_text(render_html(result, data, calibration))
    return paths
