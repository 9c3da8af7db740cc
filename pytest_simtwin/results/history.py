"""The history view: metric trends over the last N runs' metrics files, and tests that changed outcome.

``simtwin report METRICS --history DIR`` reads every ``--simtwin-metrics-json`` file in ``DIR``
(oldest to newest by their ``created`` stamp), keeps the last N, and adds two sections to the
report: outcome changes between the previous run and this one (new failures, fixed) plus flaky
tests (passed and failed on the same commit), and each metric's trend with a sparkline.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_simtwin.errors import DataError
from pytest_simtwin.results.dashboard import INFRA, anchor, category
from pytest_simtwin.results.records import METRICS_FORMAT, TestRecord, load_metrics_file

BAD = ("failed", "error", INFRA)


@dataclass
class Run:
    """One metrics file of the history."""

    path: Path
    created: str
    commit: str
    records: list[TestRecord]

    @property
    def label(self) -> str:
        return self.created[:19] + (f" @{self.commit[:8]}" if self.commit else "")


def read_run(path: Path) -> Run:
    records = load_metrics_file(path)  # DataError names what is wrong
    doc = json.loads(path.read_text(encoding="utf-8"))
    return Run(path, str(doc.get("created", "")), str(doc.get("commit") or ""), records)


def load_runs(directory: Path, last: int = 20, exclude: Sequence[Path] = ()) -> tuple[list[Run], list[str]]:
    """The last ``last`` runs in ``directory`` (oldest first) and warnings for files that are not metrics files."""
    if not directory.is_dir():
        raise DataError(f"history folder {directory} does not exist: expected a folder of --simtwin-metrics-json files")
    skip = {p.resolve() for p in exclude}
    runs: list[Run] = []
    warnings: list[str] = []
    for path in sorted(directory.rglob("*.json")):
        if path.resolve() in skip:
            continue
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:4096]
        except OSError as exc:
            warnings.append(f"{path}: {exc.strerror}")
            continue
        if METRICS_FORMAT not in head:  # baselines and other JSON files live there too
            continue
        try:
            runs.append(read_run(path))
        except (DataError, json.JSONDecodeError) as exc:
            warnings.append(str(exc))
    runs.sort(key=lambda r: (r.created, str(r.path)))
    return runs[-last:] if last > 0 else runs, warnings


def outcome_changes(runs: Sequence[Run]) -> dict[str, list[str]]:
    """{"new failures", "fixed", "flaky"}: test ids, comparing the newest run with the one before."""
    out: dict[str, list[str]] = {"new failures": [], "fixed": [], "flaky": []}
    if len(runs) >= 2:
        before = {r.nodeid: category(r) for r in runs[-2].records}
        for rec in runs[-1].records:
            old, new = before.get(rec.nodeid), category(rec)
            if new in BAD and old == "passed":
                out["new failures"].append(rec.nodeid)
            elif new == "passed" and old in BAD:
                out["fixed"].append(rec.nodeid)
    by_commit: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        if not run.commit:
            continue
        for rec in run.records:
            by_commit.setdefault((run.commit, rec.nodeid), set()).add("bad" if category(rec) in BAD else category(rec))
    out["flaky"] = sorted({nodeid for (_, nodeid), seen in by_commit.items() if {"bad", "passed"} <= seen})
    return out


def trends(runs: Sequence[Run]) -> dict[tuple[str, str], list[float | None]]:
    """(test, metric) -> value per run (None where the run lacks it), oldest first."""
    keys = sorted({(r.nodeid, m.name) for run in runs for r in run.records for m in r.metrics})
    index = [{(r.nodeid, m.name): m.value for r in run.records for m in r.metrics} for run in runs]
    return {k: [ix.get(k) for ix in index] for k in keys}


def sparkline(values: Sequence[float | None], width: int = 140, height: int = 28) -> str:
    pts = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not pts:
        return ""
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{2 + i * (width - 4) / n:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}"

    line = " ".join(xy(i, v) for i, v in pts)
    last = xy(*pts[-1])
    return (
        f'<svg class="st-spark" width="{width}" height="{height}"><polyline points="{line}" fill="none" '
        f'stroke="#1f77b4" stroke-width="1.5"/><circle cx="{last.split(",")[0]}" cy="{last.split(",")[1]}" r="2.5" '
        'fill="#d62728"/></svg>'
    )


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def history_sections(runs: Sequence[Run]) -> dict[str, str]:
    """The report sections (title -> HTML) of a history, newest run last."""
    if not runs:
        return {"History": '<p class="st-none">no earlier metrics files found</p>'}
    changes = outcome_changes(runs)
    items = []
    for title, ids in changes.items():
        links = ", ".join(f'<a href="#{anchor(i)}">{html.escape(i)}</a>' for i in ids) or "none"
        items.append(f'<li class="st-change" data-kind="{title}"><b>{html.escape(title)}</b> ({len(ids)}): {links}</li>')
    runs_list = " → ".join(html.escape(r.label) for r in runs)
    outcome_html = f'<p class="st-hint">runs (oldest first): {runs_list}</p><ul>{"".join(items)}</ul>'
    rows = []
    for (nodeid, name), values in trends(runs).items():
        present = [v for v in values if v is not None]
        first, last = (present[0], present[-1]) if present else (None, None)
        change = None if first in (None, 0.0) or last is None else (last - first) / abs(first) * 100
        rows.append(
            f'<tr><td><a href="#{anchor(nodeid)}">{html.escape(nodeid)}</a></td><td>{html.escape(name)}</td>'
            f"<td>{sparkline(values)}</td>"
            f'<td data-v="{"" if last is None else f"{last:.9g}"}">{_num(last)}</td>'
            f'<td data-v="{"" if change is None else f"{change:.6g}"}">{"-" if change is None else f"{change:+.1f} %"}</td>'
            f"<td>{len(present)}/{len(values)}</td></tr>"
        )
    th = "".join(f"<th>{h}</th>" for h in ("test", "metric", "trend", "last", "change since first", "runs"))
    trend_html = (
        f'<table class="st-trends st-sort"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        if rows
        else '<p class="st-none">no metrics in the history</p>'
    )
    return {f"Outcome changes over {len(runs)} runs": outcome_html, "Metric trends": trend_html}
