"""Inline SVG plots for HTML reports: interactive trajectory and velocity plots, trajectory thumbnails.

Hand-written SVG rather than plotly: plotly's JavaScript alone is ~3.5 MB, over the whole report's
budget (~5 MB for 100 tests); an SVG polyline of 200 points is ~3 kB and renders without script.
The shapes are drawn in data coordinates inside a nested ``<svg>`` whose ``viewBox`` the script in
:mod:`.webassets` changes to zoom (wheel) and reads to show values under the mouse (hover).
Without script the plots stay static pictures.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_simtwin.results.faultmarks import FAULT_COLOUR, FaultSpan, position_at, spans
from pytest_simtwin.results.records import TestRecord, downsample

#: points per series in interactive plots and thumbnails (file size: see benchmarks/report_size.py)
PLOT_POINTS = 200
THUMB_POINTS = 48
_ODOM = "#1f77b4"
_GT = "#2ca02c"
_CMD = "#ff7f0e"
_BASE = "#999"
_PAD_TOP, _PAD_BOTTOM = 18, 16  # pixels above (title, hover text) and below (legend) the data area


def _r(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _finite(values: Sequence[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        out.append(f if math.isfinite(f) else 0.0)
    return out


def _polyline(xs: Sequence[float], ys: Sequence[float], colour: str, width: float, extra: str = "") -> str:
    pts = " ".join(f"{_r(x)},{_r(y)}" for x, y in zip(xs, ys, strict=False))
    return (
        f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}" '
        f'vector-effect="non-scaling-stroke" stroke-linejoin="round" {extra}/>'
    )


def _bounds(series: Sequence[tuple[Sequence[float], Sequence[float]]], margin: float = 0.08) -> tuple[float, ...]:
    xs = [x for s in series for x in s[0]]
    ys = [y for s in series for y in s[1]]
    if not xs:
        return (-1.0, -1.0, 1.0, 1.0)
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    span = max(x1 - x0, y1 - y0, 0.2)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = span * (0.5 + margin)
    return (cx - half, cy - half, cx + half, cy + half)


def _obstacle(ob: Mapping[str, Any]) -> str:
    try:
        x, y = float(ob.get("x", 0.0)), float(ob.get("y", 0.0))
        size = [float(s) for s in (ob.get("size") or [0.1])]
    except (TypeError, ValueError):
        return ""
    name = html.escape(str(ob.get("name", "")))
    if ob.get("shape") == "box" and len(size) >= 2:
        yaw = math.degrees(float(ob.get("yaw") or 0.0))
        w, h = size[0], size[1]
        return (
            f'<rect x="{_r(x - w / 2)}" y="{_r(y - h / 2)}" width="{_r(w)}" height="{_r(h)}" fill="#bbb" '
            f'stroke="#666" vector-effect="non-scaling-stroke" transform="rotate({_r(yaw, 2)} {_r(x)} {_r(y)})">'
            f"<title>{name}</title></rect>"
        )
    return (
        f'<circle cx="{_r(x)}" cy="{_r(y)}" r="{_r(size[0])}" fill="#bbb" stroke="#666" '
        f'vector-effect="non-scaling-stroke"><title>{name}</title></circle>'
    )


def _xy(traj: Mapping[str, Sequence[float]]) -> tuple[list[float], list[float]]:
    if traj.get("x") and traj.get("y"):
        return _finite(traj["x"]), _finite(traj["y"])
    return _finite(traj.get("gt_x", [])), _finite(traj.get("gt_y", []))


def trajectory_svg(
    rec: TestRecord, baseline: Mapping[str, Sequence[float]] | None = None, size: tuple[int, int] = (420, 330)
) -> str:
    """The x-y path (odometry, ground truth, baseline, obstacles); hover shows time, pose and command."""
    traj = downsample(rec.trajectory, PLOT_POINTS)
    xs, ys = _xy(traj)
    if not xs:
        return ""
    gx, gy = _finite(traj.get("gt_x", [])), _finite(traj.get("gt_y", []))
    bx, by = _xy(downsample({k: list(v) for k, v in baseline.items()}, PLOT_POINTS)) if baseline else ([], [])
    obstacle_pts = [([float(o.get("x", 0))], [float(o.get("y", 0))]) for o in rec.obstacles if "x" in o]
    x0, y0, x1, y1 = _bounds([(xs, ys), (gx, gy), (bx, by), *obstacle_pts])
    w, h = size
    span = x1 - x0
    shapes = [_obstacle(o) for o in rec.obstacles]
    if bx:
        shapes.append(_polyline(bx, by, _BASE, 5, 'opacity="0.55" class="st-base"'))
    if gx:
        shapes.append(_polyline(gx, gy, _GT, 1.2, 'stroke-dasharray="4 3"'))
    shapes.append(_polyline(xs, ys, _ODOM, 1.8))
    dot = span / 60
    t = _finite(traj.get("t", []))
    faults = spans(rec.faults, t[-1] if t else None)
    shapes += [_fault_on_path(f, t, xs, ys, dot) for f in faults]
    shapes.append(f'<circle cx="{_r(xs[0])}" cy="{_r(ys[0])}" r="{_r(dot)}" fill="{_GT}"/>')
    shapes.append(f'<circle cx="{_r(xs[-1])}" cy="{_r(ys[-1])}" r="{_r(dot)}" fill="#d62728"/>')
    shapes.append(f'<circle class="st-cursor" r="{_r(dot * 1.3)}" fill="none" stroke="#000" visibility="hidden"/>')
    data = {
        "kind": "traj",
        "t": [round(v, 3) for v in _finite(traj.get("t", []))],
        "x": [round(v, 3) for v in xs],
        "y": [round(v, 3) for v in ys],
        "yaw": [round(v, 3) for v in _finite(traj.get("yaw", []))],
        **_command(rec.trajectory),
    }
    legend = [("odometry", _ODOM)] + ([("ground truth", _GT)] if gx else []) + ([("baseline", _BASE)] if bx else [])
    legend += [("fault", FAULT_COLOUR)] if faults else []
    box = (x0, y0, span, y1 - y0)
    scale = min(w / span, (h - _PAD_TOP - _PAD_BOTTOM) / (y1 - y0))  # preserveAspectRatio "meet"
    ox, oy = (w - span * scale) / 2, _PAD_TOP + (h - _PAD_TOP - _PAD_BOTTOM - (y1 - y0) * scale) / 2
    labels = []
    for i, f in enumerate(faults):
        where = position_at(t, xs, ys, f.start)
        if where is not None:
            px, py = ox + (where[0] - x0) * scale, oy + (y1 - where[1]) * scale
            labels.append(_fault_label(f, px + 5, py - 4 - 11 * (i % 3)))
    return _frame(w, h, box, "".join(shapes), data, legend, "meet", rec.nodeid, "trajectory", "".join(labels))


def _fault_attrs(f: FaultSpan) -> str:
    return (
        f'class="st-fault" data-kind="{html.escape(f.kind)}" data-target="{html.escape(f.target)}" '
        f'data-start="{_r(f.start)}" data-end="{_r(f.end)}"'
    )


def _fault_on_path(
    f: FaultSpan, t: Sequence[float], xs: Sequence[float], ys: Sequence[float], dot: float, width: float = 6
) -> str:
    """The stretch of the path driven under the fault (wide, translucent) and a diamond where it began."""
    begin = position_at(t, xs, ys, f.start)
    inside = [(x, y) for ti, x, y in zip(t, xs, ys, strict=False) if f.start < ti < f.end]
    if f.end > f.start and begin is not None:  # from the exact start to the exact end, whatever the sampling
        end = position_at(t, xs, ys, f.end)
        inside = [begin, *inside, *([end] if end is not None else [])]
    parts = [f"<title>{html.escape(f.hover)}</title>"]
    if len(inside) > 1:
        parts.append(_polyline([p[0] for p in inside], [p[1] for p in inside], FAULT_COLOUR, width, 'opacity="0.35"'))
    if begin is not None:
        bx, by, d = begin[0], begin[1], dot * 1.6
        pts = f"{_r(bx)},{_r(by + d)} {_r(bx + d)},{_r(by)} {_r(bx)},{_r(by - d)} {_r(bx - d)},{_r(by)}"
        parts.append(f'<polygon points="{pts}" fill="{FAULT_COLOUR}" stroke="#fff" vector-effect="non-scaling-stroke"/>')
    return f"<g {_fault_attrs(f)}>{''.join(parts)}</g>"


def _fault_label(f: FaultSpan, px: float, py: float) -> str:
    """The fault's name in screen space (outside the zoomed area, so it stays readable), hover: details."""
    return (
        f'<text class="st-fault-label" x="{_r(max(px, 2.0), 1)}" y="{_r(max(py, _PAD_TOP + 9), 1)}" fill="{FAULT_COLOUR}" '
        f'font-size="9" data-kind="{html.escape(f.kind)}">{html.escape(f.label)}<title>{html.escape(f.hover)}</title></text>'
    )


