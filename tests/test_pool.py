"""SimPool and `simtwin pool`: N ready, isolated simulators; nothing left after the block or a kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_simtwin.batch.pool import SimPool
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros import domains


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        SimPool(0)
    with pytest.raises(ConfigError, match="need 3 ROS domains"):
        SimPool(3, domain_range="5-6")
    with pytest.raises(ConfigError, match="does not exist"):
        SimPool(1, world=tmp_path / "nope.sdf")
    with pytest.raises(ConfigError, match="attach"):
        SimPool(1, backend="attach")


def test_pool_members_are_isolated_and_cleaned_up(tmp_path: Path) -> None:
    with SimPool(3, artifacts=tmp_path / "art", rtf=0.0) as pool:
        assert len(pool) == 3
        ids = [m.domain_id for m in pool]
        assert len(set(ids)) == 3
        assert len({m.partition for m in pool}) == 3
        pids = {m.pid for m in pool}
        assert all(isinstance(p, int) and domains.process_alive(p) for p in pids)
        # Each robot gets its own command; each sees only its own odometry.
        for m, speed in zip(pool, (0.1, 0.3, -0.2), strict=True):
            m.robot().send_velocity(speed, 0.0, 1.0, stop=True)
        for m, speed in zip(pool, (0.1, 0.3, -0.2), strict=True):
            x = m.robot().ground_truth.x
            pose = m.robot().pose
            assert abs(pose.x - speed * 1.0) < 0.05, (m.index, pose, speed)
            assert abs(x - pose.x) < 0.05
    assert not any(domains.process_alive(p) for p in pids if p is not None)
    # Every lease was released: all three domains can be leased again at once.
    leases = [domains.acquire_domain(ids, owner="check") for _ in ids]
    for lease in leases:
        lease.release()


def test_killed_pool_leaves_nothing_once_the_next_pool_starts(tmp_path: Path) -> None:
    code = (
        "import sys, time\n"
        "from pytest_simtwin.batch.pool import SimPool\n"
        f"pool = SimPool(2, artifacts={str(tmp_path / 'a')!r}, domain_range='60-70').start()\n"
        "print(' '.join(str(m.pid) for m in pool), flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip(), "the pool did not start"
    pids = [int(p) for p in line.split()]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with SimPool(1, artifacts=tmp_path / "b", domain_range="60-70"):
        deadline = time.monotonic() + 5
        while any(domains.process_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(domains.process_alive(p) for p in pids)


def test_cli_pool_json_and_duration(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "pool", "2", "--json", "--duration", "0.5", "--rtf", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[0])
    sims = doc["simulators"]
    assert [s["index"] for s in sims] == [0, 1]
    assert len({s["domain_id"] for s in sims}) == 2
    assert Path(doc["fastdds_profile"]).is_file()
    assert all(not domains.process_alive(s["pid"]) for s in sims)


def test_cli_probe_reports_a_missing_topic() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_simtwin.cli",
            "probe",
            "--domain",
            "99",
            "--topic",
            "/nobody",
            "--timeout",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "not ready" in proc.stderr and "/nobody" in proc.stderr


def test_cli_pool_refuses_a_spawn_name_without_a_robot(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_simtwin.cli", "pool", "1", "--spawn-name", "bot", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "simtwin pool: error: SimPool: spawn-name 'bot' names the robot added with robot=..." in proc.stderr
    assert proc.stdout == ""  # refused before any simulator starts
