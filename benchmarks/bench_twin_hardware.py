"""Issue 20's real-robot criteria on hardware-like TurtleBot3 recordings of 60 s and 120 s.

    .venv/bin/python benchmarks/bench_twin_hardware.py [--quick] [--json out.json]

The recordings come from tests/twin/hwlike.py (a per-wheel plant after the TurtleBot3 firmware,
not our simulator): a ROS 1 bag with plain Twist commands and a slow robot, and a rosbag2 MCAP
with TwistStamped commands from an unsynchronised clock. For each, as a user runs them
(subprocesses, cold imports included): ``simtwin calibrate``, ``simtwin validate --replay``
(nominal) and ``simtwin validate --replay --twin`` (calibrated). Printed per recording: the
calibrated linear velocity-tracking error (target < 7 %), the median 1 s windowed position error
(target < 1.5 cm), how many metrics got worse than nominal (target 0), and the wall and CPU time of
calibrate and validate (target < 30 s each; the load average is printed: 2 shared cores).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, ROOT, Ratio, arg_parser, emit, progress

sys.path.insert(0, str(ROOT / "tests"))
from twin.hwlike import Hardware, generate, write  # the test-data generator (tests/twin), not a package module

CASES: list[tuple[str, float, str, bool, Hardware]] = [
    ("burger ROS 1 bag, Twist", 60.0, "ros1", False, Hardware(seed=60)),
    (
        "burger ROS 1 bag, Twist, slow motors",
        120.0,
        "ros1",
        False,
        Hardware(seed=120, motor_tau=0.12, motor_accel=0.7, transport_delay=0.07, transport_jitter=0.02),
    ),
    ("burger MCAP, TwistStamped, unsynced", 120.0, "mcap", True, Hardware(seed=121, clock_offset=-3.0)),
]


def run(args: list[str], cwd: Path) -> tuple[int, float, float]:
    """Exit code, wall time and CPU time (user + sys of the child) of one ``simtwin`` command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run([PYTHON, "-m", "pytest_simtwin.cli", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"simtwin {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, wall, cpu


def one_case(name: str, duration: float, kind: str, stamped: bool, hw: Hardware, folder: Path) -> dict[str, Any]:
    bag = write(generate(duration, hw), folder / ("rec.bag" if kind == "ros1" else "rec"), kind, stamped_cmd=stamped)
    env_free = {k: v for k, v in os.environ.items() if k != "SIMTWIN_TWIN_OVERRIDES"}
    os.environ.clear()
    os.environ.update(env_free)
    progress(f"{name} ({duration:g} s): calibrate")
    rc_cal, cal_wall, cal_cpu = run(["calibrate", str(bag), "--out", "cal.yaml"], folder)
    progress(f"{name}: validate nominal, calibrated")
    _, nom_wall, nom_cpu = run(["validate", str(bag), "--replay", "--out", "nominal", "--no-png"], folder)
    _, val_wall, val_cpu = run(["validate", str(bag), "--replay", "--twin", "cal.yaml", "--out", "calibrated"], folder)
    before = json.loads((folder / "nominal" / "metrics.json").read_text())
    after = json.loads((folder / "calibrated" / "metrics.json").read_text())
    worse = [
        k for k, rec in after["metrics"].items() if abs(rec["value"]) > abs(before["metrics"][k]["value"]) * 1.02 + 1e-4
    ]
    return {
        "name": name,
        "duration_s": duration,
        "calibrate_accepted": rc_cal == 0,
        "nominal_linear_error": before["metrics"]["velocity_tracking"]["extra"]["linear_error"],
        "linear_error": after["metrics"]["velocity_tracking"]["extra"]["linear_error"],
        "angular_error": after["metrics"]["velocity_tracking"]["extra"]["angular_error"],
        "nominal_median_m": before["metrics"]["position_error"]["extra"]["median"],
        "median_m": after["metrics"]["position_error"]["extra"]["median"],
        "worse": worse,
        "values": {k: (before["metrics"][k]["value"], after["metrics"][k]["value"]) for k in after["metrics"]},
        "calibrate_s": cal_wall,
        "calibrate_cpu_s": cal_cpu,
        "validate_s": max(nom_wall, val_wall),
        "validate_cpu_s": max(nom_cpu, val_cpu),
    }


def main() -> int:
    ap = arg_parser(__doc__)
    args = ap.parse_args()
    cases = CASES[:1] if args.quick else CASES
    rows = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="simtwin-bench-hw-") as tmp:
        for i, case in enumerate(cases):
            folder = Path(tmp) / f"c{i}"
            folder.mkdir()
            rows.append(one_case(*case, folder))
    results: list[Ratio] = []
    for i, r in enumerate(rows):
        tag = f"{r['name']} {r['duration_s']:g} s"
        print(
            f"{tag}: linear velocity error nominal {r['nominal_linear_error']:.1%} -> calibrated {r['linear_error']:.1%}"
            f" (angular {r['angular_error']:.1%}); 1 s window median {r['nominal_median_m'] * 100:.2f} -> "
            f"{r['median_m'] * 100:.2f} cm; worse metrics: {r['worse'] or 'none'}; calibrate {r['calibrate_s']:.1f} s "
            f"(cpu {r['calibrate_cpu_s']:.1f} s), validate {r['validate_s']:.1f} s (cpu {r['validate_cpu_s']:.1f} s)"
        )
        results += [
            Ratio(f"twin_hw{i}_velocity", f"{tag}: calibrated velocity error (%)", r["linear_error"] * 100, 7.0,
                  higher_is_better=False, detail=f"nominal {r['nominal_linear_error']:.1%}"),
            Ratio(f"twin_hw{i}_window", f"{tag}: 1 s window median (cm)", r["median_m"] * 100, 1.5,
                  higher_is_better=False, detail=f"nominal {r['nominal_median_m'] * 100:.2f} cm"),
            Ratio(f"twin_hw{i}_no_worse", f"{tag}: metrics no worse than nominal", float(len(r["values"]) - len(r["worse"])),
                  float(len(r["values"])), detail="worse: " + (", ".join(r["worse"]) or "none")),
            Ratio(f"twin_hw{i}_calibrate", f"{tag}: calibrate wall time (s)", r["calibrate_s"], 30.0,
                  higher_is_better=False, detail=f"cpu {r['calibrate_cpu_s']:.1f} s"),
            Ratio(f"twin_hw{i}_validate", f"{tag}: validate wall time (s)", r["validate_s"], 30.0,
                  higher_is_better=False, detail=f"cpu {r['validate_cpu_s']:.1f} s"),
        ]  # fmt: skip
    print(f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores)")
    emit(results, args.json, {"cases": rows, "load_start": load0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
