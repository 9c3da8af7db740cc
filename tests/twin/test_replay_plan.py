"""The replay's command plan keeps the real timing (no simulator needed for these checks)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pytest_simtwin.errors import DataError
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.replay import command_plan
from pytest_simtwin.twin.synth import scenario_trajectory


def _run(t0: float, cmd_t: list[float], vx: list[float], end: float) -> Trajectory:
    t = np.array([t0, end])
    z = np.zeros(2)
    return Trajectory("r", t=t, x=z, y=z, theta=z, vx=z, vtheta=z, cmd_t=cmd_t, cmd_vx=vx, cmd_vtheta=[0.0] * len(vx))


def test_plan_has_lead_in_merges_repeats_and_holds_the_last_command() -> None:
    plan = command_plan(_run(10.0, [11.0, 11.1, 11.2, 12.0], [0.2, 0.2, 0.2, 0.0], 15.0))
    assert plan == [(pytest.approx(1.0), 0.0, 0.0), (pytest.approx(1.0), 0.2, 0.0), (pytest.approx(3.0), 0.0, 0.0)]
    assert sum(d for d, _, _ in plan) == pytest.approx(5.0)


def test_plan_covers_the_scenario_duration() -> None:
    plan = command_plan(scenario_trajectory(60.0, seed=1))
    assert sum(d for d, _, _ in plan) == pytest.approx(60.0)
    assert all(d > 0 for d, _, _ in plan)
    assert all(a[1:] != b[1:] for a, b in itertools.pairwise(plan))  # neighbours differ


def test_plan_needs_commands() -> None:
    run = _run(0.0, [], [], 5.0)
    with pytest.raises(DataError, match="/cmd_vel"):
        command_plan(run)


def _pose(stamp: float, x: float) -> object:
    from nav_msgs.msg import Odometry

    m = Odometry()
    m.header.stamp.sec, m.header.stamp.nanosec = int(stamp), round((stamp - int(stamp)) * 1e9)
    m.pose.pose.position.x = x
    return m


def test_resent_copies_do_not_fold_the_replayed_trajectory_back() -> None:
    """A paused simulator re-sends its last pose for late subscribers: a copy arriving after newer
    poses must not become a second sample of the replayed trajectory."""
    from pytest_simtwin.twin.replay import _in_time_order

    msgs = [_pose(stamp, x) for stamp, x in ((0.0, 0.0), (0.1, 0.01), (0.2, 0.02), (0.1, 0.01), (0.3, 0.03))]
    poses = _in_time_order(msgs)
    assert [round(p.pose.pose.position.x, 3) for p in poses] == [0.0, 0.01, 0.02, 0.03]  # type: ignore[attr-defined]