def _command(traj: Mapping[str, Sequence[float]]) -> dict[str, list[float]]:
    return {
        "ct": [round(v, 3) for v in _finite(traj.get("cmd_t", []))],
        "cv": [round(v, 4) for v in _finite(traj.get("cmd_vx", []))],
        "cw": [round(v, 4) for v in _finite(traj.get("cmd_wz", []))],
    }


def _frame(
    w: int,
    h: int,
    box: tuple[float, float, float, float],
    shapes: str,
    data: Mapping[str, Any],
    legend: Sequence[tuple[str, str]],
    aspect: str,
    nodeid: str,
    title: str,
    overlay: str = "",
) -> str:
    """Outer SVG (legend, hover text, extents) around the zoomable data-space SVG."""
    x0, y0, bw, bh = box
    # y points up in data space: the inner viewBox spans -y1..-y0 and the group flips it
    vb = f"{_r(x0)} {_r(-(y0 + bh))} {_r(bw)} {_r(bh)}"
    pad_top, pad_bottom = _PAD_TOP, _PAD_BOTTOM
    ih = h - pad_top - pad_bottom
    keys = "".join(
        f'<rect x="{6 + i * 92}" y="{h - 11}" width="10" height="3" fill="{c}"/>'
        f'<text x="{20 + i * 92}" y="{h - 6}">{html.escape(n)}</text>'
        for i, (n, c) in enumerate(legend)
    )
    payload = html.escape(json.dumps(data, separators=(",", ":")), quote=True)
    return (
        f'<svg class="st-plot" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" data-st="{payload}" data-vb="{vb}" font-size="10" font-family="sans-serif">'
        f"<title>{html.escape(title)} of {html.escape(nodeid)} (hover: values; wheel: zoom; double-click: reset)</title>"
        f'<rect x="0" y="{pad_top}" width="{w}" height="{ih}" fill="#fafafa" stroke="#ddd"/>'
        f'<svg class="st-area" x="0" y="{pad_top}" width="{w}" height="{ih}" viewBox="{vb}" '
        f'preserveAspectRatio="{"xMidYMid meet" if aspect == "meet" else "none"}">'
        f'<g transform="scale(1,-1)" class="st-data">{shapes}</g></svg>'
        f'{overlay}<text class="st-hover" x="4" y="12">{html.escape(title)}</text>{keys}</svg>'
    )


