"""What installing pytest-simtwin costs a pytest run that uses no simulator (unit tests, IDE discovery).

Runs the same one-test file in fresh processes, with the plugin and with ``-p no:simtwin``, and
prints two measures of the difference:

* instructions (the verdict, when valgrind is installed): ``valgrind --tool=callgrind`` counts the
  instructions of one run of each (the same count, within 0.1 %, run after run and whatever else the
  machine does); the extra fraction times the median wall time of the ``-p no:simtwin`` runs is what
  the plugin costs on this machine, in ms;
* wall time: A/B pairs whose order alternates (AB, BA, ...: a drift or a first-run effect hits both
  sides), the median of the per-pair differences, beside the same median for A/A pairs of two
  identical ``-p no:simtwin`` runs: the noise floor of this machine. On a shared 2-core VM that floor
  was +-20 ms, as large as the target, hence the instruction count.

Target (issue 19): within 20 ms. Bytecode is cached as a user's Python does (see _common).

    .venv/bin/python benchmarks/bench_overhead.py [--quick] [--pairs 21] [--json out.json]
"""

from __future__ import annotations

import os
import re
import resource
import shutil
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
WITHOUT = ("-p", "no:simtwin")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _command(*extra: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_unit.py"]


def one_run(folder: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run(_command(*extra), cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - t0, _children_cpu() - c0


def pairs_of(
    folder: Path, a: tuple[str, ...], b: tuple[str, ...], n: int
) -> tuple[list[float], list[float], list[float]]:
    """Wall times of a and of b, and the per-pair CPU differences a - b, the order alternating per pair."""
    wall_a, wall_b, cpu_diff = [], [], []
    for i in range(n):
        if i % 2 == 0:
            (wa, ca), (wb, cb) = one_run(folder, *a), one_run(folder, *b)
        else:
            (wb, cb), (wa, ca) = one_run(folder, *b), one_run(folder, *a)
        wall_a.append(wa)
        wall_b.append(wb)
        cpu_diff.append(ca - cb)
    return wall_a, wall_b, cpu_diff


def instructions(folder: Path, *extra: str) -> int | None:
    """Instructions of one run under callgrind (children traced: the ROS wheels' .pth re-executes Python)."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory() as out:
        res = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--trace-children=yes",
                f"--callgrind-out-file={out}/cg.%p",
                *_command(*extra),
            ],
            cwd=folder,
            capture_output=True,
            text=True,
            check=False,
        )
    counts = [int(n.replace(",", "")) for n in re.findall(r"Collected : ([\d,]+)", res.stderr)]
    return sum(counts) if res.returncode == 0 and counts else None


def _median_diff_ms(a: list[float], b: list[float]) -> float:
    return statistics.median(x - y for x, y in zip(a, b, strict=True)) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--pairs", type=int, help="A/B pairs (default 21, quick 5); as many A/A pairs")
    args = ap.parse_args(argv)
    pairs = args.pairs or (5 if args.quick else 21)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_unit.py").write_text("def test_unit():\n    assert 1 + 1 == 2\n")
        one_run(folder)  # warm the file system caches and .pyc files
        one_run(folder, *WITHOUT)
        with_plugin, without, cpu_deltas = pairs_of(folder, (), WITHOUT, pairs)
        progress(f"{pairs} A/B pairs")
        same_a, same_b, _ = pairs_of(folder, WITHOUT, WITHOUT, pairs)
        progress(f"{pairs} A/A pairs")
        ir_with, ir_without = instructions(folder), instructions(folder, *WITHOUT)
        progress("instruction counts" + ("" if ir_with and ir_without else ": valgrind unavailable"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    paired_ms, noise_ms = _median_diff_ms(with_plugin, without), _median_diff_ms(same_a, same_b)
    wall_detail = (
        f"{pairs} A/B pairs, order alternating: medians with pytest-simtwin {a * 1000:.0f} ms, -p no:simtwin "
        f"{b * 1000:.0f} ms; median of the per-pair differences {paired_ms:+.1f} ms (A/A pairs of identical runs: "
        f"{noise_ms:+.1f} ms, the noise floor); CPU time (user+sys) per-pair difference "
        f"{statistics.median(cpu_deltas) * 1000:+.1f} ms; load average {os.getloadavg()[0]:.2f}"
    )
    numbers = {
        "with_ms": a * 1000,
        "without_ms": b * 1000,
        "paired_delta_ms": paired_ms,
        "same_command_delta_ms": noise_ms,
        "paired_cpu_delta_ms": statistics.median(cpu_deltas) * 1000,
    }
    if ir_with and ir_without:
        extra = ir_with / ir_without - 1.0
        value = extra * b * 1000
        detail = (
            f"instructions (callgrind) {ir_with / 1e6:.0f} M with the plugin, {ir_without / 1e6:.0f} M with -p "
            f"no:simtwin: {extra * 100:+.2f} % of a {b * 1000:.0f} ms run; wall: {wall_detail}"
        )
        numbers.update(instructions_with=ir_with, instructions_without=ir_without, instruction_delta_ms=value)
        label = "pytest run without simulator tests, with the plugin - with -p no:simtwin [ms] (extra instructions x wall time)"
    else:
        value, detail = paired_ms, wall_detail + "; valgrind not installed: the wall-time pairs are the verdict"
        label = "pytest run without simulator tests, with the plugin - with -p no:simtwin [ms] (median of A/B pair differences)"
    result = Ratio("overhead_no_sim", label, value, TARGET_MS, higher_is_better=False, detail=detail, numbers=numbers)
    emit([result], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
