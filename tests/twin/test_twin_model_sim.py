"""The simulator applies the twin model (sim/engine/twin_model.py) like the fitting model does (twin/model.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.engine import twin_model
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world.sdf import load_world
from pytest_simtwin.twin.calibrate import twin_plugin_xml
from pytest_simtwin.twin.model import DiffDriveParams, velocities

ROOT = Path(__file__).parents[2]
EMPTY = ROOT / "pytest_simtwin" / "data" / "empty_world.sdf"
ROBOT = ROOT / "pytest_simtwin" / "sim" / "defaults" / "models" / "simtwin_bot" / "model.sdf"
NOMINAL = DiffDriveParams(0.033, 0.160, 0.6, 2.84, 2.5, 10.0)
TWIN = NOMINAL.with_(
    wheel_radius=0.033 * 1.03, command_latency=0.08, time_constant_linear=0.1, time_constant_angular=0.1
)
COMMANDS = ((0.0, 0.4, 0.5), (1.5, 0.1, -0.8), (3.0, 0.3, 0.0))


def _twin_robot(tmp_path: Path, params: DiffDriveParams) -> Path:
    text = ROBOT.read_text()
    end = text.index("</plugin>", text.index("gz::sim::systems::DiffDrive")) + len("</plugin>\n")
    path = tmp_path / "model.sdf"
    path.write_text(text[:end] + twin_plugin_xml(params) + text[end:])
    return path


def _drive(physics: Physics, seconds: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    physics.step(250)  # settle on the ground
    t0 = physics.time
    ts, vs, ws = [], [], []
    pending = list(COMMANDS)
    while physics.time - t0 < seconds:
        while pending and pending[0][0] <= physics.time - t0 + 1e-9:
            physics.set_command(pending[0][1], pending[0][2])
            pending.pop(0)
        physics.step(1)
        g = physics.ground_truth()
        yaw = math.atan2(2 * (g.qw * g.qz + g.qx * g.qy), 1 - 2 * (g.qy**2 + g.qz**2))
        ts.append(physics.time - t0)
        vs.append(g.vx * math.cos(yaw) + g.vy * math.sin(yaw))
        ws.append(g.wz)
    return np.array(ts), np.array(vs), np.array(ws)


def _model(t: np.ndarray, params: DiffDriveParams) -> tuple[np.ndarray, np.ndarray]:
    ct, cv, cw = (np.array(c) for c in zip(*COMMANDS, strict=True))
    grid = np.arange(0.0, t[-1] + 0.002, 0.001)
    v, w = velocities(ct, cv, cw, grid, params, NOMINAL)
    return np.interp(t, grid, v), np.interp(t, grid, w)


@pytest.mark.parametrize("how", ["robot file", "overrides file"])
def test_the_simulated_robot_follows_the_twin_model(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(twin_model.ENV, raising=False)
    if how == "robot file":
        world = load_world(EMPTY, _twin_robot(tmp_path, TWIN))
        assert not [w for w in world.warnings if "simtwin-twin-model" in w]  # not "not simulated"
    else:
        overrides = tmp_path / "cal.yaml"
        overrides.write_text(yaml.safe_dump({"robot": {"diff_drive": {"wheel_radius": TWIN.wheel_radius},
                                                       "twin": {"command_latency": 0.08, "time_constant_linear": 0.1,
                                                                "time_constant_angular": 0.1}}}))  # fmt: skip
        monkeypatch.setenv(twin_model.ENV, str(overrides))
        world = load_world(EMPTY)
    physics = Physics(world, seed=1)
    assert physics.twin is not None and physics.twin.params.command_latency == 0.08
    t, v, w = _drive(physics)
    mv, mw = _model(t, TWIN)
    assert float(np.max(np.abs(v[t < 0.08]))) < 0.002  # nothing moves before the delay
    assert float(np.sqrt(np.mean((v - mv) ** 2))) < 0.003  # MuJoCo wheels follow the model within 3 mm/s
    assert float(np.sqrt(np.mean((w - mw) ** 2))) < 0.01
    assert float(np.mean(v[(t > 1.0) & (t < 1.5)])) == pytest.approx(0.4 * 1.03, rel=0.01)  # effective radius


def test_nominal_robot_has_no_twin_and_bad_values_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(twin_model.ENV, raising=False)
    physics = Physics(load_world(EMPTY), seed=1)
    assert physics.twin is None
    t, v, _ = _drive(physics, 1.0)
    mv, _ = _model(t, NOMINAL)
    assert float(np.sqrt(np.mean((v - mv) ** 2))) < 0.003
    bad = tmp_path / "bad.yaml"
    bad.write_text("robot: {twin: {command_latency: -1}}\n")
    with pytest.raises(ModelError, match="command_latency must be a finite non-negative number"):
        twin_model.load(None, 0.033, 0.16, {twin_model.ENV: str(bad)})