def _step_series(ct: Sequence[float], cv: Sequence[float], t_end: float) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for i, (t, v) in enumerate(zip(ct, cv, strict=False)):
        if i:
            xs.append(t)
            ys.append(ys[-1])
        xs.append(t)
        ys.append(v)
    if xs and t_end > xs[-1]:
        xs.append(t_end)
        ys.append(ys[-1])
    return xs, ys


def velocity_svg(rec: TestRecord, size: tuple[int, int] = (420, 150)) -> str:
    """Commanded (step) vs measured velocity over sim time, one plot per component ("vx", "wz")."""
    traj = downsample(rec.trajectory, PLOT_POINTS)
    t = _finite(traj.get("t", []))
    cmd = _command(rec.trajectory)
    out = []
    faults = spans(rec.faults, t[-1] if t else None)
    for key, ckey, label, unit in (("vx", "cv", "linear", "m/s"), ("wz", "cw", "angular", "rad/s")):
        meas = _finite(traj.get(key, []))[: len(t)]
        cx, cy = _step_series(cmd["ct"], cmd[ckey], t[-1] if t else 0.0)
        if not (meas or cy):
            continue
        times = t[: len(meas)] + cx
        vals = meas + cy
        t0, t1 = min(times), max(times)
        v0, v1 = min(vals), max(vals)
        pad = max((v1 - v0) * 0.1, 0.02)
        box = (t0, v0 - pad, max(t1 - t0, 1e-3), (v1 - v0) + 2 * pad)
        shapes = "".join(_fault_band(f, box) for f in faults)
        labels = "".join(
            _fault_label(f, (f.start - box[0]) / box[2] * size[0] + 3, _PAD_TOP + 10 + 11 * (i % 3))
            for i, f in enumerate(faults)
        )
        if cy:
            shapes += _polyline(cx, cy, _CMD, 1.4)
        if meas:
            shapes += _polyline(t[: len(meas)], meas, _ODOM, 1.2)
        shapes += '<line class="st-cursor" stroke="#000" vector-effect="non-scaling-stroke" visibility="hidden"/>'
        data = {"kind": "vel", "unit": unit, "t": [round(v, 3) for v in t[: len(meas)]],
                "v": [round(v, 3) for v in meas], "ct": cmd["ct"], "c": cmd[ckey]}  # fmt: skip
        legend = [("measured", _ODOM), ("commanded", _CMD)] + ([("fault", FAULT_COLOUR)] if faults else [])
        title = f"{label} velocity [{unit}] {_r(v0, 3)}…{_r(v1, 3)}, t {_r(t0, 2)}…{_r(t1, 2)} s"
        out.append(_frame(size[0], size[1], box, shapes, data, legend, "none", rec.nodeid, title, labels))
    return "".join(out)


