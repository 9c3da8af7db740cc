"""Digital-twin validation: replay the real robot's commands in the simulator and score the gap."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.simtwin(world="worlds/empty_room.sdf", robot="models/diffbot/model.sdf")
def test_simulation_matches_the_recorded_robot(twin_validation):
    real = twin_validation.load(DATA / "real_run.json")
    # Drives this test's simulator with the recorded /cmd_vel, then scores it with the metrics and
    # tolerances of [tool.simtwin.twin] in pyproject.toml; they land in the report and metrics JSON.
    result = twin_validation.assert_matches(real)
    assert {m.name for m in result.records} >= {"position_error", "velocity_tracking"}


def test_a_ten_percent_distance_error_is_caught(twin_validation):
    """The metrics can fail: a run that covers 10 % more distance than the recording does not match."""
    real = twin_validation.load(DATA / "real_run.json")
    skewed = twin_validation.load(DATA / "real_run.json")
    skewed.x = skewed.x * 1.10
    skewed.y = skewed.y * 1.10
    result = twin_validation.validate(real, skewed, metrics=["position_error"], png=False)
    assert not result.passed
