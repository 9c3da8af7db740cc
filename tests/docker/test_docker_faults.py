"""Simulator faults with ``--simtwin-backend docker`` (a real run in a subprocess): applied inside the
container's simulator through the same control services as the embedded backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker]  # not slow: CI runs it (about 7 s)



FAULT_SUITE = """
import json
import pytest
from pytest_simtwin import faults


@pytest.mark.simtwin(faults=[faults.wheel_stopped("wheel_left_joint")])
def test_a_seized_wheel_turns_the_robot(robot):
    robot.send_velocity(0.3, 0.0, 1.5)
    assert robot.ground_truth.x < 0.3 and abs(robot.ground_truth.yaw) > 0.3, robot.ground_truth


def test_a_scan_blackout_and_its_announcements(robot, sim, ros_node):
    announced = ros_node.subscribe("/simtwin/faults", "std_msgs/msg/String")
    scans = ros_node.subscribe("/scan", "sensor_msgs/msg/LaserScan")
    robot.wait_for_scan()
    t0 = sim.state()["sim_time"]
    sim.inject(faults.sensor_blackout("/scan", at=t0 + 0.5, duration=1.0))
    robot.wait(2.5)
    robot.wait_for_scan()  # publishing again after the fault
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in scans.messages()]
    assert any(s < t0 + 0.5 for s in stamps) and any(s > t0 + 1.5 for s in stamps), stamps
    assert not [s for s in stamps if t0 + 0.6 < s < t0 + 1.4], stamps  # silent while the fault lasts
    events = [json.loads(m.data)["event"] for m in announced.messages()]
    assert {"injected", "started", "ended"} <= set(events), events
"""


def test_faults_apply_in_the_container(sim_image: str, tmp_path: Path) -> None:
    """Simulator faults through the docker backend: the same control services as embedded."""
    (tmp_path / "test_faults.py").write_text(FAULT_SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsimtwin_timeout = 120\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--simtwin-backend", "docker",
         f"--simtwin-image={sim_image}", "test_faults.py"],
        cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert "2 passed" in out, out[-4000:]
