"""kill -9 of a whole ``pytest -n 2 --simtwin-backend docker`` run leaves no container behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.backends.containers import reaper

pytestmark = [pytest.mark.docker, pytest.mark.slow]

HOLD = """
import time


def test_hold_a(sim):
    time.sleep(600)


def test_hold_b(sim):
    time.sleep(600)
"""


def _ppid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _run_containers(client: Any, run_pid: int) -> list[str]:
    """Containers whose owner is the run's process or one of its xdist workers."""
    out = []
    for c in client.api.containers(filters={"label": f"{reaper.LABEL}=1", "status": "running"}):
        owner = int(c["Labels"].get(reaper.L_PID, "0"))
        if owner == run_pid or _ppid(owner) == run_pid:
            out.append(c["Id"])
    return out


def test_sigkilled_pytest_run_leaves_no_container(sim_image: str, docker_client: Any, tmp_path: Path) -> None:
    (tmp_path / "test_hold.py").write_text(HOLD)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--simtwin-backend", "docker",
         "--simtwin-image", sim_image, "--simtwin-timeout", "120", "test_hold.py"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        seen: list[str] = []

        def both_running() -> bool:
            seen[:] = _run_containers(docker_client, proc.pid)
            return len(seen) == 2

        wait_until(both_running, 180.0, what="the run's two simulator containers",
                   abort=lambda: f"pytest exited with {proc.returncode}" if proc.poll() is not None else None)  # fmt: skip
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
        wait_until(lambda: not (set(seen) & {c["Id"] for c in docker_client.api.containers(all=True)}), 30.0,
                   what=f"containers {', '.join(c[:12] for c in seen)} of the killed run to disappear")  # fmt: skip
        print(f"both containers gone {time.monotonic() - killed:.2f} s after kill -9 of pytest")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
