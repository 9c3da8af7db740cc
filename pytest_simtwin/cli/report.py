"""``simtwin diff`` and ``simtwin report``.

``simtwin diff BASE CURRENT`` compares two metrics files (``--simtwin-metrics-json``) or two
baseline folders (or one of each) and prints regressions and improvements; it exits 1 when a
metric regressed, 0 otherwise, 2 on unreadable input.

``simtwin report METRICS.json -o report.html`` renders a self-contained HTML report from a metrics
file: the run dashboard (results/dashboard.py) first, then every test's block; ``--history DIR``
adds metric trends and outcome changes over the last ``--last`` metrics files in ``DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_simtwin.errors import DataError
from pytest_simtwin.results.metrics import MetricRecord


def load_side(path: Path) -> tuple[dict[str, list[MetricRecord]], list[str]]:
    """Metrics by test id from a metrics file or a baseline folder, plus warnings (unreadable files)."""
    from pytest_simtwin.results.baselines import BaselineStore
    from pytest_simtwin.results.records import load_metrics_file

    if path.is_dir():
        good, bad = BaselineStore(path).load_all()
        return {nodeid: b.metric_records() for nodeid, b in good.items()}, [str(e) for e in bad.values()]
    if not path.exists():
        raise DataError(f"{path} does not exist: expected a metrics JSON file or a baseline folder")
    return {r.nodeid: r.metrics for r in load_metrics_file(path)}, []


def diff(base: Path, current: Path, rtol: float, show_all: bool = False) -> tuple[int, str]:
    """(exit code, printed text) of comparing ``current`` against ``base``."""
    from pytest_simtwin.results.baselines import IMPROVEMENT, MISSING, NEW, REGRESSION, compare

    old, warn_old = load_side(base)
    new, warn_new = load_side(current)
    rows: list[tuple[str, str, str, str, str, str]] = []
    counts = {REGRESSION: 0, IMPROVEMENT: 0, "unchanged": 0, NEW: 0, MISSING: 0}
    for nodeid in sorted(set(old) | set(new)):
        if nodeid not in new:
            counts[MISSING] += 1
            rows.append((nodeid, "*", "", "", "", "test missing"))
            continue
        if nodeid not in old:
            counts[NEW] += 1
            rows.append((nodeid, "*", "", "", "", "new test"))
            continue
        for v in compare(new[nodeid], old[nodeid], rtol):
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
            if v.verdict in (REGRESSION, IMPROVEMENT, NEW, MISSING) or show_all:
                rel = ""
                if v.baseline not in (None, 0.0) and v.current is not None:
                    assert v.baseline is not None
                    rel = f"{(v.current - v.baseline) / abs(v.baseline) * 100:+.1f} %"
                rows.append((nodeid, v.name, _f(v.baseline), _f(v.current), rel, v.verdict))
    lines = [f"warning: {w}" for w in warn_old + warn_new]
    if rows:
        header = ("test", "metric", "base", "current", "change", "verdict")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
        fmt = "  ".join(f"{{:{'<' if i < 2 or i == 5 else '>'}{w}}}" for i, w in enumerate(widths))
        lines.append(fmt.format(*header))
        lines += [fmt.format(*r) for r in rows]
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    lines.append(f"simtwin diff: {summary or 'nothing to compare'} ({base} -> {current})")
    return (1 if counts[REGRESSION] else 0), "\n".join(lines)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def run_diff(args: argparse.Namespace) -> int:
    code, text = diff(args.base, args.current, args.rtol, args.all)
    print(text)
    return code


def run_report(args: argparse.Namespace) -> int:
    from pytest_simtwin.results import dashboard
    from pytest_simtwin.results.history import history_sections, load_runs, read_run
    from pytest_simtwin.results.html import standalone
    from pytest_simtwin.results.records import atomic_write_text

    sections: dict[str, str] = {}
    metrics: Path | None = args.metrics
    if args.history is not None:
        runs, warnings = load_runs(args.history, args.last, exclude=[metrics] if metrics else [])
        for w in warnings:
            print(f"simtwin report: warning: {w}", file=sys.stderr)
        if metrics is not None:
            runs = [*runs[-(args.last - 1) :], read_run(metrics)] if args.last > 1 else [read_run(metrics)]
        elif runs:
            metrics = runs[-1].path  # no file given: the newest run of the history is the report's run
        sections = history_sections(runs)
    if metrics is None:
        raise DataError("nothing to report: give a metrics JSON file, or --history DIR holding metrics files")
    records = read_run(metrics).records
    dashboard.relocate_artifacts(records, metrics)
    output: Path = args.output or metrics.with_suffix(".html")
    page = standalone(
        records, title=args.title, source=str(metrics), report_dir=output.absolute().parent, extra_sections=sections,
        png={"failed": None, "all": True, "none": False}[args.png],
    )
    atomic_write_text(output, page)
    print(f"simtwin report: {len(records)} tests -> {output} ({len(page.encode()) / 1e6:.2f} MB)", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    from pytest_simtwin.results.baselines import DEFAULT_RTOL

    p = subparsers.add_parser(
        "diff",
        help="compare metrics (files or baseline folders); exit 1 on a regression",
        description="Compare CURRENT against BASE; each is a metrics JSON file or a baseline folder.",
    )
    p.add_argument("base", type=Path, help="reference: metrics JSON or baseline folder")
    p.add_argument("current", type=Path, help="new results: metrics JSON or baseline folder")
    p.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help="relative band for 'unchanged' (default 0.05)")
    p.add_argument("--all", action="store_true", help="also list unchanged metrics")
    p.set_defaults(func=run_diff)

    r = subparsers.add_parser(
        "report",
        help="render a self-contained HTML report from a metrics JSON file",
        description="Render a standalone HTML report (plots embedded) from --simtwin-metrics-json output.",
    )
    r.add_argument("metrics", type=Path, nargs="?", help="metrics JSON file (default with --history: its newest)")
    r.add_argument("-o", "--output", type=Path, help="HTML file (default: METRICS with .html)")
    r.add_argument(
        "--history",
        type=Path,
        metavar="DIR",
        help="folder of earlier metrics JSON files: adds metric trends and outcome changes (new failures, fixed, flaky)",
    )
    r.add_argument(
        "--png",
        choices=("failed", "all", "none"),
        default="failed",
        help="static PNG plots for which tests (default: failed; every test gets interactive SVG plots)",
    )
    r.add_argument("--last", type=int, default=20, metavar="N", help="runs of the history to show (default 20)")
    r.add_argument("--title", default="pytest-simtwin report")
    r.set_defaults(func=run_report)
