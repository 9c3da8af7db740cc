"""A replay that touches anything but the ground is reported (time, entity) and fails the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.replay import replay
from pytest_simtwin.twin.report import render_html, render_png
from pytest_simtwin.twin.scoring import validate


def _straight(seconds: float = 12.0) -> Trajectory:
    zero = np.zeros(2)
    return Trajectory(
        "straight ahead", t=np.array([0.0, seconds]), x=zero, y=zero, theta=zero, vx=zero, vtheta=zero,
        cmd_t=np.array([0.0, 1.0, seconds - 0.5]), cmd_vx=np.array([0.0, 0.4, 0.0]), cmd_vtheta=np.zeros(3),
    )  # fmt: skip


def test_driving_into_the_arena_wall_is_flagged(sim: Any, tmp_path: Path) -> None:
    # the built-in arena (no world marker): 4 m straight ahead from the origin meets the wall at x = 3 m
    run = replay(_straight(), sim._session)
    contacts = run.meta["contacts"]
    assert contacts and contacts[0]["entity"] == "walls", contacts
    assert 6.0 < contacts[0]["t"] < 9.5  # ~2.9 m at 0.4 m/s after the 1 s rest
    free = run.replace(meta={})  # the same motion without the contact record scores clean against itself
    assert validate(free, free).passed
    result = validate(free, run)
    assert not result.passed and result.flags and "walls" in result.flags[0], result.summary()
    assert "FLAG" in result.summary()
    png = render_png(result, tmp_path / "r.png")
    page = render_html(result, png)
    assert "walls" in page and "data:image/png;base64," in page


def test_the_empty_world_touches_nothing(sim: Any) -> None:
    session = sim._session
    session.ensure(
        session.config.with_(world=Path(__file__).parents[2] / "pytest_simtwin" / "data" / "empty_world.sdf")
    )
    run = replay(_straight(), session)
    assert run.meta["contacts"] == []
    assert float(np.max(run.x)) > 3.5  # it drove past where the wall would be
