"""Size and render time of the HTML report for 100 synthetic tests (budget: ~5 MB).

The records look like a metrics file's: 600-point trajectories (odometry, ground truth, commands),
three metrics with baseline verdicts, two obstacles; 10 tests fail (their PNG plots are embedded),
2 are infrastructure errors, 5 regressed. Measures ``simtwin report``'s page with the default
(PNG plots for failing tests only) and with ``--png all``, the dashboard section alone, and, when
chromium is installed, how long headless Chromium takes to load the page and run its scripts.

    .venv/bin/python benchmarks/report_benchmark.py [--tests 100] [--write]

``--write`` replaces the "HTML report" section of benchmarks/RESULTS.md (run_all.py keeps it).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pytest_simtwin.results import dashboard
from pytest_simtwin.results.html import standalone
from pytest_simtwin.results.metrics import MetricRecord
from pytest_simtwin.results.records import TestRecord, slim

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- report_benchmark -->", "<!-- /report_benchmark -->"


def synthetic(i: int, n_points: int = 600) -> TestRecord:
    speed, turn = 0.2 + 0.01 * (i % 30), 0.1 * ((i % 7) - 3)
    t = [k * 10.0 / (n_points - 1) for k in range(n_points)]
    yaw = [turn * v for v in t]
    x, y = [0.0], [0.0]
    for k in range(1, n_points):
        dt = t[k] - t[k - 1]
        x.append(x[-1] + speed * math.cos(yaw[k]) * dt)
        y.append(y[-1] + speed * math.sin(yaw[k]) * dt)
    rec = TestRecord(f"tests/test_fleet.py::test_drive[{i}]", outcome="passed", wall_duration=2.5, sim_duration=10.0)
    rec.trajectory = {
        "t": t, "x": x, "y": y, "yaw": yaw, "vx": [speed * (1 - math.exp(-3 * v)) for v in t], "wz": [turn] * n_points,
        "gt_x": [v * 1.001 for v in x], "gt_y": [v * 1.001 for v in y],
        "cmd_t": [k * 1.0 for k in range(10)], "cmd_vx": [speed] * 10, "cmd_wz": [turn] * 10,
    }  # fmt: skip
    rec.obstacles = [
        {"name": "crate", "shape": "box", "size": [0.3, 0.3, 0.3], "x": 1.5, "y": 0.5, "yaw": 0.3},
        {"name": "pole", "shape": "cylinder", "size": [0.1, 0.5], "x": -0.5, "y": 1.0, "yaw": 0.0},
    ]
    rec.add_metric(MetricRecord("distance", math.hypot(x[-1], y[-1]), "m", 1.0, "higher"))
    rec.add_metric(MetricRecord("position_error", 0.004 + 0.0001 * i, "m", 0.01))
    rec.add_metric(MetricRecord("heading_error", 0.01 * ((i % 5) - 2), "rad", 0.05, "two-sided"))
    rec.baseline = [
        {"name": m.name, "verdict": "unchanged", "baseline": m.value, "current": m.value, "delta": 0.0, "band": 0.05}
        for m in rec.metrics
    ]
    rec.baseline_verdict = "unchanged"
    rec.baseline_trajectory = {"x": x[::3], "y": y[::3]}
    rec.worker, rec.domain_id, rec.sim_start = f"gw{i % 8}", 10 + i % 8, 0.2 if i < 8 else 0.0
    if i % 10 == 3:
        rec.outcome, rec.message = "failed", "AssertionError: the robot did not get far enough"
        rec.metrics[0] = MetricRecord("distance", 0.4, "m", 1.0, "higher")
    elif i in (50, 77):
        rec.outcome, rec.infra = "error", "simulator died during the test (exited with code -9)"
    if i % 20 == 5:
        rec.baseline[0].update(verdict="regression", baseline=rec.metrics[0].value * 1.2, delta=-0.2)
        rec.baseline_verdict = "regression"
    return slim(rec)  # what a metrics file holds


PYTEST_HTML_SUITE = """
import sys
import pytest
from pytest_simtwin.results.records import record_for
sys.path.insert(0, {bench!r})
from report_benchmark import synthetic

