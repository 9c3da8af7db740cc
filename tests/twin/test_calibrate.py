"""Calibration: recover a 3 % wheel-radius error, then the twin check passes; outputs for the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.twin.calibrate import (
    calibrate,
    nominal_from_sdf,
    read_overrides,
    twin_from_sdf,
    write_overrides,
    write_sdf_copy,
)
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.model import predict
from pytest_simtwin.twin.scoring import validate
from pytest_simtwin.twin.synth import SynthParams, synthesize

from .conftest import NOMINAL

ROBOT_SDF = Path(__file__).parents[2] / "pytest_simtwin" / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"


@pytest.fixture(scope="module")
def radius_error_run(sim_run: Trajectory) -> Trajectory:
    # 3 % larger wheels, 5 mm noise, a little latency, another odometry rate and clock epoch
    return synthesize(
        sim_run, SynthParams(wheel_radius_scale=1.03, latency=0.008, rate=50.0, time_offset=1.7e9, seed=11)
    )


def test_radius_recovered_within_half_a_percent_and_then_it_passes(
    radius_error_run: Trajectory, sim_run: Trajectory
) -> None:
    assert not validate(radius_error_run, sim_run).passed
    assert not validate(radius_error_run, predict(radius_error_run, NOMINAL)).passed
    result = calibrate(radius_error_run, NOMINAL)
    assert result.success
    assert result.fitted.wheel_radius == pytest.approx(NOMINAL.wheel_radius * 1.03, rel=0.005)
    assert result.fitted.wheel_separation == pytest.approx(NOMINAL.wheel_separation, rel=0.01)
    # 8 ms at 30 Hz odometry: delay and lag are not told apart, their sum is the response delay
    f = result.fitted
    assert f.command_latency + f.time_constant_linear == pytest.approx(0.008, abs=0.004)
    assert result.accepted and result.after["position_error"] < 0.6 * result.before["position_error"]
    after = validate(radius_error_run, predict(radius_error_run, result.fitted, NOMINAL, source="calibrated"))
    assert after.passed, after.summary()
    text = result.summary()
    assert "wheel_radius" in text and ("+3.0" in text or "+2.9" in text)


def test_fit_a_subset(radius_error_run: Trajectory) -> None:
    result = calibrate(radius_error_run, NOMINAL, ("wheel_radius",))
    assert result.fitted_names == ("wheel_radius",) and list(result.parameters) == ["wheel_radius"]
    assert result.fitted.wheel_radius == pytest.approx(NOMINAL.wheel_radius * 1.03, rel=0.005)
    assert result.fitted.max_linear_acceleration == NOMINAL.max_linear_acceleration


def test_needs_commands_and_known_parameters(radius_error_run: Trajectory) -> None:
    with pytest.raises(DataError, match="/cmd_vel"):
        calibrate(radius_error_run.replace(cmd_t=[], cmd_vx=[], cmd_vtheta=[]), NOMINAL)
    with pytest.raises(ConfigError, match="cannot fit"):
        calibrate(radius_error_run, NOMINAL, ("tyre_pressure",))


def test_overrides_and_sdf_copy(radius_error_run: Trajectory, tmp_path: Path) -> None:
    nominal = nominal_from_sdf(ROBOT_SDF)
    assert nominal.wheel_radius == 0.033 and nominal.wheel_separation == 0.160
    result = calibrate(radius_error_run, nominal, ("wheel_radius", "max_linear_acceleration"))
    out = write_overrides(result, tmp_path / "cal.yaml", source="real.json")
    doc = yaml.safe_load(out.read_text())
    assert doc["robot"]["diff_drive"]["wheel_radius"] == pytest.approx(result.fitted.wheel_radius)
    assert read_overrides(out).wheel_radius == pytest.approx(result.fitted.wheel_radius)
    sdf = write_sdf_copy(ROBOT_SDF, tmp_path / "robot.sdf", result)
    text = sdf.read_text()
    # the twin plugin carries the effective radius; the controller keeps its configured value
    assert (
        'name="simtwin::TwinModel"' in text and f"<wheel_radius>{result.fitted.wheel_radius:.6g}</wheel_radius>" in text
    )
    assert "<wheel_radius>0.033</wheel_radius>" in text
    assert twin_from_sdf(sdf, nominal).wheel_radius == pytest.approx(result.fitted.wheel_radius, rel=1e-5)
    again = write_sdf_copy(sdf, tmp_path / "robot2.sdf", result).read_text()
    assert again.count("simtwin::TwinModel") == 1  # a second calibration replaces the plugin
    assert f"<max_linear_acceleration>{result.fitted.max_linear_acceleration:.6g}</max_linear_acceleration>" in text
    assert nominal_from_sdf(sdf).wheel_radius == 0.033


def test_sdf_without_diff_drive(tmp_path: Path) -> None:
    bad = tmp_path / "r.sdf"
    bad.write_text("<sdf version='1.9'><model name='m'><link name='l'/></model></sdf>")
    with pytest.raises(ConfigError, match="DiffDrive"):
        nominal_from_sdf(bad)
