"""Scaling of the example suite over xdist workers: wall time, throughput, memory, identical results.

Runs ``example_project``'s suite with ``-n 1, 2, 4, 8`` (quick: 1 and 2) and prints per run the wall
time, tests per minute, the peak RSS of each worker and each simulator (sampled from /proc every
0.25 s), and whether every test's outcome and metric values (within the baseline band) equal the
``-n 1`` run. Targets (2 cores): ``-n 2`` at least 1.7x the throughput of ``-n 1``; ``-n 8`` at most
10 % slower than ``-n 2`` (oversubscribed workers degrade gracefully: idle simulators are paused).
Every run is pinned to two CPUs when the machine has more (the targets are about 2-core CI runners),
and ``--pairs`` more ``-n 2`` / ``-n 8`` runs alternate after the sweep, so the ratio is a median of
A/B pairs rather than of two runs minutes apart.

    .venv/bin/python benchmarks/bench_scaling.py [--quick] [--workers 1,2,4,8] [--pairs 2] [-k EXPR] [--json out.json]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Ratio, SuiteRun, arg_parser, compare_runs, emit, progress, run_suite

TARGET_N2 = 1.7
TARGET_N8_VS_N2 = 1.10  # wall time of -n 8 / -n 2 on 2 cores
# The fork server outlives a run by its idle exit (2 s): waiting longer between runs makes every run
# start its own, as a CI job does, so each run's process tree holds its simulators (CPU and memory).
SETTLE_S = 3.0


def run_settled(n: int, out: Path, extra: list[str]) -> SuiteRun:
    time.sleep(SETTLE_S)
    return run_suite(n, out, extra)


def two_cpus() -> set[int] | None:
    """The first two CPUs of this process when it may use more (None: it has two or fewer)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return set(cpus[:2]) if len(cpus) > 2 else None


