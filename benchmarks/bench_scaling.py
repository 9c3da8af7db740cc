"""Scaling of the example suite over xdist workers: wall time, throughput, memory, identical results.

Runs ``example_project``'s suite with ``-n 1, 2, 4, 8`` (quick: 1 and 2) and prints per run the wall
time, tests per minute, the peak RSS of each worker and each simulator (sampled from /proc every
0.25 s), and whether every test's outcome and metric values (within the baseline band) equal the
``-n 1`` run. Target: ``-n 2`` at least 1.7x the throughput of ``-n 1`` on 2 cores.

    .venv/bin/python benchmarks/bench_scaling.py [--quick] [--workers 1,2,4,8] [-k EXPR] [--json out.json]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Ratio, SuiteRun, arg_parser, compare_runs, emit, progress, run_suite

TARGET_N2 = 1.7


def memory_line(run: SuiteRun) -> dict[str, float]:
    kinds = run.memory.by_kind()
    out: dict[str, float] = {"peak_total_mib": run.memory.peak_total}
    for kind in ("worker", "simulator", "controller"):
        values = kinds.get(kind, [])
        if values:
            out[f"{kind}_median_mib"] = statistics.median(values)
            out[f"{kind}_max_mib"] = max(values)
            out[f"{kind}_count"] = len(values)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--workers", help="comma-separated -n values (default 1,2,4,8; quick 1,2)")
    ap.add_argument("-k", dest="keyword", help="pytest -k expression (a subset of the suite)")
    args = ap.parse_args(argv)
    counts = [int(n) for n in (args.workers or ("1,2" if args.quick else "1,2,4,8")).split(",")]
    extra = ["-k", args.keyword] if args.keyword else []
    runs: list[SuiteRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as tmp_name:
        for n in counts:
            progress(f"example suite with -n {n} ...")
            run = run_suite(n, Path(tmp_name) / f"n{n}", extra)
            runs.append(run)
            mem = memory_line(run)
            progress(
                f"-n {n}: {run.wall:.1f} s, {run.tests} tests ({run.summary()}), {run.per_minute:.1f} tests/min; "
                f"peak RSS per worker {mem.get('worker_max_mib', 0):.0f} MiB, per simulator "
                f"{mem.get('simulator_max_mib', 0):.0f} MiB, whole run {mem['peak_total_mib']:.0f} MiB"
            )
            if not run.tests:
                print(run.log.read_text()[-3000:])
                raise SystemExit(f"-n {n}: no results (exit {run.returncode}); log above")
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
        if run.workers != 2:
            results.append(
                Ratio(
                    f"scaling_n{run.workers}",
                    f"example suite throughput, -n {run.workers} / -n {base.workers}",
                    run.per_minute / base.per_minute,
                    None,
                    detail=f"{run.wall:.1f} s",
                )
            )
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