def _fault_band(f: FaultSpan, box: tuple[float, float, float, float]) -> str:
    """A translucent vertical band over the fault's time (a line for an instant), hover: details."""
    _t0, v0, bw, bh = box
    width = max(f.end - f.start, bw / 400)
    return (
        f'<g {_fault_attrs(f)}><title>{html.escape(f.hover)}</title>'
        f'<rect x="{_r(f.start, 4)}" y="{_r(v0, 4)}" width="{_r(width, 4)}" height="{_r(bh, 4)}" '
        f'fill="{FAULT_COLOUR}" fill-opacity="0.18" stroke="{FAULT_COLOUR}" stroke-opacity="0.6" '
        f'vector-effect="non-scaling-stroke"/></g>'
    )


def thumbnail_svg(rec: TestRecord, size: tuple[int, int] = (120, 90)) -> str:
    """A small static picture of the path (no hover data): the gallery's link to the test.

    Faults are drawn as on the trajectory plot (:func:`_fault_on_path`: the stretch driven under the
    fault, a diamond where it began, the details on hover) with their kind written in the corner.
    """
    traj = downsample(rec.trajectory, THUMB_POINTS)
    xs, ys = _xy(traj)
    w, h = size
    if not xs:
        return f'<svg width="{w}" height="{h}"><text x="8" y="{h // 2}" font-size="10" fill="#888">no trajectory</text></svg>'
    x0, y0, x1, y1 = _bounds([(xs, ys)], margin=0.1)
    span = x1 - x0
    t = _finite(traj.get("t", []))
    faults = spans(rec.faults, t[-1] if t else None)
    # data space -> pixels ("meet", y up): one group, so the fault shapes are the report's, unchanged
    s = min(w / span, h / (y1 - y0))
    ox, oy = (w - span * s) / 2, (h - (y1 - y0) * s) / 2
    shapes = [_polyline(xs, ys, _ODOM, 2)]
    shapes += [_fault_on_path(f, t, xs, ys, span / 30, width=4) for f in faults]
    shapes.append(f'<circle cx="{_r(xs[-1], 3)}" cy="{_r(ys[-1], 3)}" r="{_r(span / 25, 3)}" fill="#d62728"/>')
    shown = faults[:2]  # room for two lines in 90 px; the rest are counted
    labels = [
        f'<text class="st-fault-label" x="3" y="{h - 4 - 10 * i}" font-size="9" fill="{FAULT_COLOUR}" '
        f'data-kind="{html.escape(f.kind)}">{html.escape(f.kind)}<title>{html.escape(f.hover)}</title></text>'
        for i, f in enumerate(reversed(shown))
    ]
    if len(faults) > len(shown):
        labels.append(f'<text x="{w - 3}" y="{h - 4}" font-size="9" fill="{FAULT_COLOUR}" text-anchor="end">'
                      f"+{len(faults) - len(shown)}</text>")  # fmt: skip
    title = f"<title>{html.escape('; '.join(f.hover for f in faults))}</title>" if faults else ""
    return (
        f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">{title}'
        f'<g transform="translate({_r(ox, 2)} {_r(h - oy, 2)}) scale({_r(s, 4)} {_r(-s, 4)}) '
        f'translate({_r(-x0, 4)} {_r(-y0, 4)})">{"".join(shapes)}</g>{"".join(labels)}</svg>'
    )


def plots_html(rec: TestRecord, baseline: Mapping[str, Sequence[float]] | None = None) -> str:
    """Trajectory on the left, the two velocity plots stacked on its right ("" without data)."""
    traj = trajectory_svg(rec, baseline, (400, 300))
    vel = velocity_svg(rec, (400, 150))
    if not (traj or vel):
        return ""
    return (
        '<div class="st-plots" style="display:flex;flex-wrap:wrap;gap:4px;align-items:flex-start">'
        f'<div>{traj}</div><div style="display:flex;flex-direction:column">{vel}</div></div>'
    )
