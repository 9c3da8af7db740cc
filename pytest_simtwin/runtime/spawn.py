"""The spawn name and pose (``--simtwin-spawn-name`` / ``--simtwin-spawn-pose``, marker ``spawn_name`` /
``spawn_pose``): parsed as ``ros_gz_sim create`` takes them (standard library only: every run checks the
options; the backend check is :func:`pytest_simtwin.runtime.settings.check_spawn`)."""

from __future__ import annotations

import math
from typing import Any

import pytest

SPAWN_KEYS = ("spawn_name", "spawn_pose")
SpawnPose = tuple[float, float, float, float, float, float]
_POSE_FORMS = "3 numbers X Y Z, 4 X Y Z YAW or 6 X Y Z ROLL PITCH YAW (m, rad)"


def parse_spawn_pose(value: Any, source: str) -> SpawnPose:
    """``create``'s -x -y -z [-R -P] -Y from 'X Y Z', 'X Y Z YAW', 'X Y Z R P Y' (or a sequence of numbers)."""
    if isinstance(value, str):
        parts: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise pytest.UsageError(f"{source}: expected {_POSE_FORMS}, found {value!r}")
    numbers: list[float] = []
    for part in parts:
        try:
            if isinstance(part, bool):
                raise ValueError(part)
            number = float(part)
        except (TypeError, ValueError):
            raise pytest.UsageError(f"{source}: expected {_POSE_FORMS}, found {value!r} ({part!r} is not a number)") from None
        if not math.isfinite(number):
            raise pytest.UsageError(f"{source}: expected finite numbers ({_POSE_FORMS}), found {value!r}")
        numbers.append(number)
    if len(numbers) in (3, 4):
        x, y, z, yaw = (*numbers, 0.0) if len(numbers) == 3 else numbers
        return (x, y, z, 0.0, 0.0, yaw)
    if len(numbers) == 6:
        return (numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5])
    raise pytest.UsageError(f"{source}: expected {_POSE_FORMS}, found {len(numbers)} number(s) in {value!r}")


def check_spawn_name(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value) or "/" in value:
        raise pytest.UsageError(
            f"{source}: expected a model name without spaces or '/' (as `ros_gz_sim create -name`), found {value!r}"
        )
    return value


ROBOT_FROM = "--simtwin-robot (or the marker's robot=...)"


def check_name_has_robot(name: str | None, robot: object, source: str, robot_from: str = ROBOT_FROM) -> None:
    """A spawn name names the robot file's robot: without one it is a :class:`pytest.UsageError`.

    ``robot_from`` says where the caller gives the robot file (the plugin's option, SimPool's argument)."""
    if name is not None and robot is None:
        raise pytest.UsageError(
            f"{source}: spawn-name {name!r} names the robot added with {robot_from}, found no robot file; "
            "a robot inside the world file keeps the name the world gives it"
        )