@pytest.mark.parametrize("i", range({n}))
def test_drive(request, i):
    rec = record_for(request.node)
    syn = synthetic(i)
    rec.trajectory, rec.obstacles, rec.sim_duration = syn.trajectory, syn.obstacles, syn.sim_duration
    for m in syn.metrics:
        rec.add_metric(m)
    assert not syn.outcome == "failed", "the robot did not get far enough"
"""


def pytest_html_run(n: int, tmp: Path) -> tuple[float, float]:
    """(MB, seconds) of a real ``pytest -n 2 --html`` run whose tests carry the synthetic records."""
    import sys

    (tmp / "test_fleet.py").write_text(PYTEST_HTML_SUITE.format(bench=str(HERE), n=n))
    (tmp / "pytest.ini").write_text("[pytest]\n")
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--html=r.html", "--self-contained-html"]
    subprocess.run(cmd, cwd=tmp, capture_output=True, check=False, timeout=600)
    return (tmp / "r.html").stat().st_size / 1e6, time.perf_counter() - t0


def timed(fn: object, repeat: int = 3) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def chromium_load(page: Path) -> float | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--dump-dom"]
    t0 = time.perf_counter()
    subprocess.run([exe, *flags, page.as_uri()], capture_output=True, check=True, timeout=300)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", type=int, default=100)
    ap.add_argument("--write", action="store_true", help="update the section in benchmarks/RESULTS.md")
    args = ap.parse_args()
    records = [synthetic(i) for i in range(args.tests)]
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, png in (("default (PNG plots for failing tests)", None), ("--png all", True)):
            secs, page = timed(lambda png=png: standalone(records, report_dir=Path(tmp), png=png), 3 if png is None else 1)  # type: ignore[misc]
            path = Path(tmp) / "report.html"
            path.write_text(page)
            load = chromium_load(path)
            mb = len(page.encode()) / 1e6
            rows.append((f"`simtwin report`, {label}", f"{mb:.2f} MB", f"render {secs:.2f} s" + (
                f", Chromium load + scripts {load:.2f} s" if load is not None else "")))  # fmt: skip
            print(f"{label}: {mb:.2f} MB, rendered in {secs:.2f} s, chromium {load}")
        mb, secs = pytest_html_run(args.tests, Path(tmp))
        rows.append((f"pytest-html report of a real `pytest -n 2` run ({args.tests} tests with these records)", f"{mb:.2f} MB", f"whole run {secs:.1f} s"))
        print(f"pytest-html: {mb:.2f} MB, run {secs:.1f} s")
        secs, summary = timed(lambda: dashboard.summary_html(records, Path(tmp)))
        mb = len(summary.encode()) / 1e6
        rows.append(("dashboard section alone (what the pytest-html summary adds)", f"{mb:.2f} MB", f"render {secs:.2f} s"))
        print(f"dashboard only: {mb:.2f} MB in {secs:.2f} s")
    if args.write:
        write_section(args.tests, rows)
    return 0


def write_section(n: int, rows: list[tuple[str, str, str]]) -> None:
    lines = [
        BEGIN,
        "## HTML report: size and render time",
        "",
        f"`benchmarks/report_benchmark.py --tests {n}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{n} synthetic tests as a metrics file holds them (600-point trajectories, 3 metrics with baseline verdicts,"
        " 2 obstacles; 10 failing, 2 infrastructure errors, 5 regressions). Budget: ~5 MB for 100 tests."
        f" Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine: times inflated;"
        " the Chromium time includes starting the browser).",
        "",
        "| what | size | time |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "Every test gets inline SVG plots (trajectory with hover/zoom and baseline overlay, velocities) and a"
        " thumbnail; base64 PNGs (~60 kB per test) only for failing tests by default.",
        END,
    ]
    path = HERE / "RESULTS.md"
    text = path.read_text()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
