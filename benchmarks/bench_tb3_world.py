"""TurtleBot3 waffle in turtlebot3_world (tests/robots/turtlebot3, as the turtlebot3_gazebo launch spawns it):
start to first /odom with the fork server, and free-running real-time factor with its lidar.

* plugin path: a fresh ``SimSession`` on the embedded backend (domain lease, private ROS context, the
  simulator forked from the warm fork server, its first odometry and control answered) with
  ``--simtwin-world turtlebot3_world.world --simtwin-robot turtlebot3_waffle/model.sdf
  --simtwin-spawn-pose=-2,-0.5,0.01`` (the launch file's pose); target < 1 s. The processed-mesh cache is warmed by one untimed start, as any run after
  the first finds it;
* simulator alone: fork server spawn -> first /odom at an already running subscriber
  (``sim_benchmark.bench_startup``), for comparison with the built-in arena's 0.5 s target;
* free-running (``--rtf 0``) RTF of ``simtwin-sim`` with the waffle's 360-ray lidar at its 10 Hz and its
  200 Hz IMU (both computed whether or not anyone subscribes), per wall and per CPU second
  (``sim_benchmark.bench_rtf``); target >= 50x; and the physics + lidar alone, without ROS
  (``tb3_world_benchmark.run``), for reference.

    .venv/bin/python benchmarks/bench_tb3_world.py [--quick] [--starts 10] [--seconds 5] [--json out.json]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim_benchmark  # start -> first /odom and free-running RTF of a simulator process (reused)
import tb3_world_benchmark  # the physics-only RTF of the same world (reused)
from _common import Ratio, arg_parser, emit, fmt_stats, progress, settings, stats

TB3 = tb3_world_benchmark.TB3
WORLD = TB3 / "worlds" / "turtlebot3_world.world"
ROBOT = TB3 / "models" / "turtlebot3_waffle" / "model.sdf"
POSE = "--robot-pose=-2.0,-0.5,0.01,0,0,0"  # turtlebot3_world.launch.py: x -2.0, y -0.5, z 0.01
FIRST_ODOM_TARGET = 1.0  # seconds, with the fork server
RTF_TARGET = 50.0


def plugin_starts(starts: int, tmp: Path) -> list[float]:
    """Seconds from nothing to the first odometry with control answered (``SimSession.ensure``), per start."""
    from pytest_simtwin.backends.base import SimConfig
    from pytest_simtwin.runtime.session import SimSession, WorkerInfo

    # what --simtwin-world / --simtwin-robot / --simtwin-spawn-pose=-2,-0.5,0.01 configure
    cfg = SimConfig(world=WORLD, robot=ROBOT, spawn_pose=(-2.0, -0.5, 0.01, 0.0, 0.0, 0.0), rtf=1.0, start_timeout=60.0)
    times: list[float] = []
    for i in range(starts + 1):  # the first (untimed) one fills the processed-mesh cache
        t0 = time.monotonic()
        with SimSession(settings("embedded", cfg, tmp / "plugin"), WorkerInfo("bench", 5, 8)) as session:
            session.ensure(cfg)
            elapsed = time.monotonic() - t0
        if i:
            times.append(elapsed)
        progress(f"plugin start {i}/{starts}{' (warm-up, untimed)' if not i else ''}: {elapsed:.3f} s")
    return times


def simulator_measures(starts: int, seconds: float, tmp: Path) -> tuple[list[float], list[float], tuple[float, float]]:
    """(fork -> first /odom times, their CPU seconds, (RTF per wall second, per CPU second))."""
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
    from pytest_simtwin.ros.environment import ros_environment
    from pytest_simtwin.ros.session import RosSession

    args = (str(WORLD), "--robot", str(ROBOT), POSE)
    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner="bench_tb3_world", prefer=ids[len(ids) // 4]) as lease:
        env = ros_environment(lease.domain_id, lease.partition)
        with RosSession(lease.domain_id, env, name="bench_tb3_first_odom") as ros:
            sim_benchmark.bench_startup(ros, env, 1, tmp / "sim.log", True, args)  # warm-up, untimed
            times, cpu = sim_benchmark.bench_startup(ros, env, starts, tmp / "sim.log", True, args)
        with RosSession(lease.domain_id, env, name="bench_tb3_rtf") as ros:
            rtf = sim_benchmark.bench_rtf(ros, env, ROBOT, seconds, False, tmp / "sim.log", (str(WORLD), POSE))
    return times, cpu, rtf


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--starts", type=int, help="starts per measurement (default 10, quick 3)")
    ap.add_argument("--seconds", type=float, help="wall seconds of the RTF run (default 5, quick 2)")
    args = ap.parse_args(argv)
    starts = args.starts or (3 if args.quick else 10)
    seconds = args.seconds or (2.0 if args.quick else 5.0)
    # The launch files set GZ_SIM_RESOURCE_PATH to the models folder; the simulators inherit it.
    os.environ["GZ_SIM_RESOURCE_PATH"] = str(TB3 / "models")
    results: list[Ratio] = []
    with tempfile.TemporaryDirectory(prefix="bench-tb3-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["SIMTWIN_MESH_CACHE"] = str(tmp / "mesh-cache")  # starts empty: the warm-up fills it
        progress(f"plugin path (SimSession, embedded backend, fork server): {starts} starts")
        plugin = stats(plugin_starts(starts, tmp))
        results.append(
            Ratio(
                "tb3_world_first_odom_plugin",
                "TB3 waffle in turtlebot3_world: start to first /odom [s], plugin path with the fork server",
                plugin["median"],
                FIRST_ODOM_TARGET,
                higher_is_better=False,
                detail=f"{fmt_stats(plugin)}; median/target {plugin['median'] / FIRST_ODOM_TARGET:.2f}",
                numbers={"plugin": plugin},
            )
        )
        progress(f"simulator alone: fork -> first /odom, {starts} starts; then RTF for {seconds:g} s")
        times, cpu, (rtf, per_cpu) = simulator_measures(starts, seconds, tmp)
        fork = stats(times)
        results.append(
            Ratio(
                "tb3_world_first_odom_fork",
                "TB3 waffle in turtlebot3_world: fork server spawn -> first /odom [s]",
                fork["median"],
                FIRST_ODOM_TARGET,
                higher_is_better=False,
                detail=f"{fmt_stats(fork)}; CPU of the simulator by then: median {stats(cpu)['median']:.3f} s",
                numbers={"fork": fork},
            )
        )
        physics = tb3_world_benchmark.run(WORLD, ROBOT, 10.0, tmp / "mesh-cache")
        results.append(
            Ratio(
                "tb3_world_rtf",
                "TB3 waffle in turtlebot3_world: free-running RTF with its 10 Hz lidar",
                rtf,
                RTF_TARGET,
                detail=f"{rtf / RTF_TARGET:.2f}x the target; per CPU second of the simulator {per_cpu:.0f}x; "
                f"physics + lidar alone (no ROS) {physics['rtf']:.0f}x",
                numbers={"rtf": rtf, "rtf_per_cpu": per_cpu, "physics_only": physics["rtf"]},
            )
        )
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
