"""HTML for simulation results: a per-test block (plots + metrics + baseline tables) and a
standalone, self-contained report built from a metrics file.

The same block goes into pytest-html (as an ``extras.html`` entry, images inline as base64 PNG)
and into ``simtwin report``. The pytest hooks that produce it are in :mod:`pytest_simtwin.plugin.reporting`.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_simtwin.results import cameras, dashboard, faultmarks, plots, svgplot
from pytest_simtwin.results.dashboard import anchor
from pytest_simtwin.results.records import TestRecord

VERDICT_COLOURS = {
    "regression": "#c62828",
    "improvement": "#2e7d32",
    "unchanged": "#555",
    "new": "#1565c0",
    "missing": "#8d6e63",
    "error": "#c62828",
}
OUTCOME_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#c62828",
    "skipped": "#777",
    "xfailed": "#777",
    "xpassed": "#e65100",
}

_TABLE = 'style="border-collapse:collapse;margin:6px 0;font-size:12px"'
_CELL = 'style="border:1px solid #ccc;padding:2px 8px;text-align:{align}"'


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    if math.isnan(v):
        return "nan"
    return f"{v:.{digits}g}"


def _table(cls: str, header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    th = "".join(f"<th {_CELL.format(align='left')}>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td {_CELL.format(align='right' if i else 'left')}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table class="{cls}" {_TABLE}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _coloured(text: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(text, "#333")
    return f'<span style="color:{colour};font-weight:bold">{html.escape(text)}</span>'


def metrics_table(rec: TestRecord) -> str:
    rows = []
    for m in rec.metrics:
        verdict = "-" if m.passed is None else ("pass" if m.passed else "FAIL")
        colour = {"pass": "passed", "FAIL": "failed"}.get(verdict, "")
        rows.append(
            [
                html.escape(m.name),
                _num(m.value),
                "-" if m.tolerance is None else f"{'≥' if m.direction == 'higher' else '≤'} {_num(m.tolerance)}",
                html.escape(m.unit),
                _coloured(verdict, {"pass": OUTCOME_COLOURS["passed"], "FAIL": OUTCOME_COLOURS["failed"]})
                if colour
                else "-",
            ]
        )
    return _table("simtwin-metrics", ["metric", "value", "tolerance", "unit", "pass"], rows)


def baseline_table(rec: TestRecord) -> str:
    rows = []
    for v in rec.baseline:
        if v.get("verdict") == "error":
            return f'<p class="simtwin-baseline-error" style="color:#c62828">{html.escape(str(v.get("error")))}</p>'
        b, c = v.get("baseline"), v.get("current")
        rel = ""
        if b not in (None, 0) and c is not None:
            rel = f" ({(float(c) - float(b)) / abs(float(b)) * 100:+.1f} %)"
        rows.append(
            [
                html.escape(str(v.get("name"))),
                _num(b),
                _num(c),
                ("-" if v.get("delta") is None else _num(v.get("delta"))) + rel,
                html.escape(str(v.get("unit") or "")),
                _coloured(str(v.get("verdict")), VERDICT_COLOURS),
            ]
        )
    return _table("simtwin-baseline", ["metric", "baseline", "current", "delta", "unit", "verdict"], rows)


def faults_list(rec: TestRecord) -> str:
    """The test's faults, one line each (hover text of the plots' markers; node faults by wall time)."""
    t = rec.trajectory.get("t") or []
    drawn = faultmarks.spans(rec.faults, t[-1] if t else None)
    lines = [f.hover for f in drawn]
    lines += [f"fault {f.get('kind')} on {f.get('target')}" for f in rec.faults if f.get("at") is None]
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    logs = "".join(_node_log(f) for f in rec.faults if "log_before" in f)
    return (
        f'<div class="simtwin-faults" style="color:#6a3d9a"><b>faults</b><ul style="margin:0">{items}</ul>{logs}</div>'
    )


def _node_log(fault: Mapping[str, Any]) -> str:
    """A node fault's log around it: the lines before, a marker line, the lines after."""
    when = f" at t={fault['at']:.2f} s" if isinstance(fault.get("at"), (int, float)) else ""
    label = f"{fault.get('kind')} of node {fault.get('target')}{when}"
    before, after = str(fault.get("log_before") or ""), str(fault.get("log_after") or "")
    return (
        f'<details class="simtwin-node-log" open><summary>log of node {html.escape(str(fault.get("target")))} '
        f"around its {html.escape(str(fault.get('kind')))}{html.escape(when)}</summary>"
        '<pre style="color:#333;background:#f7f7f7;padding:4px;max-height:20em;overflow:auto;white-space:pre-wrap">'
        f"{html.escape(before)}\n"
        f'<b style="color:#6a3d9a">----- {html.escape(label)} -----</b>\n'
        f"{html.escape(after)}</pre></details>"
    )


