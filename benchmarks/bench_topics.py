"""What serving both command types, several robots and /tf costs the embedded simulator.

Prints:
  * start -> first /odom (forked from the warm fork server) with the default command subscription
    (Twist and TwistStamped: a second DDS participant) against ``--cmd-vel-type twist`` (one),
    starts interleaved, median and p90 of N each;
  * building tf2_msgs from its .msg in an empty cache (once per machine) and loading the cached build.

Usage: .venv/bin/python benchmarks/bench_topics.py [--starts 10]
The machine's load average is printed too: the numbers are only comparable at similar load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim_benchmark

from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
from pytest_simtwin.ros.environment import ros_environment
from pytest_simtwin.ros.session import RosSession


def _stats(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{name}: median {statistics.median(values):.3f} s, p90 {p90:.3f} s (n={len(values)})"


def _build_times() -> tuple[float, float]:
    code = (
        "import time; t = time.monotonic(); from pytest_simtwin.sim import msgbuild; "
        "msgbuild.ensure('tf2_msgs'); print(time.monotonic() - t)"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SIMTWIN_MSG_CACHE": cache}
        run = [sys.executable, "-c", code]
        fresh = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()[-1])
        cached = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()[-1])
    return fresh, cached


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=10)
    args = ap.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (numbers are only comparable at similar load)"
    )
    both: list[float] = []
    one: list[float] = []
    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="bench_topics") as lease:
        env = ros_environment(lease.domain_id, lease.partition)
        log = Path(tempfile.mkdtemp()) / "sim.log"
        with RosSession(lease.domain_id, env, name="bench_topics") as ros:
            sim_benchmark.bench_startup(ros, env, 1, log, True)  # warm the fork server
            for _ in range(args.starts):
                both += sim_benchmark.bench_startup(ros, env, 1, log, True)[0]
                one += sim_benchmark.bench_startup(ros, env, 1, log, True, ("--cmd-vel-type", "twist"))[0]
    print(_stats("start -> first /odom, Twist + TwistStamped (two participants, default)", both))
    print(_stats("start -> first /odom, --cmd-vel-type twist (one participant)", one))
    print(f"  cost of accepting both types: {statistics.median(both) - statistics.median(one):+.3f} s (median)")
    fresh, cached = _build_times()
    print(
        f"tf2_msgs: built from .msg in an empty cache in {fresh:.2f} s (once per machine); cached load {cached:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
