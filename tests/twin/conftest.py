"""Shared data for the twin tests.

There is no real-robot data in this project. The "simulated" reference run here comes from the
kinematic DiffDrive model (twin/model.py) driven by the 60 s scenario: these tests exercise
loading, alignment, scoring and calibration, not the simulator (test_twin_sim.py replays through
the real simulator). "Real" runs are made from it with the synthetic generator.
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.model import DiffDriveParams, simulate
from pytest_simtwin.twin.synth import scenario_commands

NOMINAL = DiffDriveParams(
    wheel_radius=0.033,
    wheel_separation=0.160,
    max_linear_velocity=0.6,
    max_angular_velocity=2.84,
    max_linear_acceleration=2.5,
    max_angular_acceleration=10.0,
)


def model_run(
    duration: float = 60.0, seed: int = 1, rate: float = 30.0, params: DiffDriveParams = NOMINAL
) -> Trajectory:
    ct, cv, cw = scenario_commands(duration, seed=seed)
    t = np.arange(0.0, duration + 1e-9, 1.0 / rate)
    out = simulate(ct, cv, cw, t, params)
    # wheel angles and speeds from the body motion (what /joint_states of the robot would say)
    s, r = params.wheel_separation, params.wheel_radius
    wl = (out["vx"] - out["vtheta"] * s / 2) / r
    wr = (out["vx"] + out["vtheta"] * s / 2) / r
    dt = np.diff(t, prepend=t[0])
    return Trajectory(
        "kinematic model",
        t=t,
        cmd_t=ct,
        cmd_vx=cv,
        cmd_vtheta=cw,
        joint_t=t,
        joint_names=["wheel_left_joint", "wheel_right_joint"],
        joint_position=np.column_stack([np.cumsum(wl * dt), np.cumsum(wr * dt)]),
        joint_velocity=np.column_stack([wl, wr]),
        **out,
    )


@pytest.fixture(scope="session")
def sim_run() -> Trajectory:
    return model_run()


@pytest.fixture(scope="session")
def short_run() -> Trajectory:
    return model_run(duration=8.0, seed=3)
