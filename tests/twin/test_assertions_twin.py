"""assert_twin_matches records into the test's record; collision_detection compares stop positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.results.records import TestRecord
from pytest_simtwin.twin.assertions import assert_twin_matches
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.scoring import TwinConfig, validate
from pytest_simtwin.twin.synth import SynthParams, synthesize


def test_pass_records_metrics_and_writes_outputs(sim_run: Trajectory, tmp_path: Path) -> None:
    rec = TestRecord(nodeid="t::pass")
    real = synthesize(sim_run, SynthParams(seed=9))
    real_json = real.save_json(tmp_path / "real.json")
    result = assert_twin_matches(
        real_json, sim_run, ["position_error", "velocity_tracking"], record=rec, out_dir=tmp_path / "o"
    )
    assert result.passed
    assert [m.name for m in rec.metrics] == ["position_error", "velocity_tracking"]
    assert all(m.passed and m.tolerance for m in rec.metrics)
    assert rec.artifacts["twin_verdict"] == "pass"
    assert Path(rec.artifacts["twin_validation_png"]).is_file() and (tmp_path / "o" / "metrics.json").is_file()


def test_fail_raises_with_the_summary_and_still_records(sim_run: Trajectory) -> None:
    rec = TestRecord(nodeid="t::fail")
    real = synthesize(sim_run, SynthParams(wheel_radius_scale=1.03, seed=9))
    with pytest.raises(AssertionError, match=r"FAIL  position_error"):
        assert_twin_matches(real, sim_run, record=rec)
    assert rec.artifacts["twin_verdict"] == "fail"
    assert not next(m for m in rec.metrics if m.name == "position_error").passed


def _blocked_run(stop_x: float, name: str) -> Trajectory:
    """Drive forward at 0.3 m/s from x=0, stopped by an obstacle at ``stop_x`` while still commanded."""
    t = np.arange(0.0, 6.0, 1 / 30)
    x = np.minimum(np.maximum(t - 1.0, 0.0) * 0.3, stop_x)
    vx = np.gradient(x, t)
    vx[np.isclose(x, stop_x)] = 0.0
    z = np.zeros_like(t)
    return Trajectory(
        name, t=t, x=x, y=z, theta=z, vx=vx, vtheta=z, cmd_t=[0.0, 1.0], cmd_vx=[0.0, 0.3], cmd_vtheta=[0.0, 0.0]
    )


def test_collision_detection_compares_stop_positions() -> None:
    cfg = TwinConfig().with_metrics(["collision_detection"])
    close = validate(_blocked_run(1.0, "real"), _blocked_run(1.012, "sim"), cfg).record("collision_detection")
    assert close.passed and close.value == pytest.approx(0.012, abs=0.002)
    far = validate(_blocked_run(1.0, "real"), _blocked_run(1.05, "sim"), cfg).record("collision_detection")
    assert not far.passed and far.value == pytest.approx(0.05, abs=0.002)
    # one run stopped at an obstacle and the other did not: infinite error
    free = _blocked_run(10.0, "sim")
    assert validate(_blocked_run(1.0, "real"), free, cfg).record("collision_detection").value == float("inf")


def test_collision_detection_skipped_without_a_stop(sim_run: Trajectory) -> None:
    result = validate(synthesize(sim_run), sim_run)
    assert "collision_detection" not in [r.name for r in result.records]
    assert any("collision_detection skipped" in n for n in result.notes)
