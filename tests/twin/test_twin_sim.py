"""Twin validation through the real simulator (simtwin-sim via the worker's SimSession).

The scenario is first driven in the simulator (its recording is the reference "simulated run");
synthetic "real" data is made from it; ``twin_validation`` replays the real /cmd_vel sequence in
the simulator and scores it. Then a 3 % wheel-radius error fails, is calibrated, and the
calibrated robot SDF replays within tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_simtwin.results.records import record_for
from pytest_simtwin.twin.calibrate import calibrate, nominal_from_sdf, write_sdf_copy
from pytest_simtwin.twin.replay import replay
from pytest_simtwin.twin.synth import SynthParams, scenario_trajectory, synthesize

OPEN_WORLD = Path(__file__).parent / "data" / "open_world.sdf"
ROBOT_SDF = Path(__file__).parents[2] / "pytest_simtwin" / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"

pytestmark = pytest.mark.simtwin(world=str(OPEN_WORLD), reset="test")


def test_replay_keeps_sim_timing_and_a_noisy_twin_passes(twin_validation: Any, request: pytest.FixtureRequest) -> None:
    plan = scenario_trajectory(20.0, seed=1)
    sim_run = twin_validation.replay(plan)
    # the simulator publishes the pose at ~31 Hz sim time; the replay waits for every step's pose
    assert sim_run.duration == pytest.approx(20.0, abs=0.1)
    assert len(sim_run) >= 0.95 * 20.0 * sim_run.rate
    assert float(np.max(np.diff(sim_run.t))) < 0.07
    assert np.hypot(sim_run.x[-1], sim_run.y[-1]) > 1.0  # it drove somewhere
    real = synthesize(sim_run, SynthParams(position_noise=0.005, rate=50.0, time_offset=1.7e9, seed=2))
    result = twin_validation.validate(real)  # replays real's commands again
    assert result.passed, result.summary()
    assert result.record("position_error").extra["pass_fraction"] >= 0.9
    names = {m.name for m in record_for(request.node).metrics}
    assert {"position_error", "velocity_tracking", "sensor_latency"} <= names
    assert Path(record_for(request.node).artifacts["twin_validation_png"]).is_file()
    assert (twin_validation.out_dir / "metrics.json").is_file()


def test_wheel_radius_error_fails_then_calibrated_robot_passes(twin_validation: Any, sim: Any, tmp_path: Path) -> None:
    session = sim._session
    sim_run = replay(scenario_trajectory(20.0, seed=4), session)
    real = synthesize(sim_run, SynthParams(position_noise=0.005, wheel_radius_scale=1.03, seed=5))
    before = twin_validation.validate(real, png=False)
    assert not before.passed and not before.record("position_error").passed
    nominal = nominal_from_sdf(ROBOT_SDF)
    fit = calibrate(
        real, nominal, ("wheel_radius", "max_linear_acceleration", "max_angular_acceleration", "command_latency")
    )
    assert fit.fitted.wheel_radius == pytest.approx(nominal.wheel_radius * 1.03, rel=0.005), fit.summary()
    robot = write_sdf_copy(ROBOT_SDF, tmp_path / "calibrated_robot.sdf", fit)
    session.ensure(session.config.with_(robot=robot))  # restart the simulator with the calibrated robot
    after = twin_validation.validate(real, replay(real, session))
    assert after.passed, after.summary()


def test_committed_60s_dataset_replays_and_passes(twin_validation: Any) -> None:
    """The example scenario: 60 s of synthetic real data (5 mm noise) replayed through the simulator."""
    real = twin_validation.load(Path(__file__).parent / "data" / "twin_real_60s.json")
    assert real.duration == pytest.approx(60.0, abs=0.1) and real.meta["synthetic"]
    result = twin_validation.validate(real)
    assert result.passed, result.summary()
    assert result.record("position_error").extra["pass_fraction"] >= 0.9
    assert result.record("velocity_tracking").value < 0.05
