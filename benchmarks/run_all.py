"""Run every comparison benchmark once and write benchmarks/RESULTS.md with a plot.

    .venv/bin/python benchmarks/run_all.py            # full: ~10 min on 2 quiet cores
    .venv/bin/python benchmarks/run_all.py --quick    # a few iterations each: checks the scripts

Each bench_*.py runs as its own process (its own ROS contexts and leases) with ``--json``; this
script prints their progress, then writes RESULTS.md (machine facts, load average at start and
end, every ratio next to its target, the scaling table) and results.png (bars of the ratios
against their targets). Numbers from a loaded machine are not representative: the load average
is recorded so a reader can tell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, ROOT, machine_facts, progress

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_overhead.py",  # first: the shortest, and the most sensitive to a busy machine
    "bench_startup.py",
    "bench_fixture_path.py",
    "bench_tutorial.py",
    "bench_scaling.py",
    "bench_rtf.py",
    "bench_pool.py",
    "bench_twin_hardware.py",
    "bench_tb3_world.py",
]
SCRIPT_TIMEOUT = 900.0


def run_script(name: str, quick: bool, out: Path) -> dict[str, Any]:
    argv = [PYTHON, str(HERE / name), "--json", str(out)] + (["--quick"] if quick else [])
    progress(f"== {name} {'--quick' if quick else ''}")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # stream the script's own progress
        print(f"   {line}", end="", flush=True)
    try:
        rc = proc.wait(timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    elapsed = time.monotonic() - t0
    if rc == 0 and out.exists():
        doc: dict[str, Any] = json.loads(out.read_text())
    else:
        doc = {"results": [], "error": f"{name} exited with code {rc}"}
    doc["script"], doc["elapsed_s"] = name, elapsed
    progress(f"== {name} done in {elapsed:.0f} s (exit {rc})")
    return doc


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r["value"] is not None and r["target"] is not None]
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(rows) + 1.6))
    labels = [textwrap.fill(r["label"], 48) for r in rows]
    # Normalise so the target is 1 for every row: > 1 meets it, whichever direction is better.
    # (A difference at or below zero, such as the no-simulator overhead, is drawn at 10x the target.)
    scores = [
        (r["value"] / r["target"])
        if r["higher_is_better"]
        else (min(r["target"] / r["value"], 10.0) if r["value"] > 0 else 10.0)
        for r in rows
    ]
    colors = ["tab:green" if s >= 1 else "tab:red" for s in scores]
    y = range(len(rows))
    low = min([*scores, 1.0]) / 2  # log scale: bars start at a common left edge below every value
    ax.barh(list(y), [sc - low for sc in scores], left=low, color=colors)
    ax.set_xlim(low, max([*scores, 1.0]) * 4)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="target")
    for i, (r, s) in enumerate(zip(rows, scores, strict=True)):
        ax.text(s, i, f"  {r['value']:.2f} (target {r['target']:g})", va="center", fontsize=8)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("measured / target (log scale; right of the dashed line meets the target)")
    ax.set_title("pytest-simtwin against the hand-made workflow")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(path: Path, facts: dict[str, Any], docs: list[dict[str, Any]], quick: bool, wall: float) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/run_all.py{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" in {wall / 60:.1f} min. Re-run: `.venv/bin/python benchmarks/run_all.py` (full) on a quiet machine.",
        "",
    ]
    if quick:
        lines += ["**Quick mode**: few iterations; the numbers check the scripts, they are not representative.", ""]
    load0 = facts["loadavg"]
    lines += [
        "## Machine",
        "",
        f"* CPU: {facts['cpu']}, {facts['cores']} cores ({facts['affinity']} usable), RAM {facts['ram_gib']} GiB",
        f"* OS: {facts['os']} (kernel {facts['kernel']}), Python {facts['python']}",
        f"* mujoco {facts['mujoco']}, rclpy (ros-kilted-rclpy) {facts['rclpy']}, pytest {facts['pytest']}, "
        f"pytest-xdist {facts['pytest_xdist']}, pytest-simtwin {facts['pytest_simtwin']}",
        f"* speed reference: a pure-Python loop of 5 M additions {facts['python_loop_ms']} ms, `python -c pass` "
        f"{facts['python_start_ms']} ms (the wall-clock ratios against fixed sleeps scale with these; "
        "machines of this kind have measured 2-3x apart)",
        f"* load average at start: {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} (1/5/15 min); at the end "
        f"{os.getloadavg()[0]:.2f}"
        + ("  **(busy machine: numbers inflated)**" if load0[0] > 1.5 * facts["cores"] else ""),
        "* bytecode: "
        + (
            "this machine exports PYTHONDONTWRITEBYTECODE=1; the benchmarks unset it for the processes they "
            "measure (users' Python caches bytecode) and warm the caches with one untimed run"
            if facts.get("bytecode_flag_removed")
            else "cached as Python does by default; one untimed run warms the caches"
        ),
        "",
        "## Ratios against their targets",
        "",
        "| comparison | measured | target | verdict | details |",
        "| --- | --- | --- | --- | --- |",
    ]
    all_results = [r for d in docs for r in d["results"]]
    for r in all_results:
        value = "-" if r["value"] is None else f"{r['value']:.2f}"
        target = "-" if r["target"] is None else f"{'>=' if r['higher_is_better'] else '<='} {r['target']:g}"
        if r["skipped"]:
            verdict, detail = "skipped", r["skipped"]
        elif r["target"] is None:
            verdict, detail = "info", r["detail"]
        else:
            ok = r["value"] >= r["target"] if r["higher_is_better"] else r["value"] <= r["target"]
            verdict, detail = ("meets" if ok else "**misses**"), r["detail"]
        lines.append(f"| {r['label']} | {value} | {target} | {verdict} | {detail.replace('|', '/')} |")
    errors = [d for d in docs if d.get("error")]
    if errors:
        lines += ["", "Scripts that failed: " + "; ".join(f"{d['script']}: {d['error']}" for d in errors)]
    lines += ["", "![ratios against targets](results.png)", ""]
    for d in docs:
        table = d.get("scaling_table")
        if not table:
            continue
        lines += [
            "## Scaling of the example suite",
            "",
            "| -n | wall s | tests | outcomes | tests/min | speed-up | peak RSS/worker MiB | peak RSS/simulator MiB | whole run MiB | CPU s workers / simulators / fork server | same results as first |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in table:
            same = "yes" if not row["differences_vs_first"] else "; ".join(row["differences_vs_first"])[:300]
            lines.append(
                f"| {row['workers']} | {row['wall_s']} | {row['tests']} | {row['outcomes']} | {row['tests_per_min']} | "
                f"{row['speedup']} | {row.get('worker_max_mib', '-')} | {row.get('simulator_max_mib', '-')} | "
                f"{row.get('peak_total_mib', '-')} | {row.get('cpu_s_worker', '-')} / {row.get('cpu_s_simulator', '-')} / "
                f"{row.get('cpu_s_fork_server', '-')} | {same} |"
            )
        lines.append("")
    lines += [
        "## What each ratio measures",
        "",
        "* **no-simulator overhead** (`bench_overhead.py`): a one-test pytest run in fresh processes, with the"
        " plugin and with `-p no:simtwin`: the extra instructions (callgrind, one run each: repeatable) times"
        " the wall time of the plain run, in ms; the wall-time A/B pairs (order alternating) and A/A pairs of"
        " identical runs (the noise floor) are in the details.",
        "* **start to first test** (`bench_startup.py`): hand-made flow = `simtwin-sim &` then `sleep 10`;"
        " plugin flow = a fresh worker session (domain lease, ROS context, simulator start, first /odom,"
        " control answered). Ratio = how many times sooner a test can start.",
        "* **fixture path** (`bench_fixture_path.py`): the steps around every test in a warm worker (simulator"
        " start -> ready, a new subscriber's first message while playing and paused, the next test's reset +"
        " health check, stop), each against the same step with the package before this issue's 2026-12-04"
        " changes (commit 3e87ebe): before / now.",
        "* **TestBasicMotion** (`bench_tutorial.py`): tests/sim/tutorial/test_basic_motion_tutorial.py unmodified"
        " (raw rclpy, wall-clock loops) after `simtwin-sim` + `sleep 10`, against one `pytest` process running the"
        " same three tests with the `robot` fixture in simulated time. Both must pass.",
        "* **throughput** (`bench_scaling.py`): the example project's whole suite per `-n`; results compared per"
        " test (outcome, metric values within the baseline band: max(5 %, 1 % of the tolerance) or the"
        " metric's own baseline_rtol/atol). `-n 8 / -n 2` is the median wall time of A/B pairs on 2 CPUs"
        " (pinned when the machine has more); CPU seconds per kind of process are sampled from /proc.",
        "* **RTF** (`bench_rtf.py`): free-running simulator on the built-in arena, robot with a 10 Hz lidar and"
        " the same robot without its sensor; twin validation = `twin_benchmark.py` on the 60 s recording.",
        "* **TB3 waffle in turtlebot3_world** (`bench_tb3_world.py`): start to first /odom through the plugin"
        " (SimSession, embedded backend, fork server, warm mesh cache) and fork -> first /odom of the simulator"
        " alone, target < 1 s; free-running RTF with its 10 Hz lidar, target >= 50x.",
        "",
        "Per script: " + ", ".join(f"{d['script']} {d['elapsed_s']:.0f} s" for d in docs) + ".",
        "",
    ]
    lines += _kept_sections(path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)


def _kept_sections(path: Path) -> list[str]:
    """Sections other scripts write between ``<!-- name -->`` and ``<!-- /name -->`` (report_benchmark.py): kept."""
    import re

    old = path.read_text() if path.exists() else ""
    return [m.group(0) + "\n" for m in re.finditer(r"<!-- (\w+) -->.*?<!-- /\1 -->", old, re.S)]


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few iterations per script (minutes, not representative)")
    ap.add_argument("--only", help="comma-separated script names to run (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args(argv)
    facts = machine_facts()
    progress(
        f"{facts['cpu']}, {facts['cores']} cores, {facts['ram_gib']} GiB, {facts['os']}, Python {facts['python']}, "
        f"mujoco {facts['mujoco']}, rclpy {facts['rclpy']}; load average {facts['loadavg'][0]:.2f}"
    )
    scripts = [s.strip() for s in args.only.split(",")] if args.only else SCRIPTS
    t0 = time.monotonic()
    docs = []
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp:
        for name in scripts:
            docs.append(run_script(name, args.quick, Path(tmp) / f"{name}.json"))
    wall = time.monotonic() - t0
    all_results = [r for d in docs for r in d["results"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    png = args.out.parent / "results.png"
    plot(all_results, png)
    write_markdown(args.out, facts, docs, args.quick, wall)
    (args.out.parent / "results.json").write_text(json.dumps({"machine": facts, "runs": docs}, indent=1))
    progress(f"wrote {args.out}, {png} in {wall / 60:.1f} min")
    return 1 if any(d.get("error") for d in docs) else 0


if __name__ == "__main__":
    sys.exit(main())
