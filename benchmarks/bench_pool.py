"""SimPool start-up: N simulators from nothing to all ready (first /odom each), on this machine.

    .venv/bin/python benchmarks/bench_pool.py [--quick] [--n 8] [--json out.json]

Prints the wall time until all N are ready (target for N=8 on 2 cores: under 3 s), the per-member
ready times, and the ratio target / measured (>= 1 meets it). Also checks that nothing is left
running after the block.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Ratio, arg_parser, emit, fmt_stats, progress, stats

TARGET_S = 3.0  # issue: SimPool(n=8) ready in under 3 s on 2 cores


def main() -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--n", type=int, default=8, help="simulators per pool (default 8)")
    ap.add_argument("--repeat", type=int, help="pools to start (default 3, quick 1)")
    args = ap.parse_args()
    from pytest_simtwin.batch.pool import SimPool
    from pytest_simtwin.ros.domains import process_alive

    repeat = args.repeat or (1 if args.quick else 3)
    totals: list[float] = []
    members: list[float] = []
    leftovers = 0
    with tempfile.TemporaryDirectory(prefix="simtwin-bench-pool-") as tmp:
        for i in range(repeat):
            progress(f"pool {i + 1}/{repeat}: starting {args.n} simulators ...")
            t0 = time.monotonic()
            with SimPool(args.n, artifacts=Path(tmp) / f"p{i}", timeout=120.0) as pool:
                totals.append(time.monotonic() - t0)
                members.extend(m.ready_after for m in pool)
                pids = [m.pid for m in pool if m.pid]
            leftovers += sum(1 for p in pids if process_alive(p))
            progress(f"pool {i + 1}: all {args.n} ready after {totals[-1]:.2f} s")
    s = stats(totals)
    results = [
        Ratio(
            "pool_ready",
            f"SimPool(n={args.n}) ready, {TARGET_S:g} s target / wall",
            TARGET_S / s["median"],
            1.0,
            detail=f"all ready: {fmt_stats(s)}; per simulator: {fmt_stats(stats(members))}; "
            f"left running after the block: {leftovers}",
            numbers={"pool_ready_s": s["median"], "n": args.n, "leftovers": leftovers},
        )
    ]
    emit(results, args.json)
    return 0 if leftovers == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
