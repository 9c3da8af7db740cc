"""ros/deadlock.py: a block stuck in native code holding the GIL ends its process; a finished one does not."""

from __future__ import annotations

import subprocess
import sys
import time

STUCK = """
import ctypes
from pytest_simtwin.ros.deadlock import deadlock_watchdog
with deadlock_watchdog(0.5):
    ctypes.PyDLL(None).sleep(30)  # a C call that keeps the GIL, as Fast DDS's destroy does when deadlocked
print("not reached")
"""

FINISHED = """
import time
from pytest_simtwin.ros.deadlock import deadlock_watchdog
with deadlock_watchdog(0.5):
    pass
time.sleep(1.0)  # past the limit: the watchdog was cancelled with the block
print("went on")
"""


def _run(code: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return res, time.monotonic() - t0


def test_a_block_stuck_holding_the_gil_ends_the_process_with_its_stack() -> None:
    res, took = _run(STUCK)
    assert res.returncode == 1, res
    assert took < 20, took  # not the 30 s of the stuck call
    assert "not reached" not in res.stdout
    assert "Timeout" in res.stderr and 'File "<string>", line 5' in res.stderr, res.stderr


def test_a_finished_block_cancels_the_watchdog() -> None:
    res, _ = _run(FINISHED)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "went on"
