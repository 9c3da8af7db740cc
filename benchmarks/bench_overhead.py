"""What installing pytest-simtwin costs a pytest run that uses no simulator (unit tests, IDE discovery).

Runs the same one-test file in fresh processes, alternately with the plugin and with ``-p no:simtwin``
(A/B pairs, so a drift in machine load hits both), and prints the medians and the median of the
per-pair differences (the value compared with the target).
Target (issue 19): within 20 ms. Bytecode is cached as a user's Python does (see _common).

    .venv/bin/python benchmarks/bench_overhead.py [--quick] [--pairs 21] [--json out.json]
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, Ratio, arg_parser, emit, progress

TARGET_MS = 20.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: list[float] = []  # CPU seconds of each run, in order (less sensitive to other processes than wall time)


def one_run(folder: Path, *extra: str) -> float:
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_unit.py"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    CPU.append(_children_cpu() - c0)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--pairs", type=int, help="A/B pairs (default 21, quick 5)")
    args = ap.parse_args(argv)
    pairs = args.pairs or (5 if args.quick else 21)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_unit.py").write_text("def test_unit():\n    assert 1 + 1 == 2\n")
        one_run(folder)  # warm the file system caches and .pyc files
        one_run(folder, "-p", "no:simtwin")
        with_plugin, without, deltas, cpu_deltas = [], [], [], []
        for i in range(pairs):
            with_plugin.append(one_run(folder))
            cpu_with = CPU[-1]
            without.append(one_run(folder, "-p", "no:simtwin"))
            deltas.append(with_plugin[-1] - without[-1])
            cpu_deltas.append(cpu_with - CPU[-1])
            if (i + 1) % 5 == 0 or i + 1 == pairs:
                progress(f"{i + 1}/{pairs} pairs")
    a, b = statistics.median(with_plugin), statistics.median(without)
    delta_ms = (a - b) * 1000
    paired_ms = statistics.median(deltas) * 1000
    # The value is the median of the per-pair differences: a load spike during one run of a pair
    # moves it less than it moves the difference of the two medians (both are printed).
    detail = (
        f"{pairs} A/B pairs: medians with pytest-simtwin {a * 1000:.0f} ms, -p no:simtwin {b * 1000:.0f} ms "
        f"(difference {delta_ms:+.1f} ms); median of the per-pair differences {paired_ms:+.1f} ms; "
        f"CPU time (user+sys) per-pair difference {statistics.median(cpu_deltas) * 1000:+.1f} ms; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    result = Ratio(
        "overhead_no_sim",
        "pytest run without simulator tests, with the plugin - with -p no:simtwin [ms] (median of A/B pair differences)",
        paired_ms,
        TARGET_MS,
        higher_is_better=False,
        detail=detail,
        numbers={
            "with_ms": a * 1000,
            "without_ms": b * 1000,
            "paired_delta_ms": paired_ms,
            "paired_cpu_delta_ms": statistics.median(cpu_deltas) * 1000,
        },
    )
    emit([result], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