def test_block(
    rec: TestRecord,
    images: Mapping[str, bytes] | None = None,
    heading: bool = False,
    png: bool | None = None,
) -> str:
    """The HTML block of one test: interactive plots (PNG too when ``png``), metrics, baseline, provenance, artifacts.

    ``png`` defaults to "when the test failed": the PNGs are the static fallback and what the
    failure bundle holds; a passing test's SVG plots render without script and weigh ~10x less.
    """
    if png is None:
        png = rec.outcome in ("failed", "error")
    if images is None:
        images = plots.figures(rec, rec.baseline_trajectory or None) if png else {}
    parts = [
        f'<div class="simtwin" id="{html.escape(anchor(rec.nodeid))}" '
        'style="font-family:sans-serif;font-size:12px;margin:4px 0 12px 0">'
    ]
    if heading:
        parts.append(
            f'<h3 style="font-size:14px;margin:14px 0 4px 0">'
            f"{html.escape(rec.nodeid)} {_coloured(rec.outcome, OUTCOME_COLOURS)}"
            + (f" <small>(infrastructure: {html.escape(rec.infra)})</small>" if rec.infra else "")
            + "</h3>"
        )
        if rec.message:
            parts.append(f'<pre style="color:#c62828;white-space:pre-wrap">{html.escape(rec.message)}</pre>')
    parts.append(svgplot.plots_html(rec, rec.baseline_trajectory or None))
    parts.append(cameras.cameras_html(rec))
    images = {**(images if png else {}), **_png_artifacts(rec)}
    if images:
        parts.append('<div class="simtwin-figures">')
        for name, data in images.items():
            parts.append(
                f'<img class="simtwin-plot" alt="{html.escape(name)}" title="{html.escape(name)}" '
                f'style="max-width:48%;margin:2px;border:1px solid #eee" src="data:image/png;base64,{plots.b64(data)}"/>'
            )
        parts.append("</div>")
    if rec.faults:
        parts.append(faults_list(rec))
    if rec.metrics:
        parts.append(metrics_table(rec))
    if rec.baseline:
        parts.append(f"<div>baseline: {_coloured(rec.baseline_verdict, VERDICT_COLOURS)}</div>")
        parts.append(baseline_table(rec))
    elif rec.baseline_verdict == "new":
        parts.append(f"<div>baseline: {_coloured('new', VERDICT_COLOURS)} (no baseline file yet)</div>")
    info = [f"{k}: {v}" for k, v in sorted(rec.provenance.items()) if v not in (None, "") and not k.endswith("sha256")]
    if rec.sim_duration:
        info.append(f"sim time: {rec.sim_duration:.2f} s")
    if rec.recorded:
        info.append("recorded: " + ", ".join(f"{t} ({n})" for t, n in sorted(rec.recorded.items())))
    if info:
        parts.append(f'<div class="simtwin-info" style="color:#555">{html.escape(" | ".join(info))}</div>')
    for key, value in sorted(rec.artifacts.items()):
        parts.append(
            f'<div class="simtwin-artifact"><b>{html.escape(key)}</b>: <code>{html.escape(value)}</code></div>'
        )
    parts.append("</div>")
    return "".join(parts)


def _png_artifacts(rec: TestRecord, limit: int = 4 << 20) -> dict[str, bytes]:
    """PNG files a test produced itself (e.g. the twin validation report), shown inline."""
    found: dict[str, bytes] = {}
    for key, value in sorted(rec.artifacts.items()):
        path = Path(value)
        if not (key.endswith("_png") or path.suffix.lower() == ".png"):
            continue
        try:
            if path.is_file() and path.stat().st_size <= limit:
                found[key] = path.read_bytes()
        except OSError:
            continue  # a report must never fail because an artifact went away
    return found


def html_extras(rec: TestRecord, images: Mapping[str, bytes] | None = None) -> list[dict[str, Any]]:
    """pytest-html extras for a record ([] when pytest-html is not installed or nothing to show)."""
    try:
        from pytest_html import extras
    except ImportError:
        return []
    if not dashboard.has_block(rec):
        return []
    return [extras.html(test_block(rec, images))]


def standalone(
    records: list[TestRecord],
    title: str = "pytest-simtwin report",
    source: str = "",
    report_dir: Path | None = None,
    extra_sections: Mapping[str, str] | None = None,
    png: bool | None = None,
) -> str:
    """A self-contained HTML document: the run dashboard first, then every test's block.

    ``report_dir`` is the folder the file will be written to (links to bundles are relative to it).
    """
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    ordered = sorted(records, key=lambda r: (_RANK.get(dashboard.category(r), 9), r.nodeid))
    body = [
        f"<h1 style='font-size:20px'>{html.escape(title)}</h1>",
        f"<p style='color:#555'>generated {now}"
        + (f" from <code>{html.escape(source)}</code>" if source else "")
        + "</p>",
        dashboard.summary_html(ordered, report_dir, extra_sections=extra_sections),
        "<h2 style='font-size:17px'>Tests</h2>",
    ]
    body += [test_block(r, heading=True, png=png) for r in ordered]
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body style='font-family:sans-serif;margin:16px'>{''.join(body)}</body></html>\n"
    )


#: failing tests first in the standalone report
_RANK = {"failed": 0, "error": 1, dashboard.INFRA: 2}
