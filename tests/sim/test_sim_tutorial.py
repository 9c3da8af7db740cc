"""A user's tutorial-style unittest (raw rclpy, wall-clock loops) passes unmodified against ``simtwin-sim``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from simproc import start_sim

TUTORIAL_DIR = Path(__file__).parent / "tutorial"


def test_tutorial_unittest_passes_against_simtwin_sim_without_arguments(tmp_path: Path) -> None:
    with start_sim(tmp_path) as sim:  # `simtwin-sim` with no arguments: built-in world, real time
        res = subprocess.run(
            [sys.executable, "-m", "unittest", "-v", "test_basic_motion_tutorial"],
            cwd=TUTORIAL_DIR,
            env=sim.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sim.proc.poll() is None, sim.log()
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}\n--- simulator log ---\n{sim.log()}"
    assert "Ran 3 tests" in res.stderr and "OK" in res.stderr
