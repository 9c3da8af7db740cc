"""Digital-twin validation: load real runs, align them with simulated ones, score, replay, calibrate.

Heavy modules (rosbags, scipy, matplotlib, rclpy) are imported inside the functions that need them.
"""

from __future__ import annotations

from pytest_simtwin.ros.messages import yaw_from_quaternion
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.loaders import Topics, load_trajectory
from pytest_simtwin.twin.scoring import TwinConfig, TwinResult, load_config, validate

__all__ = [
    "Topics",
    "Trajectory",
    "TwinConfig",
    "TwinResult",
    "load_config",
    "load_trajectory",
    "validate",
    "yaw_from_quaternion",
]
