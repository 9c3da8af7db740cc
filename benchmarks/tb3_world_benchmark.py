"""Loading and stepping the vendored TurtleBot3 worlds (tests/robots/turtlebot3) in the embedded physics.

For each world with the waffle: world load + MuJoCo compile with an empty processed-mesh cache and with
a filled one (each in a fresh subprocess, with its peak RSS), and the free-running real-time factor of
the physics with the lidar scanned at its update rate (10 Hz; no ROS: the simulator's own ceiling).

    python benchmarks/tb3_world_benchmark.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TB3 = ROOT / "tests" / "robots" / "turtlebot3" / "turtlebot3_gazebo"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world
t1 = time.perf_counter()
world_file, robot_file, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
pose = Pose(0.0, 0.0, 0.01) if world_file.stem == "empty_world" else Pose(-2.0, -0.5, 0.01)
p = Physics(load_world(world_file, robot_file, pose))
t2 = time.perf_counter()
rtf = 0.0
if seconds > 0:
    p.set_command(0.2, 0.3)
    scan_every = round(1.0 / (p.lidars[0].spec.update_rate * p.step_size))
    steps = round(seconds / p.step_size)
    start = time.perf_counter()
    for i in range(0, steps, scan_every):
        p.step(scan_every)
        p.lidar_scan()
    rtf = seconds / (time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "rtf": rtf, "peak_mb": peak, "geoms": int(p.model.ngeom)}))
"""


def run(world: Path, robot: Path, seconds: float, cache: Path) -> dict[str, float]:
    env = dict(os.environ, SIMTWIN_MESH_CACHE=str(cache), GZ_SIM_RESOURCE_PATH=str(TB3 / "models"))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(world), str(robot), str(seconds)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="simulated seconds for the RTF run")
    options = parser.parse_args()
    robot = TB3 / "models" / "turtlebot3_waffle" / "model.sdf"
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("empty_world", "turtlebot3_world", "turtlebot3_house"):
            world = TB3 / "worlds" / f"{name}.world"
            cache = Path(tmp) / name
            cold = run(world, robot, 0.0, cache)
            warm = run(world, robot, options.seconds, cache)
            print(
                f"{name:17s} waffle: load+compile cold {cold['load']:.2f} s ({cold['peak_mb']:.0f} MB peak), "
                f"cached {warm['load']:.2f} s; {warm['geoms']:.0f} geoms; free-running RTF with lidar "
                f"{warm['rtf']:.0f}x over {options.seconds:g} s (imports {warm['import']:.2f} s)"
            )


if __name__ == "__main__":
    main()
