"""Digital-twin validation: replay the real robot's commands in the simulator and score the gap.

``models/diffbot_twin`` is the diffbot with the twin that `simtwin calibrate` fitted to the recording
(``simtwin calibrate data/real_run.json --robot models/diffbot/model.sdf --out data/twin_calibration.yaml
--sdf-out models/diffbot_twin/model.sdf``): its ``simtwin::TwinModel`` plugin adds the robot's command
delay, response lag and effective wheel size to the simulated controller. Metrics: docs/twin-metrics.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.mark.simtwin(world="worlds/empty_room.sdf", robot="models/diffbot_twin/model.sdf")
def test_the_calibrated_twin_matches_the_recorded_robot(twin_validation):
    real = twin_validation.load(DATA / "real_run.json")
    # Drives this test's simulator with the recorded /cmd_vel, then scores it with the metrics and
    # tolerances of [tool.simtwin.twin] in pyproject.toml; they land in the report and metrics JSON.
    result = twin_validation.assert_matches(real)
    pos = result.record("position_error")  # re-anchored on the recording every second
    assert pos.extra["windows"] >= 9 and pos.extra["pass_fraction"] >= 0.9
    assert abs(result.record("sensor_latency").value) < 0.01  # the twin has the robot's delay


@pytest.mark.simtwin(world="worlds/empty_room.sdf", robot="models/diffbot/model.sdf")
def test_the_uncalibrated_robot_misses_the_command_delay(twin_validation):
    """The nominal diffbot answers ~30 ms sooner than the recorded robot: latency fails, velocity does not."""
    real = twin_validation.load(DATA / "real_run.json")
    result = twin_validation.validate(real, png=False)
    assert not result.passed and not result.record("sensor_latency").passed
    vel = result.record("velocity_tracking")
    assert vel.passed and vel.extra["response_delay_s"] > 0.015  # the delay is reported as a delay


def test_a_ten_percent_distance_error_is_caught(twin_validation):
    """The metrics can fail: a run that covers 10 % more distance than the recording does not match."""
    real = twin_validation.load(DATA / "real_run.json")
    skewed = twin_validation.load(DATA / "real_run.json")
    skewed.x = skewed.x * 1.10
    skewed.y = skewed.y * 1.10
    result = twin_validation.validate(real, skewed, metrics=["position_error"], png=False)
    assert not result.passed
