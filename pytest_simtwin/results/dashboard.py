"""The run dashboard: the first thing an engineer reads after a run, in pytest-html and ``simtwin report``.

Counts by outcome (infrastructure errors apart from test failures), the failing tests expanded
(one-line reason, plots, repro command, links to the failure bundle), regressions against the
baseline, every metric in one sortable table with its margin to failing, a thumbnail gallery and
per test timings. Links are relative to the report file so the report and ``simtwin-artifacts/``
can be uploaded as one CI artifact. The Markdown variant goes to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_simtwin.results import cameras, svgplot, webassets
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import TestRecord

INFRA = "infra"
#: display order of the outcome counts
ORDER = ("failed", INFRA, "error", "passed", "xpassed", "xfailed", "skipped", "unknown")
LABELS = {INFRA: "infrastructure error(s)", "error": "error(s)", "failed": "failed", "passed": "passed"}
#: a metric within this fraction of its tolerance is flagged as close to failing
NEAR = 0.1


def category(rec: TestRecord) -> str:
    """"infra" for infrastructure errors (simulator died, never ready, timed out), else the outcome."""
    if rec.infra and rec.outcome in ("failed", "error"):
        return INFRA
    return rec.outcome


def counts(records: Iterable[TestRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rec in records:
        out[category(rec)] = out.get(category(rec), 0) + 1
    return {k: out[k] for k in sorted(out, key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER))}


def anchor(nodeid: str) -> str:
    """The id of a test's block (the same in pytest-html extras and the standalone report)."""
    return "t-" + "".join(c if c.isalnum() else "-" for c in nodeid)


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}g}"


def _op(m: MetricRecord) -> str:
    return {"higher": "≥", "two-sided": "|x| ≤"}.get(m.direction, "≤")


def margin(m: MetricRecord) -> float | None:
    """How far a metric is from failing, as a fraction of its tolerance (< 0: failing); None without one."""
    if m.tolerance is None or not math.isfinite(m.value):
        return None if m.tolerance is None else -math.inf
    scale = abs(m.tolerance) or 1.0
    if m.direction == "higher":
        return (m.value - m.tolerance) / scale
    value = abs(m.value) if m.direction == "two-sided" else m.value
    return (m.tolerance - value) / scale


def reason(rec: TestRecord) -> str:
    """One line: the failing metrics' actual / expected / tolerance, else the failure's first line."""
    if rec.infra:
        return f"infrastructure: {rec.infra}"
    bad = [m for m in rec.metrics if m.passed is False]
    if bad:
        return "; ".join(
            f"{m.name} = {_num(m.value)} {m.unit}".rstrip() + f", expected {_op(m)} {_num(m.tolerance)} {m.unit}".rstrip()
            for m in bad
        )
    first = next((line.strip() for line in rec.message.splitlines() if line.strip()), "")
    return first or f"the test {rec.outcome} (no message recorded)"


def repro(rec: TestRecord) -> str:
    """The copyable command that re-runs the test (the bundle's rerun line when there is one)."""
    return rec.artifacts.get("rerun") or f"python -m pytest '{rec.nodeid}'"


