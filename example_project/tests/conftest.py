"""Shared set-up of the example suite.

The world, the backend and the other defaults come from [tool.pytest.ini_options] in
../pyproject.toml (simtwin_* keys). Here: where model:// URIs resolve, and a fixture that starts
the node under test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
STOP_DISTANCE = 0.5  # m, the safety stop's default (config/safety_stop.yaml)


def pytest_configure(config: pytest.Config) -> None:
    # worlds/test_arena.sdf includes model://diffbot, model://obstacle_box, ...: Gazebo and the
    # embedded simulator both look them up in GZ_SIM_RESOURCE_PATH (inherited by the simulator).
    models = str(PROJECT / "models")
    paths = [p for p in os.environ.get("GZ_SIM_RESOURCE_PATH", "").split(os.pathsep) if p]
    if models not in paths:
        os.environ["GZ_SIM_RESOURCE_PATH"] = os.pathsep.join([models, *paths])


@pytest.fixture
def safety_stop(launch_node: Any) -> Callable[..., Any]:
    """Start the safety-stop node (``python -m safety_stop``) on this worker's ROS domain.

    Returns when the node published its first /safety_stop/blocked state, i.e. it has seen a scan.
    The plugin stops it after the test and attaches its log to the report.
    """

    def start(stop_distance: float = STOP_DISTANCE, **params: float | str | bool) -> Any:
        ros_args = ["--ros-args", "-p", f"stop_distance:={stop_distance}", "-p", "use_sim_time:=true"]
        for key, value in params.items():
            ros_args += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
        pythonpath = os.pathsep.join(p for p in (str(PROJECT / "src"), os.environ.get("PYTHONPATH", "")) if p)
        return launch_node(
            [sys.executable, "-m", "safety_stop", *ros_args],
            env={"PYTHONPATH": pythonpath},
            name="safety_stop",
            ready_topic="/safety_stop/blocked",
            ready_type="std_msgs/msg/Bool",
        )

    return start
