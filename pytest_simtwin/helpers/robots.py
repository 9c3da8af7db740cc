"""Which robot of a multi-robot world a ``robot`` fixture drives: topics of one robot by name.

The simulator's features reply lists every robot's topics under ``topics["robots"]`` (name -> topics)
when the world has several; the first robot's topics are the top-level ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_simtwin.errors import ConfigError

HOW_TO_CHOOSE = (
    "name one with @pytest.mark.simtwin(robot_name=...), the ini key simtwin_robot_name or "
    "--simtwin-robot-name, or use the robots fixture"
)


def robot_names(topics: Mapping[str, Any]) -> list[str]:
    """Every robot's name, the first robot first (one name, or none for a foreign simulator)."""
    robots = topics.get("robots")
    if isinstance(robots, Mapping) and robots:
        return [str(n) for n in robots]
    return [str(topics["robot"])] if topics.get("robot") else []


def robot_topics(topics: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The topics of robot ``name`` (None: the only robot); ConfigError lists the robots otherwise."""
    robots = topics.get("robots")
    names = robot_names(topics)
    if name is None:
        if isinstance(robots, Mapping) and len(robots) > 1:
            raise ConfigError(
                f"the world has {len(robots)} robots ({', '.join(names)}); expected the robot fixture to be told "
                f"which one to drive: {HOW_TO_CHOOSE}"
            )
        return dict(topics)
    if isinstance(robots, Mapping) and name in robots:
        return {**dict(robots[name]), "clock": topics.get("clock")}
    if name == topics.get("robot"):
        return dict(topics)
    raise ConfigError(
        f"robot_name {name!r}: the world has no such robot; expected one of: {', '.join(names) or '(none reported)'}"
    )
