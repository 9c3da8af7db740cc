"""The tutorial's TestBasicMotion as written versus the same three tests with the plugin's fixtures.

* tutorial flow: ``simtwin-sim`` started by hand, ``sleep 10``, then ``python -m unittest
  test_basic_motion_tutorial`` (raw rclpy, wall-clock loops: 2 s forward, 3 s rotation, 1 s
  stop plus its 1 s stop phases; tests/sim/tutorial/test_basic_motion_tutorial.py, unmodified);
* fixture flow: one ``pytest`` process (plugin loaded, simulator started by the ``robot`` fixture)
  running the same three tests written with ``robot.send_velocity`` in simulated time.

Both run on the built-in world and robot; the wall time of each flow is measured from nothing to
the test runner's exit and both must pass. Target: the fixture flow is at least 10x faster. One
untimed fixture run first writes the bytecode caches (as after installing the plugin); every timed
fixture run starts the simulator fork server cold.

    .venv/bin/python benchmarks/bench_tutorial.py [--quick] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, ROOT, Ratio, arg_parser, emit, fmt_stats, progress, stats

TARGET = 20.0  # issue 19: the seed flow / the plugin flow, at least 20x
HAND_SLEEP = 10.0
TUTORIAL_DIR = ROOT / "tests" / "sim" / "tutorial"

FIXTURE_TESTS = '''
"""TestBasicMotion of the tutorial, with pytest-simtwin's fixtures (simulated time)."""
import math


def test_forward(robot):
    start = robot.pose
    robot.send_velocity(0.5, 0.0, 2.0)
    end = robot.pose
    assert 0.8 < math.hypot(end.x - start.x, end.y - start.y) < 1.2


def test_rotation(robot):
    robot.send_velocity(0.0, 0.5, 3.0)
    assert abs(robot.yaw - 1.5) < 0.3


def test_stop(robot):
    robot.send_velocity(0.3, 0.0, 1.0)
    assert abs(robot.velocity.vx) < 0.05
'''


def tutorial_flow(tmp: Path) -> float:
    """simtwin-sim & sleep 10 && python -m unittest ...: wall seconds; raises if the tests fail."""
    from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, acquire_domain, parse_domain_range
    from pytest_simtwin.ros.environment import ros_environment

    ids = parse_domain_range(DEFAULT_DOMAIN_RANGE)
    with acquire_domain(ids, owner="bench_tutorial", prefer=ids[len(ids) // 4]) as lease:
        env = {**os.environ, **ros_environment(lease.domain_id, lease.partition)}
        with (tmp / "tutorial-sim.log").open("ab") as log:
            t0 = time.monotonic()
            sim = subprocess.Popen([PYTHON, "-m", "pytest_simtwin.sim"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(HAND_SLEEP)  # the hand-made flow's fixed sleep is what is being measured
            res = subprocess.run(
                [PYTHON, "-m", "unittest", "test_basic_motion_tutorial"],
                cwd=TUTORIAL_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            wall = time.monotonic() - t0
        finally:
            sim.terminate()
            try:
                sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
    if res.returncode != 0 or "Ran 3 tests" not in res.stderr:
        raise RuntimeError(f"the tutorial tests failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    return wall


def fixture_flow(tmp: Path) -> float:
    """One pytest process running the fixture version: wall seconds; raises if the tests fail."""
    project = tmp / "fixtures"
    project.mkdir(exist_ok=True)
    (project / "test_basic_motion.py").write_text(FIXTURE_TESTS)
    (project / "pytest.ini").write_text("[pytest]\n")
    t0 = time.monotonic()
    res = subprocess.run(
        [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--simtwin-artifacts", str(tmp / "artifacts")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    wall = time.monotonic() - t0
    if res.returncode != 0 or "3 passed" not in res.stdout:
        raise RuntimeError(f"the fixture tests failed (exit {res.returncode}):\n{res.stdout[-3000:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = arg_parser(__doc__)
    ap.add_argument("--repeat", type=int, help="runs of each flow (default 3, quick 1)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    tutorial, fixtures = [], []
    with tempfile.TemporaryDirectory(prefix="bench-tutorial-") as tmp_name:
        tmp = Path(tmp_name)
        # Untimed: writes the bytecode caches a user's installed plugin has (see _common). The
        # tutorial flow that follows outlasts the fork server's idle exit: each timed fixture flow
        # starts it cold.
        fixture_flow(tmp)
        progress("fixture flow warm-up run (untimed) passed")
        for i in range(repeat):
            tutorial.append(tutorial_flow(tmp))
            progress(f"tutorial flow {i + 1}/{repeat}: {tutorial[-1]:.2f} s (3 passed)")
            fixtures.append(fixture_flow(tmp))
            progress(f"fixture flow {i + 1}/{repeat}: {fixtures[-1]:.2f} s (3 passed)")
    ts, fs = stats(tutorial), stats(fixtures)
    result = Ratio(
        "tutorial",
        "TestBasicMotion wall time, tutorial flow (sleep 10 + wall-clock loops) / fixtures",
        ts["median"] / fs["median"],
        TARGET,
        detail=f"tutorial {fmt_stats(ts)}; fixtures (whole pytest process) {fmt_stats(fs)}",
        numbers={"tutorial": ts, "fixtures": fs},
    )
    emit([result], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