def rel(path: str | Path, report_dir: Path | None) -> str:
    """``path`` relative to the report's folder (as a URL path), absolute when there is no report folder."""
    p = Path(path)
    if report_dir is None:
        return p.as_posix()
    try:
        return Path(os.path.relpath(p.resolve(), report_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return p.as_posix()


def relocate_artifacts(records: Iterable[TestRecord], metrics_file: Path) -> None:
    """Point artifact paths that do not exist here at the same files next to ``metrics_file``.

    A metrics file downloaded from CI (or a shard's, merged elsewhere) names the runner's absolute
    paths; its ``simtwin-artifacts/`` folder usually sits beside it: the longest path tail that
    exists under the file's folder wins.
    """
    base = metrics_file.absolute().parent
    for rec in records:
        for key in ("bundle", "bag", "simulator_log"):
            value = rec.artifacts.get(key)
            if not value or Path(value).exists():
                continue
            parts = Path(value).parts
            for i in range(1, len(parts)):
                candidate = base.joinpath(*parts[i:])
                if candidate.exists():
                    rec.artifacts[key] = str(candidate)
                    break


def bundle_links(rec: TestRecord, report_dir: Path | None) -> list[tuple[str, str]]:
    """(label, relative href) of a failing test's bundle files: MCAP, simulator log, node logs, rerun.sh, plots."""
    folder = rec.artifacts.get("bundle")
    if not folder:
        return []
    base = Path(folder)
    if not base.is_dir():  # e.g. a metrics file copied without its artifacts: say so, link nothing that is not there
        return [("bundle folder (not found next to this report)", rel(base, report_dir) + "/")]
    links: list[tuple[str, str]] = []
    mcaps = sorted((base / "bag").glob("*.mcap")) if (base / "bag").is_dir() else []
    for f in mcaps:
        links.append((f"MCAP {f.name}", rel(f, report_dir)))
    if (base / "bag").is_dir():
        links.append(("bag folder", rel(base / "bag", report_dir) + "/"))
    names = sorted(p.name for p in base.iterdir())
    for name in names:
        if name == "simulator.log":
            links.append(("simulator log", rel(base / name, report_dir)))
        elif name.endswith(".log"):
            links.append((f"log {name}", rel(base / name, report_dir)))
    for name in names:
        if name in ("rerun.sh", "record.json") or name.endswith(".png"):
            links.append((name, rel(base / name, report_dir)))
    links.append(("bundle folder", rel(base, report_dir) + "/"))
    return links


def _table(cls: str, header: Sequence[str], rows: Iterable[Sequence[str]], sortable: bool = True) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    klass = f"{cls} st-sort" if sortable else cls
    return f'<table class="{klass}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _td(text: str, value: float | None = None, cls: str = "", raw: bool = False) -> str:
    attrs = "" if value is None or not math.isfinite(value) else f' data-v="{value:.9g}"'
    if value is not None and math.isinf(value):
        attrs = f' data-v="{-1e300 if value < 0 else 1e300}"'
    attrs += f' class="{cls}"' if cls else ""
    return f"<td{attrs}>{text if raw else html.escape(text)}</td>"


def has_block(rec: TestRecord) -> bool:
    """Whether the test has a block to link to (pytest-html gets extras only for these)."""
    return bool(rec.metrics or rec.trajectory or rec.baseline or rec.artifacts)


def _test_link(nodeid: str, linked: bool = True) -> str:
    return f'<a href="#{anchor(nodeid)}">{html.escape(nodeid)}</a>' if linked else html.escape(nodeid)


def failure_card(rec: TestRecord, report_dir: Path | None) -> str:
    """A failing test, expanded: reason, message, plots, repro line, bundle links."""
    infra = category(rec) == INFRA
    parts = [
        f'<div class="st-fail{" st-infra" if infra else ""}" data-nodeid="{html.escape(rec.nodeid, quote=True)}">',
        f"<h3>{_test_link(rec.nodeid, has_block(rec))} <small>({'infrastructure error' if infra else rec.outcome})</small></h3>",
        f'<div class="st-reason">{html.escape(reason(rec))}</div>',
    ]
    if rec.message and rec.message.strip() != reason(rec):
        parts.append(f'<pre class="st-msg">{html.escape(rec.message)}</pre>')
    parts.append(svgplot.plots_html(rec, rec.baseline_trajectory or None))
    parts.append(cameras.cameras_html(rec, cameras.bundle_hrefs(rec, report_dir, rel)))
    parts.append(
        f'<div class="st-repro">repro: <code>{html.escape(repro(rec))}</code> <button class="st-copy">copy</button></div>'
    )
    links = bundle_links(rec, report_dir)
    if links:
        parts.append(
            '<div class="st-links">bundle: '
            + "".join(f'<a href="{html.escape(h, quote=True)}">{html.escape(label)}</a>' for label, h in links)
            + "</div>"
        )
        if any(label.startswith("MCAP") for label, _ in links):
            bag = rel(Path(rec.artifacts["bundle"]) / "bag", report_dir)
            parts.append(
                '<div class="st-hint">open the MCAP in Foxglove (app.foxglove.dev or the desktop app: Open local '
                f"file), or replay it: <code>ros2 bag play {html.escape(bag)}</code>; "
                f"<code>ros2 bag info {html.escape(bag)}</code> lists its topics</div>"
            )
    parts.append("</div>")
    return "".join(parts)


def regressions_table(records: Sequence[TestRecord]) -> str:
    rows = []
    for rec in records:
        for v in rec.baseline:
            if v.get("verdict") != "regression":
                continue
            b, c, d, band = (_f(v.get(k)) for k in ("baseline", "current", "delta", "band"))
            rel_change = (c - b) / abs(b) * 100 if b not in (None, 0.0) and c is not None else None
            rows.append(
                [
                    _td(_test_link(rec.nodeid), raw=True),
                    _td(str(v.get("name"))),
                    _td(_num(b), b),
                    _td(_num(c), c),
                    _td(_num(d) + ("" if rel_change is None else f" ({rel_change:+.1f} %)"), d),
                    _td("±" + _num(band), band),
                    _td(str(v.get("unit") or "")),
                    _td("regression", cls="st-v-regression"),
                ]
            )
    if not rows:
        return '<p class="st-none">no regressions against the baseline</p>'
    header = ["test", "metric", "baseline", "current", "delta", "band", "unit", "verdict"]
    return _table("st-regressions", header, rows)


def _f(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def metrics_table(records: Sequence[TestRecord]) -> str:
    """Every recorded metric of every test, sorted by margin (closest to failing first); sortable."""
    entries = [(rec, m, margin(m)) for rec in records for m in rec.metrics]
    entries.sort(key=lambda e: (math.inf if e[2] is None else e[2], e[0].nodeid, e[1].name))
    rows = []
    for rec, m, mg in entries:
        verdicts = {str(v.get("name")): str(v.get("verdict")) for v in rec.baseline}
        cls = "" if mg is None else "st-neg" if mg < 0 else "st-near" if mg < NEAR else ""
        rows.append(
            [
                _td(_test_link(rec.nodeid), raw=True),
                _td(m.name),
                _td(_num(m.value), m.value),
                _td("-" if m.tolerance is None else f"{_op(m)} {_num(m.tolerance)}", m.tolerance),
                _td(m.unit),
                _td("-" if mg is None else f"{mg * 100:+.1f} %", mg, cls),
                _td(verdicts.get(m.name, "-"), cls=f"st-v-{verdicts.get(m.name, 'none')}"),
            ]
        )
    if not rows:
        return '<p class="st-none">no metrics recorded</p>'
    header = ["test", "metric", "value", "tolerance", "unit", "margin to failing", "baseline"]
    return _table("st-metrics", header, rows)


def timings_table(records: Sequence[TestRecord]) -> str:
    """Per test: outcome, sim time, wall time, speed-up, simulator start, worker, ROS domain."""
    rows = []
    for rec in records:
        speed = rec.sim_duration / rec.wall_duration if rec.sim_duration and rec.wall_duration > 0 else None
        rows.append(
            [
                _td(_test_link(rec.nodeid, has_block(rec)), raw=True),
                _td(category(rec), cls=f"st-o-{category(rec)}"),
                _td(f"{rec.sim_duration:.2f}" if rec.sim_duration else "-", rec.sim_duration or None),
                _td(f"{rec.wall_duration:.2f}", rec.wall_duration),
                _td("-" if speed is None else f"{speed:.2f}×", speed),
                _td(f"{rec.sim_start:.2f}" if rec.sim_start else "-", rec.sim_start or None),
                _td(rec.worker or "-"),
                _td("-" if rec.domain_id is None else str(rec.domain_id), _f(rec.domain_id)),
            ]
        )
    header = ["test", "outcome", "sim [s]", "wall [s]", "speed-up (sim/wall)", "simulator start (setup) [s]", "worker",
              "ROS domain"]  # fmt: skip
    return _table("st-timings", header, rows)


def gallery(records: Sequence[TestRecord]) -> str:
    items = []
    for rec in records:
        if not rec.trajectory:
            continue
        cls = {"failed": "st-bad", "error": "st-bad", INFRA: "st-inf"}.get(category(rec), "")
        kinds = sorted({str(f.get("kind")) for f in rec.faults})
        faulted = f", faults: {', '.join(kinds)}" if kinds else ""
        items.append(
            f'<a class="{cls}" href="#{anchor(rec.nodeid)}" title="{html.escape(rec.nodeid, quote=True)} '
            f'({category(rec)}{html.escape(faulted, quote=True)})">{svgplot.thumbnail_svg(rec)}<br>'
            f'{html.escape(rec.nodeid.split("::")[-1])}</a>'
        )
    return f'<div class="st-gallery">{"".join(items)}</div>' if items else '<p class="st-none">no trajectories</p>'


def _counts_html(records: Sequence[TestRecord]) -> str:
    spans = "".join(
        f'<span class="st-c-{k}" data-kind="{k}">{n} {html.escape(LABELS.get(k, k))}</span>'
        for k, n in counts(records).items()
    )
    return f'<div class="st-counts">{spans or "<span class=st-c-unknown>no tests</span>"}</div>'


def summary_html(
    records: Sequence[TestRecord],
    report_dir: Path | None,
    *,
    heading: str = "Simulation run",
    extra_sections: Mapping[str, str] | None = None,
) -> str:
    """The whole dashboard as one ``<section>`` (style and script included)."""
    failing = [r for r in records if category(r) in ("failed", "error")]
    infra = [r for r in records if category(r) == INFRA]
    parts = [
        f'<section id="simtwin-dashboard" class="st-dash">{webassets.style_and_script()}',
        f"<h2>{html.escape(heading)}: {len(records)} tests</h2>",
        _counts_html(records),
    ]
    if failing:
        parts.append(f'<h2 id="st-failures">Failing tests ({len(failing)})</h2>')
        parts += [failure_card(r, report_dir) for r in failing]
    if infra:
        parts.append(
            f'<h2 id="st-infra">Infrastructure errors ({len(infra)})</h2><p class="st-hint">the simulator died, '
            "never became ready or timed out: not a verdict on the robot's code</p>"
        )
        parts += [failure_card(r, report_dir) for r in infra]
    parts.append('<h2 id="st-regressions">Regressions against the baseline</h2>' + regressions_table(records))
    parts.append(
        '<h2 id="st-metrics">All metrics</h2><p class="st-hint">click a header to sort; margin = how far from '
        "failing, as a share of the tolerance (negative: failing)</p>" + metrics_table(records)
    )
    parts.append('<h2 id="st-gallery">Trajectories</h2>' + gallery(records))
    parts.append('<h2 id="st-timings">Timings</h2>' + timings_table(records))
    for title, body in (extra_sections or {}).items():
        parts.append(f"<h2>{html.escape(title)}</h2>{body}")
    parts.append("</section>")
    return "".join(parts)


def markdown(records: Sequence[TestRecord], title: str = "pytest-simtwin") -> str:
    """A GitHub job summary: counts, regressions, failing tests with reason and repro line."""
    lines = [f"## {title}: {len(records)} tests", ""]
    lines.append(" · ".join(f"**{n}** {LABELS.get(k, k)}" for k, n in counts(records).items()) or "no tests")
    regs = [(r, v) for r in records for v in r.baseline if v.get("verdict") == "regression"]
    if regs:
        lines += ["", "### Regressions", "", "| test | metric | baseline | current | delta | band |", "|---|---|---|---|---|---|"]
        for r, v in regs:
            b, c, d, band = (_num(_f(v.get(k))) for k in ("baseline", "current", "delta", "band"))
            lines.append(f"| `{_md(r.nodeid)}` | {_md(str(v.get('name')))} | {b} | {c} | {d} | ±{band} |")
    for heading, group in (
        ("Failing tests", [r for r in records if category(r) in ("failed", "error")]),
        ("Infrastructure errors", [r for r in records if category(r) == INFRA]),
    ):
        if group:
            lines += ["", f"### {heading}", ""]
            for r in group:
                lines.append(f"- `{_md(r.nodeid)}`: {_md(reason(r))}  ")
                lines.append(f"  repro: `{repro(r).replace('`', '')}`")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_step_summary(records: Sequence[TestRecord], environ: Mapping[str, str] | None = None) -> Path | None:
    """Append :func:`markdown` to ``$GITHUB_STEP_SUMMARY`` when it is set; the path written, else None."""
    target = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:  # appended: other steps of the job write there too
        fh.write(markdown(records))
    return path
