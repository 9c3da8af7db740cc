"""Isolation between workers (no cross-talk) and cleanup after SIGKILL of a worker or of the whole run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.processes import partition_members
from pytest_simtwin.ros import domains

CROSSTALK = """
import math
import os
import time

import pytest
from nav_msgs.msg import Odometry

W = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])

@pytest.mark.parametrize("i", range({n}))
def test_only_my_robot(sim, robot, i):
    # Distinct per worker (0.6 m apart), inside the arena's walls and clear of its obstacles.
    x, y = -2.6 + 0.6 * W, -0.5 + 0.1 * (i % 10)
    sim.set_pose(x=x, y=y, yaw=0.0)
    topics = robot.topics
    gt = sim.ros.subscribe(topics["ground_truth"], Odometry)
    odom = sim.ros.subscribe(topics["odom"], Odometry)
    near = lambda m: math.hypot(m.pose.pose.position.x - x, m.pose.pose.position.y - y) < 0.01
    sim.ros.wait_for_message(topics["ground_truth"], Odometry, timeout=10, predicate=near)
    since = time.monotonic()
    start_odom = robot.pose
    robot.send_velocity(0.1 + 0.05 * W, 0.0, 0.4)          # distinct speed per worker
    robot.wait_for_odom()
    end_gt = sim.get_pose()
    # Every ground-truth message since the teleport is our robot, not another worker's.
    for r in gt.since(since):
        p = r.msg.pose.pose.position
        assert math.hypot(p.x - x, p.y - y) < 0.3, (W, i, p.x, p.y, x, y)
    # Odometry moves monotonically along our own path and ends where our ground truth says.
    xs = [r.msg.pose.pose.position.x for r in odom.since(since)]
    assert xs and all(b >= a - 1e-3 for a, b in zip(xs, xs[1:])), xs
    moved_odom = robot.pose.x - start_odom.x
    assert abs(moved_odom - (end_gt["x"] - x)) < 0.01, (moved_odom, end_gt["x"] - x)
    assert sim.ros.count_publishers(topics["odom"]) == 1
    assert sim.ros.count_publishers("/clock") == 1
"""


def _crosstalk(pytester: pytest.Pytester, workers: int, tests: int) -> None:
    pytester.makepyfile(test_crosstalk=CROSSTALK.replace("{n}", str(tests)))
    result = pytester.runpytest_subprocess("-n", str(workers), "-p", "no:cacheprovider", timeout=900)
    result.assert_outcomes(passed=tests)


def test_no_crosstalk_quick(pytester: pytest.Pytester) -> None:
    _crosstalk(pytester, workers=2, tests=10)


@pytest.mark.slow
def test_no_crosstalk_8_workers_100_tests(pytester: pytest.Pytester) -> None:
    _crosstalk(pytester, workers=8, tests=100)


# -- SIGKILL ---------------------------------------------------------------------------------------
HANG = """
import json, os, time
from pytest_simtwin.backends.processes import partition_members

def test_hang(sim, simtwin_session):
    info = {"worker_pid": os.getpid(), "partition": sim.partition, "domain": sim.domain_id,
            "lease": str(simtwin_session.lease.path), "sims": partition_members(sim.partition)}
    out = os.path.join(os.environ["HANG_DIR"], f"{os.getpid()}.json")
    with open(out + ".tmp", "w") as fh:
        json.dump(info, fh)
    os.replace(out + ".tmp", out)
    time.sleep(600)
"""


def _start_hanging_run(
    pytester: pytest.Pytester, tmp_path: Path, workers: int
) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]]]:
    pytester.makepyfile(test_hang=HANG)
    hang_dir = tmp_path / "hang"
    hang_dir.mkdir()
    env = dict(os.environ, HANG_DIR=str(hang_dir))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-n",
            str(workers),
            "--max-worker-restart=0",
            "test_hang.py",
        ],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: len(list(hang_dir.glob("*.json"))) >= 1, 120, what="the hanging test to start its simulator")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    infos = [json.loads(p.read_text()) for p in hang_dir.glob("*.json")]
    for info in infos:
        assert info["sims"], info  # a simulator really runs in that worker's partition
    return proc, infos


def _lock_not_held_by(lease_path: str, pid: int) -> bool:
    """True unless a live process ``pid`` still holds the lease (someone else may lease it again)."""
    try:
        record = json.loads(Path(lease_path).read_text() or "{}")
    except (OSError, ValueError):
        return True
    fd = domains._try_lock(Path(lease_path))
    if fd is not None:
        os.close(fd)
        return True
    return record.get("owner_pid") != pid


def _next_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_next="def test_next():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_next.py", timeout=60).assert_outcomes(passed=1)


def _assert_clean(infos: list[dict[str, Any]]) -> None:
    for info in infos:
        wait_until(
            lambda info=info: not partition_members(info["partition"]),
            10,
            what=f"the simulator processes of {info['partition']} to be gone",
            describe=lambda info=info: f"still running: {partition_members(info['partition'])}",
        )
        for pid in info["sims"]:
            assert not domains.process_alive(pid), pid
        assert _lock_not_held_by(info["lease"], info["worker_pid"])


def test_sigkill_of_a_worker_leaves_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    proc, infos = _start_hanging_run(pytester, tmp_path, workers=2)
    try:
        victim = infos[0]
        os.kill(victim["worker_pid"], signal.SIGKILL)
        _next_session(pytester)
        _assert_clean([victim])
    finally:
        proc.kill()
        proc.wait()
    _assert_clean(infos)


def test_sigkill_of_the_whole_run_leaves_nothing(pytester: pytest.Pytester, tmp_path: Path) -> None:
    proc, infos = _start_hanging_run(pytester, tmp_path, workers=2)
    os.kill(proc.pid, signal.SIGKILL)  # the controller only: workers and simulators must follow
    proc.wait()
    _next_session(pytester)
    _assert_clean(infos)
