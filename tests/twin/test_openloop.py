"""The open-loop measures: windowed error does not accumulate, a delay is a latency, RPE/ATE from evo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.openloop import command_latency, trajectory_errors, windowed_position_error
from pytest_simtwin.twin.scoring import TwinConfig, validate
from pytest_simtwin.twin.synth import SynthParams, synthesize


def test_a_small_heading_drift_does_not_accumulate_in_the_windowed_error(sim_run: Trajectory) -> None:
    # 0.01 rad/s of yaw bias: over 60 s the open-loop replay ends up far away, per 1 s window it is ~1 mm
    real = synthesize(sim_run, SynthParams(yaw_rate_bias=0.01, position_noise=0.0, heading_noise=0.0, seed=1))
    result = validate(real, sim_run)
    a = result.aligned
    open_loop = np.hypot(a.sim["x"] - a.real["x"], a.sim["y"] - a.real["y"])
    assert open_loop[-1] > 0.2  # what the seed's absolute metric scored
    pos = result.record("position_error")
    assert pos.passed and pos.value < 0.005 and pos.extra["windows"] == 60, result.summary()


def test_re_anchoring_uses_the_recorded_pose_and_window_length(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(wheel_radius_scale=1.03, position_noise=0.0, heading_noise=0.0, seed=1))
    a = validate(real, sim_run).aligned
    one = windowed_position_error(a.t, a.real, a.sim, 1.0)
    two = windowed_position_error(a.t, a.real, a.sim, 2.0)
    # a 3 % speed error: the error at a window's end is ~3 % of the distance driven in it
    assert one.error.size == 60 and two.error.size == 30
    assert float(np.median(two.error)) == pytest.approx(2 * float(np.median(one.error)), rel=0.35)
    assert float(np.max(one.error)) == pytest.approx(0.03 * 0.4, rel=0.3)  # fastest windows: 0.4 m/s
    by_distance = validate(real, sim_run, TwinConfig(window_distance=0.5)).record("position_error")
    assert by_distance.extra["window_distance_m"] == 0.5 and by_distance.value == pytest.approx(0.015, rel=0.35)


def test_a_pure_delay_is_latency_not_a_velocity_error(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(latency=0.08, seed=2))
    result = validate(real, sim_run)
    vel = result.record("velocity_tracking")
    assert vel.passed and vel.extra["response_delay_s"] == pytest.approx(0.08, abs=0.01)
    assert vel.extra["angular_response_delay_s"] == pytest.approx(0.08, abs=0.01)
    lat = result.record("sensor_latency")
    assert not lat.passed and lat.value == pytest.approx(0.08, abs=0.005)
    assert lat.extra["confidence"] == "high"
    # without the delay removal the same run would be a large velocity error
    undelayed, measured = result.aligned.sim["vx"], result.aligned.real["vx"]
    moving = np.abs(measured) >= 0.05
    raw = np.mean(np.abs(undelayed[moving] - measured[moving]) / np.abs(measured[moving]))
    assert raw > 2 * vel.extra["linear_error"]


def test_latency_of_a_run_without_a_response_has_low_confidence(sim_run: Trajectory) -> None:
    rng = np.random.default_rng(0)
    noise = sim_run.replace(vx=rng.normal(0, 0.1, len(sim_run)), vtheta=rng.normal(0, 0.1, len(sim_run)))
    lat = command_latency(noise)
    assert lat is not None and lat.confidence == "low" and lat.correlation < 0.3


def test_ate_and_rpe_are_evos() -> None:
    t = np.arange(0.0, 30.0, 0.05)
    real = {"x": np.cos(0.2 * t) * 2, "y": np.sin(0.3 * t), "theta": 0.1 * t}
    c, s = math.cos(0.5), math.sin(0.5)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.01, (2, t.size))
    sim = {
        "x": c * real["x"] - s * real["y"] + 3 + noise[0],
        "y": s * real["x"] + c * real["y"] - 1 + noise[1],
        "theta": real["theta"] + 0.5,
    }
    te = trajectory_errors(t, real, sim, 1.0)
    # the rigid SE(2) offset is aligned away (Umeyama): what is left is the 1 cm per-axis noise
    assert te["ate_rmse_m"] == pytest.approx(0.01 * math.sqrt(2), rel=0.15)
    assert te["rpe_trans_rmse_m"] == pytest.approx(0.02, rel=0.2)  # two noisy poses per pair
    assert te["rpe_rot_rmse_deg"] < 1e-6


def test_a_yaw_rate_error_fails_velocity_tracking_though_the_linear_speed_is_right(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(wheel_separation_scale=1.1, seed=3))  # turns 9 % slower
    vel = validate(real, sim_run).record("velocity_tracking")
    assert vel.value < 0.03 and vel.extra["linear_error"] == vel.value
    assert vel.extra["angular_error"] == pytest.approx(0.1 / 1.1, abs=0.025)
    assert not vel.extra["angular_passed"] and not vel.passed
