"""Start-to-ready latency of the docker backend beside the embedded backend.

Measures, for each backend, the wall time from ``start()`` to the first ``/odom`` message in the test
process (``wait_ready``), then the stop time, over N alternating trials on one leased domain with one
long-lived RosSession (as a pytest worker has). Prints median / p90 / max and the docker/embedded
ratio; the target is a docker median under 1.5 s.

    .venv/bin/python benchmarks/docker_benchmark.py [--trials 10] [--image pytest-simtwin/sim:0.1.0]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_simtwin.backends.base import SimConfig, backend_class
from pytest_simtwin.ros import domains
from pytest_simtwin.ros import environment as rosenv
from pytest_simtwin.ros.session import RosSession

TARGET_S = 1.5


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.3f} s  p90 {p90:.3f} s  max {ordered[-1]:.3f} s  (n={len(ordered)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--image", default=None, help="simulator image (default: pytest-simtwin/sim:<version>)")
    parser.add_argument("--backends", default="embedded,docker")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    ready: dict[str, list[float]] = {n: [] for n in names}
    stop: dict[str, list[float]] = {n: [] for n in names}
    ids = domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)
    with domains.acquire_domain(ids, owner="docker-benchmark", prefer=ids[len(ids) // 2]) as lease:
        env = rosenv.ros_environment(lease.domain_id, lease.partition)
        with RosSession(lease.domain_id, env) as ros, tempfile.TemporaryDirectory() as tmp:
            cfg = SimConfig(image=args.image, start_timeout=60.0)
            for trial in range(args.trials):
                for name in names:
                    backend = backend_class(name)(cfg, lease=lease, ros=ros, env=env, workdir=Path(tmp) / name)
                    t0 = time.monotonic()
                    try:
                        backend.start()
                        backend.wait_ready()
                        t1 = time.monotonic()
                    finally:
                        t_stop = time.monotonic()
                        backend.stop()
                        t2 = time.monotonic()
                    ready[name].append(t1 - t0)
                    stop[name].append(t2 - t_stop)
                    print(f"trial {trial + 1:2d} {name:8s} ready {t1 - t0:.3f} s  stop {t2 - t_stop:.3f} s", flush=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nstart() -> first /odom in the test process (load average {load} on {os.cpu_count()} CPUs)")
    for name in names:
        print(f"  {name:8s} {_stats(ready[name])}; stop {statistics.median(stop[name]):.3f} s")
    if "docker" in ready and "embedded" in ready:
        med_d, med_e = statistics.median(ready["docker"]), statistics.median(ready["embedded"])
        print(f"  docker / embedded median ratio: {med_d / med_e:.2f}x (+{med_d - med_e:.3f} s for the container)")
        verdict = "meets" if med_d < TARGET_S else "MISSES"
        print(f"  docker median {med_d:.3f} s {verdict} the {TARGET_S:.1f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
