"""Benchmark of the simulated cameras and IMU: real-time factor and CPU per simulated second.

Runs ``simtwin-sim --rtf 0`` (as fast as possible) on tests/sim/data/worlds/sensors.sdf (2 ms
physics steps, 360-ray lidar at 5 Hz) in four set-ups, each with a Python subscriber on the topics
that matter (cameras render only while someone listens):
  * no sensors (``--no-sensor all``): the baseline;
  * the 200 Hz IMU;
  * a 320x240 RGB camera at 10 Hz and a 320x240 depth camera at 10 Hz (target >= 5x real time);
  * the same plus the depth camera's PointCloud2.
Rendering is MuJoCo offscreen through EGL (Mesa's CPU driver on a machine without a GPU).

Usage: .venv/bin/python benchmarks/sensor_benchmark.py [--seconds 6]
"cpu" is the simulator process's CPU per simulated second, "subscriber" this process's (the Python
subscribers deserialising what arrives; best-effort sensor QoS drops frames a loaded subscriber
cannot take, hence "received" below the 10 Hz "rendered"). The machine's load average is printed
before and after: the numbers are only comparable at similar load.
"""

from __future__ import annotations

import argparse
import os
import signal
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

WORLD = Path(__file__).resolve().parent.parent / "tests" / "sim" / "data" / "worlds" / "sensors.sdf"
RTF_TARGET = 5.0
OTHERS = ("--no-sensor", "front_rgbd", "--no-sensor", "imu_ideal", "--no-sensor", "gps", "--no-sensor", "magnetometer",
          "--no-sensor", "air_pressure", "--no-sensor", "contact")  # fmt: skip
SETUPS: list[tuple[str, tuple[str, ...], list[str]]] = [
    ("no sensors", ("--no-sensor", "all"), []),
    ("IMU 200 Hz", (*OTHERS, "--no-sensor", "camera"), ["/imu"]),
    ("RGB 320x240 10 Hz + depth 320x240 10 Hz", (*OTHERS, "--no-sensor", "imu"), ["/front_camera/image", "/front_depth"]),
    ("  + depth PointCloud2", (*OTHERS, "--no-sensor", "imu"),
     ["/front_camera/image", "/front_depth", "/front_depth/points"]),
]  # fmt: skip


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def msg_type(topic: str) -> Any:
    from sensor_msgs.msg import Image, Imu, PointCloud2

    return Imu if topic == "/imu" else PointCloud2 if topic.endswith("/points") else Image


def run(label: str, args: tuple[str, ...], topics: list[str], seconds: float, log: Path) -> dict[str, float]:
    with acquire_domain(parse_domain_range(DEFAULT_DOMAIN_RANGE), owner="sensor_benchmark") as lease:
        env = ros_environment(lease.domain_id, lease.partition)
        with RosSession(lease.domain_id, env, name="sensor_bench") as ros:
            bufs = [ros.subscribe(t, msg_type(t)) for t in topics]
            argv = [sys.executable, "-m", "pytest_simtwin.sim", str(WORLD), "--paused", "--rtf", "0",
                    "--parent-pid", str(os.getpid()), *args]  # fmt: skip
            with log.open("wb") as out:
                proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            lease.add_child(proc.pid, "simtwin-sim")
            try:
                control = ControlClient(ros, timeout=20.0)
                wait_until(lambda: control.state() is not None, 30.0, what="the simulator's control services")
                for buf in bufs:  # matched before the clock starts: lazy cameras render from the first frame
                    wait_until(
                        lambda b=buf: ros.count_publishers(b.topic) > 0, 20.0, what=f"a publisher on {buf.topic}"
                    )
                time.sleep(0.5)
                control.step(duration=0.5)  # warm-up: the first frame creates the GL context
                sim0, cpu0, wall0 = float(control.state()["sim_time"]), cpu_seconds(proc.pid), time.monotonic()
                sub0 = time.process_time()  # this process: the subscribers' executor thread (deserialising)
                counts0 = [b.count for b in bufs]
                control.play()
                time.sleep(seconds)
                control.pause()
                sim1, cpu1, wall1 = float(control.state()["sim_time"]), cpu_seconds(proc.pid), time.monotonic()
                sub1 = time.process_time()
                frames = [b.count - c for b, c in zip(bufs, counts0, strict=True)]
                frames_state = control.state().get("camera_frames", {})
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=10)
                lease.remove_child(proc.pid)
    sim = sim1 - sim0
    result = {"rtf": sim / (wall1 - wall0), "cpu_per_sim_s": (cpu1 - cpu0) / sim if sim > 0 else float("nan"),
              "sub_cpu_per_sim_s": (sub1 - sub0) / sim if sim > 0 else float("nan")}  # fmt: skip
    received = ", ".join(f"{t} {n / sim:.1f}/sim-s" for t, n in zip(topics, frames, strict=True)) or "-"
    print(f"{label:44s} rtf {result['rtf']:7.1f}x  cpu {result['cpu_per_sim_s'] * 1000:6.1f} ms per sim s "
          f"(+ subscriber {result['sub_cpu_per_sim_s'] * 1000:5.1f} ms)  (received {received}; rendered {frames_state})",
          flush=True)  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0, help="wall seconds of free running per set-up")
    opts = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores before; MUJOCO_GL=egl (Mesa)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, args, topics in SETUPS:
            results[label] = run(label, args, topics, opts.seconds, Path(tmp) / "sim.log")
    # the machine is shared: the numbers are only comparable at similar load
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) after the runs")
    cams = results[SETUPS[2][0]]["rtf"]
    verdict = "meets" if cams >= RTF_TARGET else "MISSES"
    print(f"RGB + depth cameras at 10 Hz: {cams:.1f}x real time, {verdict} the target of >= {RTF_TARGET:g}x")
    return 0 if cams >= RTF_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
