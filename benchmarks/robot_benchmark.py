"""Benchmark of the robot helper: wall time of commanded motion, sim-time stepping vs clock timing.

For ``robot.send_velocity(0.5, 0.0, D)`` on the embedded simulator started at ``--rtf 1`` it prints
the wall time per call and the ratio sim seconds / wall seconds:

  * stepped (the default: own cmd_vel + control services): runs as fast as the simulator steps,
    target ratio > 1 (faster than real time at rtf 1) and the same distance at any rtf;
  * clocked (no control: a 20 Hz command stream timed by /clock): ratio ~1 at rtf 1, for reference;
  * the distance spread over the repetitions of each mode (sim-time stepping: ~0).

Usage: .venv/bin/python benchmarks/robot_benchmark.py [--repeat 5] [--duration 2.0]
The load average is printed: numbers are only comparable at similar load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.helpers.robot import Robot
from pytest_simtwin.ros import domains
from pytest_simtwin.runtime.session import SimSession, WorkerInfo
from pytest_simtwin.runtime.settings import Settings


def run(repeat: int, duration: float, rtf: float) -> None:
    settings = Settings(
        backend="embedded",
        sim=SimConfig(rtf=rtf, start_timeout=60.0),
        domain_ids=tuple(domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)),
        reset="test",
        timeout=60.0,
        artifacts=Path(tempfile.mkdtemp(prefix="simtwin-robot-bench-")),
    )
    with SimSession(settings, WorkerInfo("robot_bench", 3, 8)) as session:
        for mode in ("stepped", "clocked"):
            walls: list[float] = []
            dists: list[float] = []
            for _ in range(repeat):
                session.begin_test(settings.sim, "test", scope="bench")
                control = session.control_or_none() if mode == "stepped" else None
                robot = Robot(session._require_ros(), control, session.topics())
                robot.wait_for_odom()
                t0 = time.monotonic()
                robot.send_velocity(0.5, 0.0, duration)
                walls.append(time.monotonic() - t0)
                dists.append(robot.distance_travelled)
            wall = statistics.median(walls)
            print(
                f"rtf {rtf:g} {mode:8s}: send_velocity(0.5, 0, {duration:g}) median wall {wall:.3f} s "
                f"(min {min(walls):.3f}, max {max(walls):.3f}); sim/wall ratio {duration / wall:.2f}; "
                f"distance {statistics.mean(dists):.4f} m, spread {max(dists) - min(dists):.2e} m"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for rtf in (1.0, 0.0):
        run(args.repeat, args.duration, rtf)


if __name__ == "__main__":
    main()
