"""Idle workers cost nothing: a worker's simulator is paused between its tests and resumed for the next."""

from __future__ import annotations

import pytest

IDLE = """
import time

def test_a_drives(robot):
    robot.send_velocity(0.2, 0.0, 0.5)

def test_b_idle_simulator_is_paused(simtwin_session):
    # runs after test_a on the same worker, without the sim fixture: nothing resumed the simulator
    state = simtwin_session.control.state()
    t0 = state["sim_time"]
    time.sleep(0.3)
    assert state["state"] == "paused"
    assert simtwin_session.control.state()["sim_time"] == t0

def test_c_next_test_runs_again(sim, robot):
    assert sim.state()["state"] == "playing"
    t0 = robot.sim_time()
    robot.wait(0.2)
    assert robot.sim_time() >= t0 + 0.2
"""


@pytest.mark.parametrize(("reset", "idle"), [("test", "on"), ("never", "on"), ("never", "off")])
def test_idle_simulators_are_paused_between_tests(pytester: pytest.Pytester, reset: str, idle: str) -> None:
    pytester.makepyfile(test_idle=IDLE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", f"--simtwin-reset={reset}", f"--simtwin-idle-pause={idle}"
    )
    if idle == "on":
        result.assert_outcomes(passed=3)
    else:  # the option turns it off: the simulator runs on between tests
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*test_b_idle_simulator_is_paused*"])


def test_more_workers_than_cpus_is_said_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    import os

    cpus = len(os.sched_getaffinity(0))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", str(cpus + 2))
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if line.startswith("simtwin: -n")]
    assert lines == [
        f"simtwin: -n {cpus + 2} on {cpus} CPUs: {cpus + 2} simulators share {cpus} cores (idle ones are paused), "
        f"so a test gets about {cpus / (cpus + 2):.2g} of a core when every worker runs one; "
        f"-n auto would start {cpus} workers"
    ]
    fewer = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", str(cpus))
    assert not [line for line in fewer.outlines if line.startswith("simtwin: -n")]
