"""Twin validation speed: 60 s of real data replayed in the simulator, scored and rendered.

Target (issue 7): replay + score + render of 60 s in under 10 s wall. Prints each phase, the total
and its ratio to the target (< 1.0 meets it). Run from the repository root:

    .venv/bin/python benchmarks/twin_benchmark.py [--real tests/twin/data/twin_real_60s.json] [--repeat 3]

Without ``--real`` it first drives the 60 s scenario in the simulator and synthesises the real run
(5 mm noise), like ``simtwin synth --scenario 60``. Needs the embedded simulator (no Docker).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 10.0
ROOT = Path(__file__).resolve().parents[1]
OPEN_WORLD = ROOT / "tests" / "twin" / "data" / "open_world.sdf"


def _cpu_of(pid: int | None) -> float:
    """User + system CPU seconds of a process (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, help="60 s real run (JSON or bag) with /cmd_vel")
    ap.add_argument("--repeat", type=int, default=3, help="replay+score+render repetitions (default 3)")
    ap.add_argument("--world", type=Path, default=OPEN_WORLD)
    args = ap.parse_args()

    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, parse_domain_range
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.settings import Settings
    from pytest_simtwin.twin.calibrate import calibrate, nominal_from_sdf
    from pytest_simtwin.twin.loaders import load_trajectory
    from pytest_simtwin.twin.replay import replay
    from pytest_simtwin.twin.report import render_png
    from pytest_simtwin.twin.scoring import validate
    from pytest_simtwin.twin.synth import SynthParams, scenario_trajectory, synthesize

    out = Path(tempfile.mkdtemp(prefix="twin-bench-"))
    sim_cfg = SimConfig(world=args.world.resolve(), rtf=0.0)
    settings = Settings(
        backend="embedded",
        sim=sim_cfg,
        domain_ids=tuple(parse_domain_range(DEFAULT_DOMAIN_RANGE)),
        reset="none",
        timeout=60.0,
        artifacts=out,
    )
    t0 = time.perf_counter()
    with SimSession(settings) as session:
        session.ensure(sim_cfg)
        start_s = time.perf_counter() - t0
        print(f"session + simulator start: {start_s:.2f} s (not part of the target: once per worker)")
        if args.real is not None:
            real = load_trajectory(args.real)
        else:
            base = replay(scenario_trajectory(60.0, seed=1), session)
            real = synthesize(base, SynthParams(position_noise=0.005, seed=2))
        print(f"real run: {real.source}, {real.duration:.1f} s, {len(real)} samples, {real.cmd_t.size} commands")
        totals: list[float] = []
        cpu_totals: list[float] = []
        proc = getattr(session.backend, "_proc", None)
        sim_pid = getattr(proc, "pid", None) if proc is not None else None
        for i in range(args.repeat):
            cpu = [time.process_time()]
            sim_cpu0 = _cpu_of(sim_pid)
            a = time.perf_counter()
            sim_run = replay(real, session)
            b = time.perf_counter()
            cpu.append(time.process_time())
            sim_cpu = _cpu_of(sim_pid) - sim_cpu0
            result = validate(real, sim_run)
            c = time.perf_counter()
            cpu.append(time.process_time())
            png = render_png(result, out / f"validation_report_{i}.png")
            d = time.perf_counter()
            cpu.append(time.process_time())
            totals.append(d - a)
            cpu_totals.append(cpu[3] - cpu[0] + sim_cpu)
            print(
                f"run {i + 1}: replay {b - a:.2f} s ({sim_run.duration:.1f} s sim, {len(sim_run)} poses, "
                f"{sim_run.meta.get('segments')} commands), score {c - b:.2f} s, render {d - c:.2f} s "
                f"({len(png) // 1024} KiB) -> {d - a:.2f} s wall; CPU: simulator {sim_cpu:.2f} s, "
                f"this process replay {cpu[1] - cpu[0]:.2f} s, "
                f"score {cpu[2] - cpu[1]:.2f} s, render {cpu[3] - cpu[2]:.2f} s; load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; verdict {result.verdict}"
            )
        nominal = nominal_from_sdf(
            ROOT / "pytest_simtwin" / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"
        )
        e = time.perf_counter()
        calibrate(real, nominal)
        print(f"calibrate (5 parameters, 60 s): {time.perf_counter() - e:.2f} s")
    med = statistics.median(totals)
    print(
        f"replay+score+render of {real.duration:.0f} s: median {med:.2f} s, best {min(totals):.2f} s; "
        f"target {TARGET_S:.0f} s -> ratio {med / TARGET_S:.2f} ({'meets' if med < TARGET_S else 'MISSES'} the target)"
    )
    cmed = statistics.median(cpu_totals)
    print(
        f"CPU seconds (simulator + this process) per run: median {cmed:.2f} s -> ratio {cmed / TARGET_S:.2f} "
        "(what the wall time approaches on an idle machine with two cores)"
    )
    return 0 if med < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
