"""What installing pytest-simtwin costs a pytest run that uses no simulator (unit tests, IDE discovery).

Runs the same one-test file in fresh processes, alternately with the plugin and with ``-p no:simtwin``
(A/B pairs, so a drift in machine load hits both), and prints the medians and their difference.
Target (issue 19): within 20 ms.

    .venv/bin/python benchmarks/bench_overhead.py [--pairs 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 20.0


def one_run(folder: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "test_unit.py"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_unit.py").write_text("def test_unit():\n    assert 1 + 1 == 2\n")
        one_run(folder)  # warm the file system caches and .pyc files
        one_run(folder, "-p", "no:simtwin")
        with_plugin, without = [], []
        for _ in range(args.pairs):
            with_plugin.append(one_run(folder))
            without.append(one_run(folder, "-p", "no:simtwin"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    delta_ms = (a - b) * 1000
    print(f"pytest run without simulator tests, median of {args.pairs}: with pytest-simtwin {a * 1000:.0f} ms, "
          f"-p no:simtwin {b * 1000:.0f} ms, difference {delta_ms:+.0f} ms (target within {TARGET_MS:.0f} ms: "
          f"{'met' if delta_ms <= TARGET_MS else 'missed'})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"with_ms": a * 1000, "without_ms": b * 1000, "delta_ms": delta_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
