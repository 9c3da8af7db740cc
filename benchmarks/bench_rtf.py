"""Simulator real-time factor with and without the lidar, and 60 s twin validation wall time.

* free-running (``--rtf 0``) real-time factor of ``simtwin-sim`` on the built-in arena with the
  built-in robot (lidar at 10 Hz) and with a copy of that robot minus its lidar sensor (generated in
  a temp dir), measured by ``sim_benchmark.bench_rtf`` (sim seconds per wall second, and per CPU
  second of the simulator process, which is load-independent); target >= 100x with the lidar;
* twin validation: ``twin_benchmark.py`` on the 60 s recorded run (replay + score + render),
  target < 10 s.

    .venv/bin/python benchmarks/bench_rtf.py [--quick] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim_benchmark  # the simulator benchmark's RTF measurement (its owner's code, reused)
import twin_benchmark
from _common import PYTHON, ROOT, Ratio, arg_parser, emit, progress

TWIN_REAL = ROOT / "tests" / "twin" / "data" / "twin_real_60s.json"


def robot_without_lidar(directory: Path) -> Path:
    """The built-in robot SDF with every <sensor> removed (so the simulator computes no scans)."""
    src = ROOT / "pytest_simtwin" / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"
    text, count = re.subn(r"<sensor\b.*?</sensor>", "", src.read_text(), flags=re.S)
    if count == 0:
        raise RuntimeError(f"{src} has no <sensor> to remove: update bench_rtf.robot_without_lidar")
    out = directory / "simtwin_bot_no_lidar.sdf"
    out.write_text(text)
    return out


def measure_rtf(seconds: float, tmp: Path) -> dict[str, tuple[float, float]]:
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
    from pytest_simtwin.ros.environment import ros_environment
    from pytest_simtwin.ros.session import RosSession

    robots = {
        "lidar 10 Hz": sim_benchmark.robot_with_lidar_rate(10.0, tmp),
        "no lidar": robot_without_lidar(tmp),
    }
    out: dict[str, tuple[float, float]] = {}
    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner="bench_rtf", prefer=ids[len(ids) // 5]) as lease:
        env = ros_environment(lease.domain_id, lease.partition)
        with RosSession(lease.domain_id, env, name="bench_rtf") as ros:
            for label, robot in robots.items():
                out[label] = sim_benchmark.bench_rtf(ros, env, robot, seconds, False, tmp / "sim.log")
                progress(f"RTF {label}: {out[label][0]:.1f}x wall, {out[label][1]:.1f}x per CPU second")
    return out


def measure_twin(repeat: int) -> tuple[float | None, str]:
    """Median replay+score+render seconds of the 60 s run (twin_benchmark.py), and its output tail."""
    res = subprocess.run(
        [PYTHON, str(Path(twin_benchmark.__file__)), "--real", str(TWIN_REAL), "--repeat", str(repeat)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    text = res.stdout + res.stderr
    match = re.search(r"replay\+score\+render of \d+ s: median ([\d.]+) s", text)
    return (float(match.group(1)) if match else None), text.strip()[-1500:]


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--seconds", type=float, help="wall seconds per RTF measurement (default 5, quick 2)")
    ap.add_argument("--twin-repeat", type=int, help="twin validation repetitions (default 3, quick 1)")
    args = ap.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    results: list[Ratio] = []
    with tempfile.TemporaryDirectory(prefix="bench-rtf-") as tmp_name:
        rtf = measure_rtf(seconds, Path(tmp_name))
    (lidar_wall, lidar_cpu), (bare_wall, bare_cpu) = rtf["lidar 10 Hz"], rtf["no lidar"]
    numbers = {"lidar": {"wall": lidar_wall, "cpu": lidar_cpu}, "no_lidar": {"wall": bare_wall, "cpu": bare_cpu}}
    results.append(
        Ratio(
            "rtf_lidar",
            "free-running RTF with the lidar (10 Hz) / 100x target",
            lidar_wall / sim_benchmark.RTF_TARGET,
            1.0,
            detail=f"{lidar_wall:.1f}x real time ({lidar_cpu:.1f}x per CPU second of the simulator)",
            numbers=numbers,
        )
    )
    results.append(
        Ratio(
            "rtf_no_lidar",
            "free-running RTF without the lidar / 100x target",
            bare_wall / sim_benchmark.RTF_TARGET,
            1.0,
            detail=f"{bare_wall:.1f}x real time ({bare_cpu:.1f}x per CPU second); lidar cost: "
            f"RTF without / with = {bare_wall / lidar_wall:.2f} (per CPU second {bare_cpu / lidar_cpu:.2f})",
        )
    )
    progress("twin validation of the 60 s run (twin_benchmark.py) ...")
    twin_s, tail = measure_twin(args.twin_repeat or (1 if args.quick else 3))
    if twin_s is None:
        results.append(
            Ratio("twin_60s", "60 s twin validation, target / wall", None, 1.0, skipped=f"no result: {tail[-300:]}")
        )
    else:
        results.append(
            Ratio(
                "twin_60s",
                "60 s twin validation (replay+score+render), 10 s target / wall",
                twin_benchmark.TARGET_S / twin_s,
                1.0,
                detail=f"median {twin_s:.2f} s wall",
                numbers={"twin_wall_s": twin_s},
            )
        )
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
