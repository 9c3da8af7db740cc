"""Benchmark of the embedded simulator: start-up latency and free-running real-time factor.

Prints (and compares with the targets):
  * start -> first /odom received by an already running subscriber (median, p90 of N starts;
    target < 0.5 s), both ways the embedded backend starts a simulator: forked from the warm fork
    server (the default) and as a fresh process (``sys.executable -m pytest_simtwin.sim``,
    ``--simtwin-fork-server off``); the server's own one-time start is printed too;
  * free-running (``--rtf 0``) real-time factor with the lidar at 10 Hz on the default world, without
    and with a Python subscriber on every topic (target >= 100x);
  * physics alone in this process (no ROS), for reference.

Usage: .venv/bin/python benchmarks/sim_benchmark.py [--starts 20] [--seconds 3]
The machine's load average is printed too: the numbers are only comparable at similar load.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.control.client import ControlClient
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
from pytest_simtwin.ros.environment import ros_environment
from pytest_simtwin.ros.session import RosSession

STARTUP_TARGET = 0.5
RTF_TARGET = 100.0


def sim_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest_simtwin.sim", "--parent-pid", str(os.getpid()), *args]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all threads): a load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: Any) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def robot_with_lidar_rate(rate: float, directory: Path) -> Path:
    """The built-in robot with its lidar at ``rate`` Hz (the default model runs it at 5 Hz)."""
    src = Path(__file__).resolve().parents[1] / "pytest_simtwin/sim/defaults/models/simtwin_bot/model.sdf"
    text = re.sub(r"<update_rate>[^<]*</update_rate>", f"<update_rate>{rate:g}</update_rate>", src.read_text())
    out = directory / "simtwin_bot_lidar.sdf"
    out.write_text(text)
    return out


def bench_startup(
    ros: RosSession, env: dict[str, str], starts: int, log: Path, fork: bool, args: tuple[str, ...] = ()
) -> tuple[list[float], list[float]]:
    from nav_msgs.msg import Odometry

    from pytest_simtwin.backends import forkclient as _forkclient

    server = _forkclient.shared_server() if fork else None
    if fork and server is None:
        raise SystemExit("the fork server is not available (SIMTWIN_FORK_SERVER=0?)")
    buf = ros.subscribe("/odom", Odometry)
    times, cpu = [], []
    for _ in range(starts):
        before = buf.count
        proc: Any
        with log.open("ab") as f:
            t0 = time.monotonic()
            if server is not None:
                proc = server.spawn(sim_argv("--rtf", "1", *args)[3:], env=env, log_path=log)
            else:
                proc = subprocess.Popen(sim_argv("--rtf", "1", *args), env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda before=before: buf.count > before,  # type: ignore[misc]
                20.0,
                what="first /odom",
                abort=lambda proc=proc: "simulator exited" if proc.poll() is not None else None,  # type: ignore[misc]
            )
            times.append(time.monotonic() - t0)
            cpu.append(cpu_seconds(proc.pid))
        finally:
            stop(proc)
    return times, cpu


def bench_rtf(
    ros: RosSession,
    env: dict[str, str],
    robot: Path,
    seconds: float,
    subscribe: bool,
    log: Path,
    args: tuple[str, ...] = (),
) -> tuple[float, float]:
    """(sim seconds per wall second, sim seconds per CPU second of the simulator process); ``args``: more
    simulator arguments (a world, a pose)."""
    from nav_msgs.msg import Odometry
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState, LaserScan

    with log.open("ab") as f:
        proc = subprocess.Popen(
            sim_argv("--rtf", "0", "--robot", str(robot), *args), env=env, stdout=f, stderr=subprocess.STDOUT
        )
    try:
        # Ready through the control services: a topic subscription here would be a subscriber.
        control = ControlClient(ros, timeout=20.0)
        control.state()
        scans = None
        if subscribe:
            ros.subscribe("/odom", Odometry)
            scans = ros.subscribe("/scan", LaserScan)
            ros.subscribe("/clock", Clock)
            ros.subscribe("/joint_states", JointState)
            ros.subscribe("/simtwin/ground_truth", Odometry)
        s0, w0, c0 = control.state()["sim_time"], time.monotonic(), cpu_seconds(proc.pid)
        n0 = scans.count if scans else 0
        time.sleep(seconds)  # measuring an interval of wall time, not waiting for a condition
        st = control.state()
        w1, c1 = time.monotonic(), cpu_seconds(proc.pid)
        rtf = (st["sim_time"] - s0) / (w1 - w0)
        per_cpu = (st["sim_time"] - s0) / max(c1 - c0, 1e-3)
        if scans is not None:
            got = scans.count - n0
            expected = (st["sim_time"] - s0) * 10
            print(f"    subscriber received {got} of ~{expected:.0f} scans ({got / max(expected, 1):.0%})")
        return float(rtf), float(per_cpu)
    finally:
        stop(proc)


def bench_physics_only(robot: Path, seconds: float) -> tuple[float, float]:
    """Physics + lidar at 10 Hz + odometry reads in this process: (per wall second, per CPU second)."""
    from pytest_simtwin.sim.engine.physics import Physics
    from pytest_simtwin.sim.world.sdf import load_world

    world = load_world(None, robot)
    physics = Physics(world, seed=0)
    physics.set_command(0.3, 0.2)
    scan_every = round(0.1 / physics.step_size)
    t0, c0 = time.monotonic(), time.process_time()
    while time.monotonic() - t0 < seconds:
        physics.step(scan_every)
        physics.lidar_scan(0)
        physics.odometry()
    return physics.time / (time.monotonic() - t0), physics.time / max(time.process_time() - c0, 1e-3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (numbers are only comparable at similar load)"
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="sim_benchmark") as lease,
    ):
        env = ros_environment(lease.domain_id, lease.partition)
        log = Path(tmp) / "sim.log"
        robot = robot_with_lidar_rate(10.0, Path(tmp))
        with RosSession(lease.domain_id, env, name="sim_benchmark") as ros:
            from pytest_simtwin.backends import forkclient as _forkclient

            t0 = time.monotonic()
            _forkclient.shared_server()
            print(f"fork server ready (once per machine and run) in {time.monotonic() - t0:.3f} s")
            for fork, label in ((True, "forked from the warm server (default)"), (False, "fresh process")):
                times, cpu = bench_startup(ros, env, args.starts, log, fork)
                med = statistics.median(times)
                p90 = sorted(times)[max(0, round(0.9 * len(times)) - 1)]
                print(
                    f"start -> first /odom, {label}, over {len(times)} starts: median {med:.3f} s, p90 {p90:.3f} s, "
                    f"max {max(times):.3f} s; target < {STARTUP_TARGET} s: median/target = "
                    f"{med / STARTUP_TARGET:.2f}, p90/target = {p90 / STARTUP_TARGET:.2f}; "
                    f"CPU time used by then: median {statistics.median(cpu):.3f} s"
                )
        for subscribe in (False, True):
            # a fresh session each: subscriptions of a RosSession last as long as the session
            with RosSession(lease.domain_id, env, name="sim_benchmark_rtf") as ros:
                rtf, per_cpu = bench_rtf(ros, env, robot, args.seconds, subscribe, log)
            label = "with a subscriber on every topic" if subscribe else "no subscriber"
            print(
                f"free-running RTF, lidar 10 Hz, {label}: {rtf:.1f}x; target >= {RTF_TARGET:.0f}x: "
                f"ratio {rtf / RTF_TARGET:.2f}; per CPU second of the simulator: {per_cpu:.1f}x "
                f"(ratio {per_cpu / RTF_TARGET:.2f})"
            )
        wall_rtf, cpu_rtf = bench_physics_only(robot, args.seconds)
        print(
            f"physics + lidar alone in this process (no ROS): {wall_rtf:.1f}x real time, {cpu_rtf:.1f}x per CPU second"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
