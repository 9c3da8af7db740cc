"""Load time and peak memory of a big collision mesh (a TurtleBot 4 shell is ~100k vertices).

Each case runs in a fresh subprocess (so peak RSS is that case's alone): a mesh file of N vertices is
written once, then loaded the way the simulator does (trimesh, convex hull; static meshes split into
connected parts), first with an empty processed-mesh cache, then again with the cache filled, and
finally compiled by MuJoCo inside a robot. Prints one line per case: seconds, peak RSS (MB), hull
points. Target (issue 15): under 2 s and under 500 MB for the 100k-vertex shell.

    python benchmarks/mesh_benchmark.py [--subdivisions 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pytest_simtwin.sim.world.meshes import mesh_parts
path, split, compile_ = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
t1 = time.perf_counter()
parts = mesh_parts(path, split)
t2 = time.perf_counter()
compiled = 0.0
if compile_:
    from pytest_simtwin.sim.engine.physics import Physics
    from pytest_simtwin.sim.world.sdf import load_world
    world = load_world(None, Path(sys.argv[4]))
    t3 = time.perf_counter()
    Physics(world)
    compiled = time.perf_counter() - t3
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "compile": compiled, "peak_mb": peak,
                  "points": int(sum(len(p) for p in parts)), "parts": len(parts)}))
"""

ROBOT = """<?xml version="1.0"?>
<sdf version="1.9">
<model name="shell_bot">
<link name="base"><inertial><mass>3</mass><inertia><ixx>0.05</ixx><iyy>0.05</iyy><izz>0.08</izz></inertia></inertial>
<collision name="shell"><pose>0 0 0.2 0 0 0</pose><geometry><mesh><uri>{mesh}</uri></mesh></geometry></collision></link>
<link name="wheel"><collision name="c"><geometry><sphere><radius>0.036</radius></sphere></geometry></collision></link>
<joint name="wheel_joint" type="revolute"><parent>base</parent><child>wheel</child><axis><xyz>0 1 0</xyz></axis></joint>
<plugin filename="gz-sim-diff-drive-system" name="gz::sim::systems::DiffDrive">
  <left_joint>wheel_joint</left_joint><right_joint>wheel_joint</right_joint>
  <wheel_separation>0.23</wheel_separation><wheel_radius>0.036</wheel_radius></plugin>
</model>
</sdf>
"""


def run(args: list[str], cache: Path) -> dict[str, float]:
    env = dict(os.environ, SIMTWIN_MESH_CACHE=str(cache))
    out = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subdivisions", type=int, default=7, help="icosphere subdivisions (7: 163842 vertices)")
    options = parser.parse_args()
    import trimesh

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shell = trimesh.creation.icosphere(subdivisions=options.subdivisions, radius=0.17)
        shell.vertices[:, 2] *= 0.5  # a flat round shell, like a TurtleBot 4 top
        mesh = folder / "shell.stl"
        shell.export(mesh)
        robot = folder / "robot.sdf"
        robot.write_text(ROBOT.format(mesh=mesh))
        vertices = len(shell.vertices)
        print(f"mesh: {mesh.name}, {vertices} vertices, {len(shell.faces)} faces, {mesh.stat().st_size / 1e6:.1f} MB")
        cases = [
            ("robot part (one hull), empty cache", ["0", "0"], folder / "cache1"),
            ("robot part (one hull), cached", ["0", "0"], folder / "cache1"),
            ("static scenery (split into parts), empty cache", ["1", "0"], folder / "cache2"),
            ("robot in MuJoCo (cached mesh), load + compile", ["0", "1", str(robot)], folder / "cache1"),
        ]
        for label, flags, cache in cases:
            r = run([str(mesh), *flags], cache)
            total = r["load"] + r["compile"]
            print(
                f"{label:50s} load {r['load']:.3f} s  compile {r['compile']:.3f} s  total {total:.3f} s  "
                f"peak RSS {r['peak_mb']:.0f} MB  hull points {r['points']} in {r['parts']} part(s)  "
                f"(import {r['import']:.2f} s)"
            )


if __name__ == "__main__":
    main()
