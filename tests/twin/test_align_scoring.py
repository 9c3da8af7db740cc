"""Alignment by time and the twin metrics on a 60 s synthetic dataset."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.errors import ConfigError, DataError
from pytest_simtwin.twin.align import align, lag_xcorr, resample, se2_align, time_offset
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.openloop import command_latency
from pytest_simtwin.twin.scoring import TwinConfig, load_config, validate
from pytest_simtwin.twin.synth import SynthParams, synthesize


def test_sixty_seconds_with_5mm_noise_pass(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(position_noise=0.005, seed=7))
    result = validate(real, sim_run)
    pos = result.record("position_error")
    # the criterion of the issue, per 1 s re-anchored window: under 1 cm for at least 90 % of windows
    assert pos.extra["pass_fraction"] >= 0.9 and pos.passed
    assert pos.extra["min_fraction"] == 0.9 and pos.extra["windows"] == 60
    assert 0.001 < pos.extra["rmse"] < 0.008  # the (smoothed) noise is what is measured
    vel = result.record("velocity_tracking")
    assert vel.value < 0.05 and vel.passed
    assert result.passed and result.verdict == "pass"
    assert len(result.aligned) >= 1790  # 60 s at 30 Hz, by time


def test_three_percent_wheel_radius_error_fails(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(position_noise=0.005, wheel_radius_scale=1.03, seed=7))
    result = validate(real, sim_run)
    assert not result.passed
    pos = result.record("position_error")
    # 3 % of up to 0.4 m per 1 s window: the faster windows miss 1 cm
    assert not pos.passed and pos.extra["pass_fraction"] < 0.85 and pos.value > 0.01
    # a 3 % speed error stays within the 5 % velocity tolerance: the position metric catches it
    vel = result.record("velocity_tracking")
    assert 0.02 < vel.value < 0.045 and 0.02 < vel.extra["linear_error"] < 0.04


def test_other_rate_and_clock_epoch_align_by_time(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(rate=50.0, time_offset=1.7e9 - 12.3, seed=2))
    result = validate(real, sim_run)
    assert result.aligned.offset_method == "first_command"
    assert result.aligned.offset == pytest.approx(1.7e9 - 12.3, abs=1e-6)
    assert result.passed


def test_xcorr_offset_without_commands(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(time_offset=37.25, seed=3))
    bare_real = real.replace(cmd_t=[], cmd_vx=[], cmd_vtheta=[])
    dt, method = time_offset(bare_real, sim_run, "auto")
    assert method == "xcorr"
    assert dt == pytest.approx(37.25, abs=0.003)  # sub-sample: the odometry period is 33 ms
    assert validate(bare_real, sim_run).passed


def test_first_command_offset_needs_commands(sim_run: Trajectory) -> None:
    bare = sim_run.replace(cmd_t=[], cmd_vx=[], cmd_vtheta=[])
    with pytest.raises(DataError, match="no non-zero /cmd_vel"):
        time_offset(bare, sim_run, "first_command")


def test_lag_xcorr_is_sub_sample() -> None:
    rate = 100.0
    t = np.arange(0, 20, 1 / rate)
    rng = np.random.default_rng(0)
    knots = np.arange(0, 21, 0.5)
    level = rng.uniform(-0.5, 0.5, knots.size)
    base = np.interp(t, knots, level)  # a ramped speed profile
    delayed = np.interp(t - 0.0137, knots, level)
    assert lag_xcorr(delayed, base, rate, 1.0) == pytest.approx(0.0137, abs=0.002)
    assert lag_xcorr(base, delayed, rate, 1.0) == pytest.approx(-0.0137, abs=0.002)


def test_latency_is_measured_from_commands(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(latency=0.025, seed=4))
    lr, ls = command_latency(real), command_latency(sim_run)
    assert lr is not None and ls is not None
    assert lr.value - ls.value == pytest.approx(0.025, abs=0.003)
    assert lr.confidence == "high" and lr.correlation > 0.9 and lr.stderr < 0.01
    result = validate(real, sim_run)
    lat = result.record("sensor_latency")
    assert not lat.passed and lat.value == pytest.approx(0.025, abs=0.003)
    small = validate(synthesize(sim_run, SynthParams(latency=0.004, seed=4)), sim_run).record("sensor_latency")
    assert small.passed


def test_angles_are_unwrapped_before_interpolation() -> None:
    t = np.array([0.0, 1.0])
    traj = Trajectory("wrap", t=t, x=[0, 0], y=[0, 0], theta=[3.1, -3.1], vx=[0, 0], vtheta=[0, 0])
    mid = resample(traj, np.array([0.5]))["theta"][0]
    assert math.cos(mid) == pytest.approx(-1.0, abs=1e-3)  # through pi, not through 0


def test_se2_alignment_moves_the_whole_trajectory() -> None:
    sim = {"x": np.array([0.0, 1.0]), "y": np.array([0.0, 0.0]), "theta": np.array([0.0, 0.0])}
    real = {"x": np.array([2.0, 2.0]), "y": np.array([1.0, 2.0]), "theta": np.array([math.pi / 2, math.pi / 2])}
    out = se2_align(sim, real)
    np.testing.assert_allclose(out["x"], [2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(out["y"], [1.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(out["theta"], [math.pi / 2] * 2)


def test_start_pose_difference_is_removed_only_with_align_pose(sim_run: Trajectory) -> None:
    moved = sim_run.replace(
        x=sim_run.x * 0 + 1.0 + (sim_run.x * math.cos(0.4) - sim_run.y * math.sin(0.4)),
        y=sim_run.y * 0 - 2.0 + (sim_run.x * math.sin(0.4) + sim_run.y * math.cos(0.4)),
        theta=sim_run.theta + 0.4,
    )
    aligned = validate(moved, sim_run).aligned
    assert float(np.max(np.hypot(aligned.sim["x"] - aligned.real["x"], aligned.sim["y"] - aligned.real["y"]))) < 1e-6
    not_aligned = validate(moved, sim_run, TwinConfig(align_pose=False))
    assert float(np.max(np.abs(not_aligned.aligned.sim["x"] - not_aligned.aligned.real["x"]))) > 1.0
    # the windowed error re-anchors on the recorded pose: it does not depend on the start pose at all
    assert not_aligned.record("position_error").value < 1e-3


def test_no_overlap_is_a_clear_error(sim_run: Trajectory) -> None:
    with pytest.raises(DataError, match="do not overlap"):
        align(sim_run, sim_run.shifted(500.0), offset="none")


def test_config_from_pyproject_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.simtwin.twin]\noffset = 'xcorr'\n"
        "[tool.simtwin.twin.metrics.position_error]\ntolerance = 0.02\nmin_fraction = 0.95\n"
        "[tool.simtwin.twin.metrics.collision_detection]\nenabled = false\n"
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    cfg = load_config(search_from=sub)
    specs = {m.name: m for m in cfg.metrics}
    assert cfg.offset == "xcorr"
    assert specs["position_error"].tolerance == 0.02 and specs["position_error"].min_fraction == 0.95
    assert not specs["collision_detection"].enabled
    yml = tmp_path / "twin.yaml"
    yml.write_text("twin:\n  metrics: [position_error]\n  rate: 20\n")
    cfg2 = load_config(yml)
    assert [m.name for m in cfg2.metrics] == ["position_error"] and cfg2.rate == 20.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("metrics:\n  speed_error: {}\n", "unknown twin metric"),
        ("metrics:\n  position_error: {tolerance: 0.01, minfraction: 0.9}\n", "accepts"),
        ("metrics:\n  position_error: {min_fraction: 1.5}\n", "min_fraction"),
        ("offsett: auto\n", "unknown twin settings"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_config(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "twin.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_metric_subset_and_velocity_threshold(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(seed=5))
    result = validate(real, sim_run, TwinConfig().with_metrics(["velocity_tracking"]))
    assert [r.name for r in result.records] == ["velocity_tracking"]
    rec = result.records[0]
    assert rec.extra["min_speed"] == 0.05 and rec.extra["samples"] < len(result.aligned)