def memory_line(run: SuiteRun) -> dict[str, float]:
    kinds = run.memory.by_kind()
    out: dict[str, float] = {"peak_total_mib": run.memory.peak_total}
    for kind, seconds in run.memory.cpu_by_kind().items():
        out[f"cpu_s_{kind.replace(' ', '_')}"] = seconds
    for kind in ("worker", "simulator", "controller"):
        values = kinds.get(kind, [])
        if values:
            out[f"{kind}_median_mib"] = statistics.median(values)
            out[f"{kind}_max_mib"] = max(values)
            out[f"{kind}_count"] = len(values)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--workers", help="comma-separated -n values (default 1,2,4,8; quick 1,2,8)")
    ap.add_argument("-k", dest="keyword", help="pytest -k expression (a subset of the suite)")
    ap.add_argument("--pairs", type=int, help="extra -n 2 / -n 8 pairs after the sweep (default 2, quick 0)")
    args = ap.parse_args(argv)
    counts = [int(n) for n in (args.workers or ("1,2,8" if args.quick else "1,2,4,8")).split(",")]
    pairs = args.pairs if args.pairs is not None else (0 if args.quick else 2)
    extra = ["-k", args.keyword] if args.keyword else []
    cpus = two_cpus()
    if cpus is not None:
        os.sched_setaffinity(0, cpus)  # inherited by pytest, its workers, the fork server and simulators
        progress(f"pinned to CPUs {sorted(cpus)} (the targets are for 2 cores)")
    runs: list[SuiteRun] = []
    walls: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp_name:
        for n in counts:
            progress(f"example suite with -n {n} ...")
            run = run_settled(n, Path(tmp_name) / f"n{n}", extra)
            walls.setdefault(n, []).append(run.wall)
            runs.append(run)
            mem = memory_line(run)
            progress(
                f"-n {n}: {run.wall:.1f} s, {run.tests} tests ({run.summary()}), {run.per_minute:.1f} tests/min; "
                f"peak RSS per worker {mem.get('worker_max_mib', 0):.0f} MiB, per simulator "
                f"{mem.get('simulator_max_mib', 0):.0f} MiB, whole run {mem['peak_total_mib']:.0f} MiB; CPU s: "
                + ", ".join(f"{k[6:]} {v:.1f}" for k, v in sorted(mem.items()) if k.startswith("cpu_s_"))
            )
            if not run.tests:
                print(run.log.read_text()[-3000:])
                raise SystemExit(f"-n {n}: no results (exit {run.returncode}); log above")
        pair_diffs: list[str] = []
        if 2 in walls and 8 in walls:
            for i in range(pairs):
                for n in (2, 8):
                    run = run_settled(n, Path(tmp_name) / f"pair{i}-n{n}", extra)
                    walls[n].append(run.wall)
                    pair_diffs += [f"pair {i + 1}: {d}" for d in compare_runs(runs[0], run)]
                    progress(f"pair {i + 1}/{pairs}, -n {n}: {run.wall:.1f} s ({run.summary()})")
    base = runs[0]
    results: list[Ratio] = []
    table: list[dict[str, Any]] = []
    diffs_by_n: dict[int, list[str]] = {}
    for run in runs:
        diffs = compare_runs(base, run) if run is not base else []
        diffs_by_n[run.workers] = diffs
        table.append(
            {
                "workers": run.workers,
                "wall_s": round(run.wall, 2),
                "tests": run.tests,
                "outcomes": run.summary(),
                "tests_per_min": round(run.per_minute, 2),
                "speedup": round(run.per_minute / base.per_minute, 3) if base.per_minute else None,
                "differences_vs_first": diffs,
                **{k: round(v, 1) for k, v in memory_line(run).items()},
            }
        )
        for d in diffs:
            print(f"  DIFFERENCE -n {run.workers}: {d}")
    by_n = {r.workers: r for r in runs}
    if 1 in by_n and 2 in by_n:
        r1, r2 = by_n[1], by_n[2]
        results.append(
            Ratio(
                "scaling_n2",
                "example suite throughput, -n 2 / -n 1",
                r2.per_minute / r1.per_minute,
                TARGET_N2,
                detail=f"-n 1 {r1.wall:.1f} s, -n 2 {r2.wall:.1f} s for {r1.tests} tests",
            )
        )
    for run in runs[1:]:
        if run.workers not in (2, 8):
            results.append(
                Ratio(
                    f"scaling_n{run.workers}",
                    f"example suite throughput, -n {run.workers} / -n {base.workers}",
                    run.per_minute / base.per_minute,
                    None,
                    detail=f"{run.wall:.1f} s",
                )
            )
    if 2 in walls and 8 in walls:
        w2, w8 = statistics.median(walls[2]), statistics.median(walls[8])
        results.append(
            Ratio(
                "scaling_n8_vs_n2",
                "example suite wall time, -n 8 / -n 2 (2 cores)",
                w8 / w2,
                TARGET_N8_VS_N2,
                higher_is_better=False,
                detail=f"medians of {len(walls[2])} runs each: -n 2 {w2:.1f} s ({', '.join(f'{w:.1f}' for w in walls[2])}), "
                f"-n 8 {w8:.1f} s ({', '.join(f'{w:.1f}' for w in walls[8])}); "
                f"{'pinned to 2 CPUs' if cpus else f'{os.cpu_count()} CPUs'}; load average {os.getloadavg()[0]:.2f}"
                + (f"; DIFFERENT RESULTS in the pairs: {'; '.join(pair_diffs)[:300]}" if pair_diffs else ""),
            )
        )
    if pair_diffs:
        diffs_by_n[-1] = pair_diffs  # the extra pairs must give the same results too
    identical = all(not d for d in diffs_by_n.values())
    results.append(
        Ratio(
            "scaling_identical",
            f"runs with results identical to -n {base.workers} (outcomes + metrics in band)",
            sum(1 for d in diffs_by_n.values() if not d) / len(diffs_by_n),
            1.0,
            detail="identical" if identical else "; ".join(d for ds in diffs_by_n.values() for d in ds)[:400],
        )
    )
    emit(results, args.json, {"scaling_table": table})
    return 0


if __name__ == "__main__":
    sys.exit(main())
