"""The plugin with ``--simtwin-backend docker``: a real run in a subprocess (two xdist workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SUITE = """
import pytest


def test_drives_forward(robot):
    robot.send_velocity(0.5, 0.0, 2.0)
    assert robot.ground_truth.x == pytest.approx(1.0, abs=0.03)


def test_turns(robot):
    robot.send_velocity(0.0, 0.5, 2.0)
    assert robot.ground_truth.yaw == pytest.approx(1.0, abs=0.03)


@pytest.mark.simtwin(world="worlds/broken.sdf")
def test_broken_world(sim):
    pass
"""


def test_suite_runs_in_containers_and_reports_their_logs(sim_image: str, docker_client: Any, tmp_path: Path) -> None:
    (tmp_path / "worlds").mkdir()
    (tmp_path / "worlds" / "broken.sdf").write_text("<sdf version='1.9'><world name='w'>")  # truncated
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsimtwin_timeout = 120\n")
    before = {c["Id"] for c in docker_client.api.containers(all=True)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-rA", "--simtwin-backend", "docker",
         f"--simtwin-image={sim_image}", f"--simtwin-artifacts={tmp_path / 'artifacts'}", "test_suite.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "2 passed" in out and "1 error" in out, out[-4000:]
    # the broken world: an error (infrastructure), with the container's exit code and its log tail
    assert "exited early with code" in out, out[-4000:]
    assert "broken.sdf" in out and "last" in out and "lines of simulator log" in out, out[-4000:]
    logs = list((tmp_path / "artifacts").rglob("docker-sim-*.log"))
    assert logs, "no container log file under the artifacts directory"
    # nothing of this run is left: every container it started is gone once pytest returned
    from pytest_simtwin.backends.containers import reaper

    left = [c["Id"][:12] for c in docker_client.api.containers(all=True, filters={"label": f"{reaper.LABEL}=1"})
            if c["Id"] not in before and not reaper.owner_alive(c["Labels"])]  # fmt: skip
    assert not left, f"containers left behind by the run: {left}"


SPAWN_SUITE = """
import math
import pytest


def test_starts_at_the_spawn_pose_and_drives_from_there(robot, sim):
    robot.wait(0.2)
    start, odom = robot.ground_truth, robot.pose
    assert (start.x, start.y, start.yaw) == (pytest.approx(-1.0, abs=0.01), pytest.approx(0.5, abs=0.01),
                                             pytest.approx(-math.pi / 2, abs=0.01))
    assert math.hypot(odom.x, odom.y) < 0.005 and abs(odom.yaw) < 0.005, odom
    robot.send_velocity(0.5, 0.0, 1.0)
    robot.stop()
    end, odom = robot.ground_truth, robot.pose
    assert start.y - end.y == pytest.approx(0.5, abs=0.05) and abs(end.x - start.x) < 0.03, "drives south"
    assert odom.x == pytest.approx(start.y - end.y, abs=0.02), odom
"""


def test_spawn_pose_reaches_the_simulator_in_its_container(sim_image: str, tmp_path: Path) -> None:
    """--simtwin-spawn-pose through the docker backend (the same simtwin-sim arguments as embedded)."""
    (tmp_path / "test_spawn.py").write_text(SPAWN_SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsimtwin_timeout = 120\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--simtwin-backend", "docker",
         f"--simtwin-image={sim_image}", "--simtwin-spawn-pose=-1 0.5 0 -1.5707963267948966", "test_spawn.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "1 passed" in out, out[-4000:]

