"""Load time and peak memory of the Nav2 minimal TurtleBot 4 (tests/robots/nav2_minimal_tb4), as shipped.

Each case runs in a fresh subprocess (so peak RSS is that case's alone): xacro expansion of
turtlebot4.urdf.xacro and the world readers with its collision meshes (the 3.3 MB shell_collision.dae,
bumper_collision.dae) in turtlebot3_gazebo's empty_world, then the MuJoCo compile — first with an
empty processed-mesh cache (cold), then with the cache filled. Prints one line per case: seconds,
CPU seconds (which a loaded machine does not inflate), peak RSS (MB). Target (issue 15): under 2 s and
under 500 MB.

    python benchmarks/tb4_load_benchmark.py [--repeat 3]
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
TB4 = ROOT / "tests" / "robots" / "nav2_minimal_tb4"
ROBOT = TB4 / "nav2_minimal_tb4_description" / "urdf" / "standard" / "turtlebot4.urdf.xacro"
WORLD = ROOT / "tests" / "robots" / "turtlebot3" / "turtlebot3_gazebo" / "worlds" / "empty_world.world"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world
t1, c1 = time.perf_counter(), cpu()
world = load_world(Path(sys.argv[1]), Path(sys.argv[2]), Pose(-8.0, 0.0, 0.01))
t2 = time.perf_counter()
Physics(world)
t3, c3 = time.perf_counter(), cpu()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "compile": t3 - t2, "cpu": c3 - c1, "peak_mb": peak}))
"""


def ament_prefix(folder: Path) -> Path:
    """An install prefix with both packages, as colcon lays it out (share/<pkg> + the ament index marker)."""
    index = folder / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for package in ("nav2_minimal_tb4_description", "nav2_minimal_tb4_sim"):
        (folder / "share" / package).symlink_to(TB4 / package)
        (index / package).touch()
    return folder


def run(prefix: Path, cache: Path) -> dict[str, float]:
    env = dict(os.environ, SIMTWIN_MESH_CACHE=str(cache), AMENT_PREFIX_PATH=str(prefix))
    out = subprocess.run([sys.executable, "-c", CHILD, str(WORLD), str(ROBOT)], env=env, check=True,
                         capture_output=True, text=True)  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (the best and worst are printed)")
    options = parser.parse_args()
    meshes = sorted((TB4 / "nav2_minimal_tb4_description" / "meshes").glob("*.dae"))
    print("collision meshes: " + ", ".join(f"{m.name} {m.stat().st_size / 1e6:.1f} MB" for m in meshes))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prefix = ament_prefix(folder / "install")
        cases: dict[str, list[dict[str, float]]] = {"empty mesh cache (cold)": [], "mesh cache filled": []}
        for i in range(options.repeat):
            cache = folder / f"cache{i}"
            cases["empty mesh cache (cold)"].append(run(prefix, cache))
            cases["mesh cache filled"].append(run(prefix, cache))
        for label, runs in cases.items():
            totals = sorted(r["load"] + r["compile"] for r in runs)
            cpus = sorted(r["cpu"] for r in runs)
            peak = max(r["peak_mb"] for r in runs)
            r = runs[0]
            print(
                f"{label:26s} load+compile {totals[0]:.3f}-{totals[-1]:.3f} s (load {r['load']:.3f} s, compile "
                f"{r['compile']:.3f} s), CPU {cpus[0]:.3f}-{cpus[-1]:.3f} s  peak RSS {peak:.0f} MB  (import {r['import']:.2f} s)  "
                f"target < 2 s, < 500 MB"
            )


if __name__ == "__main__":
    main()
