"""Calibration says what the data does not determine, and refuses a twin that is worse on held-out data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.cli import main
from pytest_simtwin.twin.calibrate import calibrate
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.model import simulate
from pytest_simtwin.twin.synth import SynthParams, scenario_commands, synthesize

from .conftest import NOMINAL


def _straight_only_run() -> Trajectory:
    ct, cv, _ = scenario_commands(60.0, seed=2)
    cw = np.zeros_like(cv)  # never turns: nothing in it says how far apart the wheels are
    t = np.arange(0.0, 60.0, 1 / 30)
    out = simulate(ct, cv, cw, t, NOMINAL)
    return Trajectory("straight only", t=t, cmd_t=ct, cmd_vx=cv, cmd_vtheta=cw, **out)


def test_separation_is_not_identified_without_turning() -> None:
    real = synthesize(_straight_only_run(), SynthParams(wheel_radius_scale=1.03, latency=0.05, seed=1))
    result = calibrate(real, NOMINAL)
    sep = result.parameters["wheel_separation"]
    assert not sep.identified and sep.value == NOMINAL.wheel_separation and "kept at nominal" in sep.note
    assert not result.parameters["time_constant_angular"].identified
    assert result.parameters["wheel_radius"].identified
    assert result.fitted.wheel_radius == pytest.approx(0.033 * 1.03, rel=0.005)
    assert "NOT IDENTIFIED" in result.summary()


def test_a_gain_and_the_radius_trade_off(sim_run: Trajectory) -> None:
    real = synthesize(sim_run, SynthParams(wheel_radius_scale=1.03, rate=50.0, seed=4))
    result = calibrate(real, NOMINAL, ("wheel_radius", "wheel_separation", "linear_gain", "angular_gain"))
    flagged = [n for n, p in result.parameters.items() if not p.identified]
    assert flagged and all(n.endswith("gain") for n in flagged), result.summary()
    assert all("trades off" in result.parameters[n].note for n in flagged)
    # what is identified is still right: the product of radius and gains is the speed scale
    f = result.fitted
    assert f.wheel_radius / 0.033 * f.linear_gain == pytest.approx(1.03, rel=0.005)


def _changed_robot(sim_run: Trajectory) -> Trajectory:
    """A recording whose held-out segments (1 and 3 of 5) come from a robot without the radius error."""
    wrong = synthesize(sim_run, SynthParams(wheel_radius_scale=1.06, rate=30.0, seed=6))
    right = synthesize(sim_run, SynthParams(rate=30.0, seed=6))
    edges = np.linspace(wrong.t[0], wrong.t[-1], 6)
    held = ((wrong.t >= edges[1]) & (wrong.t <= edges[2])) | ((wrong.t >= edges[3]) & (wrong.t <= edges[4]))
    cols = {k: np.where(held, getattr(right, k), getattr(wrong, k)) for k in ("x", "y", "theta", "vx", "vtheta")}
    return wrong.replace(**cols)


def test_worse_on_held_out_segments_is_refused(sim_run: Trajectory, tmp_path: Path) -> None:
    real = _changed_robot(sim_run)
    result = calibrate(real, NOMINAL)
    assert not result.accepted and "velocity_tracking" in result.worse, result.summary()
    assert "REFUSED" in result.summary()
    path = real.save_json(tmp_path / "changed.json")
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", str(path), "--out", str(out)]) == 1
    assert not out.exists()
